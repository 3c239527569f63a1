"""What a change reads (issue 21, the read side): superd reads the kernel
back to verify it (``LiveCaps``) and builds the report verified once, under
the name the next netinfo answer asks for, whatever the size of the change;
planning and verifying one network read no more of the others than needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from superd.cores import LiveCaps


class RecordingLive:
    """The monitor's reading side, recording what the verification asks."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def refresh(self, names: Any) -> str:
        self.calls.append(("refresh", frozenset(names)))
        return "state-after-refresh"

    def resync(self) -> str:
        self.calls.append(("resync",))
        return "state-after-dump"

    def report_dict(self, running: Mapping, key: object, state: object) -> tuple[str, dict]:
        self.calls.append(("report_dict", key, state))
        return "token", {"built": key, "from": state}

    def capabilities(self, running: Mapping, state: object = None) -> dict:
        self.calls.append(("capabilities", state))
        return {"built": "by content", "from": state}


def no_fallback(running: Mapping) -> dict:
    raise AssertionError("the kernel read directly: the monitor was not used")


def verifying(live: RecordingLive, reread: frozenset[str] | None, running: dict) -> LiveCaps:
    caps = LiveCaps(live, no_fallback)  # type: ignore[arg-type]
    caps.direct, caps.reread, caps.named = 1, reread, (42, running)
    return caps


def test_a_big_change_is_verified_on_a_full_dump_reported_under_the_generation() -> None:
    live, running = RecordingLive(), {"networks": {}, "bonds": {}}
    report = verifying(live, None, running)(running)
    assert report == {"built": 42, "from": "state-after-dump"}
    assert live.calls == [("resync",), ("report_dict", 42, "state-after-dump")]


def test_a_small_change_is_verified_on_its_devices_read_again() -> None:
    live, running = RecordingLive(), {"networks": {}, "bonds": {}}
    report = verifying(live, frozenset({"bn1"}), running)(running)
    assert report == {"built": 42, "from": "state-after-refresh"}
    assert live.calls == [
        ("refresh", frozenset({"bn1"})),
        ("report_dict", 42, "state-after-refresh"),
    ]


def test_a_running_configuration_other_than_the_store_s_is_reported_by_content() -> None:
    live = RecordingLive()
    other = {"networks": {"a": {}}, "bonds": {}}
    report = verifying(live, None, {"networks": {}, "bonds": {}})(other)
    assert report == {"built": "by content", "from": "state-after-dump"}


def test_verifying_added_networks_builds_no_network_model(monkeypatch: Any) -> None:
    """A big change verifies thousands of networks: each one's top device
    follows from its attributes (the report's rule), no model is built."""
    import shared.netmodel.network as network
    from superd import verify

    def no_model(*args: Any) -> None:
        raise AssertionError("a network model was built to find a top device")

    monkeypatch.setattr(network, "build_network", no_model)
    monkeypatch.setattr(verify, "build_network", no_model, raising=False)
    vlan = {"nic": "eth0", "vlan": 10, "bridged": False, "mtu": 1500}
    ops = [{"op": "add_network", "name": "b", "attrs": {"bridged": True, "mtu": 1500}},
           {"op": "add_network", "name": "v", "attrs": vlan}]  # fmt: skip
    caps = {"bridges": {"b": {"ports": [], "stp": "off", "mtu": "1500"}},
            "vlans": {"eth0.10": {"vlanid": 10, "mtu": "1500"}}}  # fmt: skip
    assert verify.plan_mismatches(ops, {}, caps) == []


def test_planning_a_nic_less_network_reads_each_other_network_once() -> None:
    """Adding a bridge on no NIC or bond touches no lower: each other
    network is read for the default route alone (one read, not three)."""
    from tests.unit.test_plan_scale import reads_per_other_network

    request = {"new": {"bridged": True, "ipaddr": "10.200.0.1", "prefix": 24}}
    assert reads_per_other_network(request) == 1
