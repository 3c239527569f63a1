"""The capabilities' hostQos (from the kernel's classes) and teams' active
ports laid over the kernel report (pure overlays)."""

from __future__ import annotations

from shared.netmodel.canonical import canonicalize_network
from shared.netmodel.host_qos import wanted_trees
from superd import qos_report, team_report


def test_a_network_reports_the_host_qos_its_class_holds() -> None:
    qos = {"out": {"ls": {"m2": 30}, "ul": {"m2": 8000000}}}
    running = {"networks": {
        "a": canonicalize_network("a", {"nic": "eth0", "vlan": 5, "hostQos": qos}),
        "b": canonicalize_network("b", {"nic": "eth0"}),
    }}  # fmt: skip
    caps = {"networks": {"a": {"iface": "a"}, "b": {"iface": "b"}}}
    trees = wanted_trees(running["networks"])
    out = qos_report.overlay(caps, trees, running)
    assert out["networks"]["a"]["hostQos"] == qos
    assert "hostQos" not in out["networks"]["b"]
    assert "hostQos" not in caps["networks"]["a"]  # a copy: reports are shared


def test_a_network_whose_class_is_gone_reports_no_host_qos() -> None:
    qos = {"out": {"ls": {"m2": 30}}}
    running = {"networks": {"a": canonicalize_network("a", {"nic": "eth0", "hostQos": qos})}}
    out = qos_report.overlay({"networks": {"a": {}}}, {"eth0": None}, running)
    assert "hostQos" not in out["networks"]["a"]


def test_only_shaped_networks_devices_are_read() -> None:
    running = {"networks": {
        "a": canonicalize_network("a", {"nic": "eth0", "hostQos": {"out": {"ls": {"m2": 1}}}}),
        "b": canonicalize_network("b", {"nic": "eth1"}),
    }}  # fmt: skip
    assert qos_report.shaped_devices(running) == {"eth0"}
    assert qos_report.read_trees({"networks": {"b": running["networks"]["b"]}}) is None


def test_a_teams_active_port_is_laid_over() -> None:
    caps = {"bondings": {"bond1": {"active_slave": ""}, "bond2": {"active_slave": ""}}}
    out = team_report.overlay(caps, {"bond1": "eth1", "bond2": ""})
    assert out["bondings"]["bond1"]["active_slave"] == "eth1"
    assert out["bondings"]["bond2"]["active_slave"] == ""
    assert caps["bondings"]["bond1"]["active_slave"] == ""
