"""``netreload plan``: offline planning against a capabilities report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontd.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "examples"
GOOD = ["add-vm-network.json", "bond-with-vlans.json", "move-default-route.json",
        "remove-network.json"]  # fmt: skip


@pytest.mark.parametrize("example", GOOD)
def test_readme_examples_plan_successfully(example: str, capsys) -> None:
    assert main(["plan", str(EXAMPLES / example), "--netinfo", "sample", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["version"] == 1 and plan["operations"]


def test_bad_example_prints_code_and_message(capsys) -> None:
    status = main(["plan", str(EXAMPLES / "bad-two-untagged.json"), "--netinfo", "sample"])
    error = json.loads(capsys.readouterr().err)
    assert status == error["code"] == 21
    assert "ens1f0" in error["message"]


def test_plan_against_a_saved_report(tmp_path: Path, capsys) -> None:
    report = {"nics": {"eno1": {"mtu": 1500}}, "nameservers": ["192.0.2.1"]}
    (tmp_path / "host.json").write_text(json.dumps(report))
    (tmp_path / "req.json").write_text(json.dumps({"networks": {"n": {"nic": "eno1"}}}))
    status = main(["plan", str(tmp_path / "req.json"), "--netinfo", str(tmp_path / "host.json")])
    assert status == 0
    assert "add_network" in capsys.readouterr().out


def test_request_that_is_not_json_is_bad_params(tmp_path: Path, capsys) -> None:
    (tmp_path / "req.json").write_text("{not json")
    assert main(["plan", str(tmp_path / "req.json"), "--netinfo", "sample"]) == 21
    assert json.loads(capsys.readouterr().err)["code"] == 21


def test_request_with_unknown_top_level_key_is_bad_params(tmp_path: Path, capsys) -> None:
    (tmp_path / "req.json").write_text(json.dumps({"networks": {}, "reboot": True}))
    assert main(["plan", str(tmp_path / "req.json"), "--netinfo", "sample"]) == 21


def test_unchanged_request_plans_nothing(tmp_path: Path, capsys) -> None:
    request = {"networks": {"ovirtmgmt": {"nic": "ens1f0", "ipaddr": "192.0.2.10",
               "netmask": "255.255.255.0", "gateway": "192.0.2.1", "defaultRoute": True,
               "nameservers": []}}}  # fmt: skip
    (tmp_path / "req.json").write_text(json.dumps(request))
    assert main(["plan", str(tmp_path / "req.json"), "--netinfo", "sample"]) == 0
    assert "Nothing to change" in capsys.readouterr().out


def test_live_plan_without_frontd_is_a_clear_error(tmp_path: Path, capsys) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(f"[frontd]\nunix_socket = {tmp_path}/absent.sock\n")
    (tmp_path / "req.json").write_text(json.dumps({"networks": {}}))
    status = main(["--config", str(conf), "plan", str(tmp_path / "req.json")])
    error = json.loads(capsys.readouterr().err)
    assert status == error["code"] == 100
    assert "cannot talk to frontd" in error["message"]
