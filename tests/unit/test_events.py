"""Events as data: the state differ, the policy, the event log (pure, no root)."""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import ErrorCode, NetError
from shared.event_log import EventLog, wait_args
from shared.netinfo_report import build_capabilities
from superd import events as ev

UP = ev.IFF_UP | ev.IFF_LOWER_UP
RUNNING = {
    "networks": {
        "mgmt": {"nic": "eth0", "bridged": True},
        "flat": {"bonding": "bond0", "vlan": 20, "bridged": False},
        "empty": {"bridged": True},
    },
    "bonds": {"bond0": {"nics": ["eth1", "eth2"]}},
}


def link(index: int, name: str, flags: int = UP, kind: str | None = None) -> dict:
    return {"index": index, "name": name, "flags": flags, "kind": kind, "parent_dev": "pci"}


def addr(index: int, address: str, prefixlen: int = 24) -> dict:
    family = 6 if ":" in address else 4
    return {"index": index, "family": family, "address": address, "prefixlen": prefixlen}


def diff(old_links: list, new_links: list, old_addrs=(), new_addrs=(), **kw) -> list[dict]:
    def by_index(items):
        out: dict = {}
        for item in items:
            out.setdefault(item["index"], []).append(item)
        return {k: tuple(v) for k, v in out.items()}

    return ev.state_events(
        {x["index"]: x for x in old_links},
        by_index(old_addrs),
        {x["index"]: x for x in new_links},
        by_index(new_addrs),
        lambda name: name.startswith("veth_"),
        **kw,
    )


def test_a_nic_appearing_is_nic_added_with_its_ifindex() -> None:
    assert diff([], [link(3, "eth0")]) == [{"kind": "nic_added", "device": "eth0", "ifindex": 3}]


def test_only_the_touched_devices_are_compared_when_the_monitor_says_which() -> None:
    """The live netinfo names the ifindexes a batch touched: a device it
    does not name is not looked at (a thousand others would cost a walk)."""
    old = [link(3, "eth0"), link(4, "br0", kind="bridge")]
    new = [link(3, "eth1"), link(5, "br1", kind="bridge")]
    assert diff(old, new, touched={3}) == []  # a rename: no event
    assert diff(old, new, touched={4}) == [{"kind": "device_removed", "device": "br0"}]


def test_nic_presence_is_left_to_uevents_when_asked() -> None:
    assert diff([link(3, "eth0")], [], nic_presence=False) == []


def test_a_bridge_vanishing_is_device_removed() -> None:
    bridge = link(4, "mgmt", kind="bridge")
    assert diff([bridge], []) == [{"kind": "device_removed", "device": "mgmt"}]


def test_carrier_loss_is_link_down_and_its_return_link_up() -> None:
    assert diff([link(3, "eth0")], [link(3, "eth0", ev.IFF_UP)]) == [
        {"kind": "link_down", "device": "eth0"}
    ]
    assert diff([link(3, "eth0", ev.IFF_UP)], [link(3, "eth0")]) == [
        {"kind": "link_up", "device": "eth0"}
    ]


def test_setting_a_device_down_is_admin_down_alone() -> None:
    assert diff([link(3, "eth0")], [link(3, "eth0", 0)]) == [
        {"kind": "admin_down", "device": "eth0"}
    ]


def test_setting_a_device_without_carrier_up_is_admin_up() -> None:
    bridge = link(4, "br0", 0, kind="bridge")
    assert diff([bridge], [dict(bridge, flags=ev.IFF_UP)]) == [
        {"kind": "admin_up", "device": "br0"}
    ]


def test_carrier_changes_of_a_device_set_down_are_not_events() -> None:
    assert diff([link(3, "eth0", 0)], [link(3, "eth0", ev.IFF_LOWER_UP)]) == []


def test_addresses_added_and_removed_but_not_link_local_ones() -> None:
    eth0 = link(3, "eth0")
    found = diff(
        [eth0],
        [eth0],
        [addr(3, "10.0.0.1")],
        [addr(3, "10.0.0.2"), addr(3, "fe80::1", 64), addr(3, "2001:db8::1", 64)],
    )
    assert found == [
        {"kind": "address_added", "device": "eth0", "address": "10.0.0.2/24"},
        {"kind": "address_added", "device": "eth0", "address": "2001:db8::1/64"},
        {"kind": "address_removed", "device": "eth0", "address": "10.0.0.1/24"},
    ]


def test_loopback_is_never_reported() -> None:
    lo = link(1, "lo", UP | ev.IFF_LOOPBACK)
    assert diff([lo], [dict(lo, flags=ev.IFF_LOOPBACK)], [], [addr(1, "127.0.0.2", 8)]) == []


def test_unchanged_objects_are_skipped_without_comparison() -> None:
    eth0 = link(3, "eth0")
    addrs = (addr(3, "10.0.0.1"),)
    assert ev.state_events({3: eth0}, {3: addrs}, {3: eth0}, {3: addrs}, bool) == []


def test_usage_names_networks_on_a_nic_its_bond_and_their_devices() -> None:
    assert ev.usage("eth0", RUNNING) == ev.Usage(("mgmt",), ())
    assert ev.usage("eth1", RUNNING) == ev.Usage(("flat",), ("bond0",))
    assert ev.usage("bond0.20", RUNNING) == ev.Usage(("flat",), ())
    assert ev.usage("empty", RUNNING) == ev.Usage(("empty",), ())
    assert ev.usage("eth9", RUNNING) == ev.Usage()


def test_with_usage_drops_the_removal_of_devices_no_network_uses() -> None:
    gone = [{"kind": "device_removed", "device": name} for name in ("stray", "mgmt")]
    found = ev.with_usage(gone, RUNNING)
    assert found == [{**gone[1], "networks": ["mgmt"], "bonds": []}]


def test_policy_defaults_to_report_and_reads_the_events_section() -> None:
    policy = ev.parse_policy({"link_up": "ignore", "nic_added": "restore"})
    assert policy["link_up"] == "ignore" and policy["nic_added"] == "restore"
    assert policy["nic_removed"] == "report"


@pytest.mark.parametrize("section", [{"link_up": "restore"}, {"carrier": "report"}])
def test_policy_refuses_unknown_kinds_and_actions(section: dict) -> None:
    with pytest.raises(NetError) as caught:
        ev.parse_policy(section)
    assert caught.value.code == ErrorCode.BAD_PARAMS


def test_ignored_kinds_are_not_reported() -> None:
    events = [{"kind": "link_up", "device": "a"}, {"kind": "link_down", "device": "a"}]
    assert ev.reported(events, {"link_up": "ignore"}) == events[1:]


def test_restore_targets_networks_on_a_returning_nic_and_the_bond_of_a_returning_slave() -> None:
    policy = {"nic_added": "restore"}
    back = ev.with_usage([ev.nic_event("eth0", 3, True), ev.nic_event("eth1", 4, True)], RUNNING)
    assert ev.restore_targets(back, policy) == {"mgmt", "bond0"}
    assert ev.restore_targets(back, {"nic_added": "report"}) == set()


def test_capabilities_mark_networks_and_bonds_that_lost_a_nic() -> None:
    links = [link(2, "eth1"), link(5, "bond0", kind="bond"), link(6, "mgmt", kind="bridge")]
    caps = build_capabilities(links, [], [], RUNNING, [], bool)
    assert caps["networks"]["mgmt"]["missing_nics"] == ["eth0"]
    assert caps["networks"]["flat"]["missing_nics"] == ["eth2"]
    assert caps["bondings"]["bond0"]["missing_nics"] == ["eth2"]
    assert "missing_nics" not in caps["networks"]["empty"]


# -- the event log ------------------------------------------------------------


def test_log_numbers_events_and_answers_those_after_a_position() -> None:
    log = EventLog()
    log.append([{"kind": "a"}, {"kind": "b"}])
    answer = log.wait(1, log.epoch, 0)
    assert [(e["kind"], e["seq"]) for e in answer["events"]] == [("b", 2)]
    assert answer["next"] == 2 and answer["lost"] == 0


def test_log_position_minus_one_is_now_without_the_past() -> None:
    log = EventLog()
    log.wait(-1, None, 0)  # a first reader came
    log.append([{"kind": "a"}])
    assert log.wait(-1, None, 10) == {"epoch": log.epoch, "next": 1, "events": [], "lost": 0}


def test_log_first_reader_gets_what_was_logged_before_it_came() -> None:
    log = EventLog()
    log.append([{"kind": "transaction_recovered"}])
    answer = log.wait(-1, None, 10)
    assert [e["kind"] for e in answer["events"]] == ["transaction_recovered"]
    assert answer["next"] == 1
    assert log.wait(-1, None, 0)["events"] == []  # only the first one


def test_log_from_another_epoch_starts_from_the_beginning() -> None:
    log = EventLog()
    log.append([{"kind": "a"}])
    assert [e["seq"] for e in log.wait(5, "an older superd", 0)["events"]] == [1]


def test_log_counts_what_a_slow_reader_lost() -> None:
    log = EventLog(capacity=3)
    log.append([{"kind": str(i)} for i in range(5)])
    answer = log.wait(0, log.epoch, 0)
    assert [e["seq"] for e in answer["events"]] == [3, 4, 5] and answer["lost"] == 2


def test_log_wakes_a_waiting_reader() -> None:
    log = EventLog()
    threading.Timer(0.1, log.append, ([{"kind": "late"}],)).start()
    started = time.monotonic()
    answer = log.wait(0, log.epoch, 10)
    assert answer["events"][0]["kind"] == "late" and time.monotonic() - started < 5


def test_log_keeps_a_time_the_event_brings() -> None:
    log = EventLog()
    log.append([{"kind": "relayed", "time": 42}])
    assert log.wait(0, log.epoch, 0)["events"][0]["time"] == 42


@pytest.mark.parametrize(
    "args",
    [{"after": "1"}, {"after": -2}, {"after": True}, {"epoch": 7}, {"timeout": -1},
     {"timeout": float("nan")}, {"epoch": "x" * 65}],  # fmt: skip
)
def test_wait_arguments_are_checked(args: dict) -> None:
    with pytest.raises(NetError) as caught:
        wait_args(args)
    assert caught.value.code == ErrorCode.BAD_PARAMS


def test_wait_is_capped() -> None:
    assert wait_args({"after": 3, "epoch": "e", "timeout": 1e9}) == (3, "e", 60.0)
