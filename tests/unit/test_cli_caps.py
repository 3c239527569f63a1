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


# -- the text answer ------------------------------------------------------------

TEXTS = [
    '{\n  "a": "b"\n}',
    'quote " backslash \\ both \\" tab \t cr \r ff \f bs \b',
    "ends with a backslash \\",
    "not ASCII: é ☃ 𝄞",
    "a control character \x01 is a \\u escape",
    'looks like an escape: \\n \\" \\\\u0041',
    "",
]


def answer_with(sock_dir: Path, make_line, asked: list[dict] | None = None) -> str:
    """A one-shot frontd on a UNIX socket answering ``make_line(id)``; the
    request it read appended to ``asked``."""
    import socket
    import threading

    path = str(sock_dir / "frontd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            request = json.loads(conn.makefile("rb").readline())
            if asked is not None:
                asked.append(request)
            conn.sendall(make_line(request["id"]))
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return path


@pytest.fixture
def sock_dir():
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nr-") as name:  # a short socket path
        yield Path(name)


# -- the raw answer (what ``--json caps`` asks for) -------------------------------


def raw_answer(rid: int, text: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"result":{"bytes":%d}}\n%s\n' % (rid, len(text), text)


@pytest.mark.parametrize("text", TEXTS)
def test_raw_answer_is_the_text_frontd_sent(sock_dir: Path, text: str) -> None:
    from frontd.local_client import call_frontd_raw

    path = answer_with(sock_dir, lambda rid: raw_answer(rid, text.encode()))
    assert call_frontd_raw(path, "Host.getNetworkCapabilitiesText", timeout=10) == text.encode()


def test_raw_request_asks_for_the_raw_answer(sock_dir: Path) -> None:
    from frontd.local_client import call_frontd_raw

    asked: list[dict] = []
    path = answer_with(sock_dir, lambda rid: raw_answer(rid, b"{}"), asked)
    assert call_frontd_raw(path, "Host.getNetworkCapabilitiesText", timeout=10) == b"{}"
    assert asked[0]["method"] == "Host.getNetworkCapabilitiesText"
    assert asked[0]["params"] == {"raw": True} and asked[0]["jsonrpc"] == "2.0"


def test_raw_answer_that_is_an_error_raises_its_code(sock_dir: Path) -> None:
    from frontd.local_client import call_frontd_raw
    from shared.errors import NetError

    path = answer_with(sock_dir, lambda rid: b'{"jsonrpc":"2.0","id":%d,"error":'
                       b'{"code":40,"message":"busy"}}\n' % rid)  # fmt: skip
    with pytest.raises(NetError) as raised:
        call_frontd_raw(path, "Host.getNetworkCapabilitiesText", timeout=10)
    assert int(raised.value.code) == 40 and raised.value.message == "busy"


@pytest.mark.parametrize("line", [
    b'{"jsonrpc":"2.0","id":%d,"result":"a string"}\n',  # an older frontd
    b'{"jsonrpc":"2.0","id":%d,"result":{"bytes":99}}\nshort\n',  # cut
    b'{"jsonrpc":"2.0","id":%d,"result":{"bytes":-1}}\n',
])  # fmt: skip
def test_raw_answer_of_another_shape_is_an_internal_error(sock_dir: Path, line: bytes) -> None:
    from frontd.local_client import call_frontd_raw
    from shared.errors import NetError

    path = answer_with(sock_dir, lambda rid: line % rid)
    with pytest.raises(NetError) as raised:
        call_frontd_raw(path, "Host.getNetworkCapabilitiesText", timeout=10)
    assert int(raised.value.code) == 100


def test_the_caps_json_path_imports_no_json_module(sock_dir: Path) -> None:
    import subprocess
    import sys

    path = sock_dir / "netreload.conf"
    frontd = answer_with(sock_dir, lambda rid: raw_answer(rid, b"{}"))
    path.write_text(f"[frontd]\nunix_socket = {frontd}\n")
    code = ("import sys; from frontd.cli import main; main(['--config', sys.argv[1], '--json', "
            "'caps']); print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('json', 'orjson', 'argparse', 'dataclasses', 'pathlib')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.stdout.splitlines() == ["{}", "[]"], done.stderr
