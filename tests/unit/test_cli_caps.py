"""``netreload --json caps``: recognized before argparse, read the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontd.cli import build_parser, caps_json_config, main
from shared.config import load_config
from shared.config_socket import frontd_unix_socket

FAST = [
    ["--json", "caps"],
    ["caps", "--json"],
    ["--json", "caps", "--json"],
    ["--config", "/etc/x.conf", "--json", "caps"],
    ["--config=/etc/x.conf", "caps", "--json"],
    ["--json", "--config", "caps", "caps"],  # a file named caps
]
SLOW = [
    ["caps"],  # the human table
    ["--js", "caps"],  # argparse's abbreviation
    ["--json", "caps", "-h"],
    ["--json", "caps", "--config", "/etc/x.conf"],  # argparse refuses it after the verb
    ["--config", "/a", "--config", "/b", "--json", "caps"],
    ["--config", "--json", "caps"],
    ["--json", "plan", "caps"],
    ["--json", "caps", "caps"],
    ["--json", "--", "caps"],
]


@pytest.mark.parametrize("argv", FAST)
def test_fast_form_reads_as_argparse_reads_it(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == "caps" and args.json
    assert caps_json_config(argv) == (args.config,)


@pytest.mark.parametrize("argv", SLOW)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert caps_json_config(argv) is None


def test_socket_path_is_the_one_the_whole_configuration_reads(tmp_path: Path) -> None:
    path = tmp_path / "netreload.conf"
    path.write_text("[frontd]\nunix_socket = /tmp/elsewhere/frontd.sock\n")
    assert frontd_unix_socket(str(path)) == "/tmp/elsewhere/frontd.sock"
    assert str(load_config(path).frontd_unix_socket) == "/tmp/elsewhere/frontd.sock"
    path.write_text("[vars]\n")
    assert frontd_unix_socket(str(path)) == str(load_config(path).frontd_unix_socket)


def test_unreadable_configuration_is_bad_params_on_the_fast_path(tmp_path: Path, capsys) -> None:
    status = main(["--config", str(tmp_path / "missing.conf"), "--json", "caps"])
    error = json.loads(capsys.readouterr().err)
    assert status == error["code"] == 21
    assert "not readable" in error["message"]


def test_frontd_away_is_a_clear_error_on_the_fast_path(tmp_path: Path, capsys) -> None:
    path = tmp_path / "netreload.conf"
    path.write_text(f"[frontd]\nunix_socket = {tmp_path / 'none.sock'}\n")
    status = main(["--config", str(path), "--json", "caps"])
    error = json.loads(capsys.readouterr().err)
    assert status == error["code"] == 100
    assert "cannot talk to frontd" in error["message"]
