"""Verification compares the kernel read back with the plan; rollback requests."""

from __future__ import annotations

from superd.setup_networks import rollback_request
from superd.verify import plan_mismatches


def bridge(**extra) -> dict:
    entry = {
        "ports": ["veth_0"],
        "stp": False,
        "mtu": 1500,
        "ipv4addrs": ["10.0.0.1/24"],
        "ipv6addrs": [],
        "ipv6autoconf": False,
        "gateway": "",
        "ipv4defaultroute": False,
    }
    entry.update(extra)
    return entry


ATTRS = {"nic": "veth_0", "bridged": True, "stp": False, "mtu": 1500,
         "ipaddr": "10.0.0.1", "netmask": "255.255.255.0"}  # fmt: skip
ADD = [{"op": "add_network", "name": "n", "attrs": ATTRS}]


def test_matching_kernel_has_no_mismatch() -> None:
    assert plan_mismatches(ADD, {}, {"bridges": {"n": bridge()}}) == []


def test_missing_bridge_is_a_mismatch() -> None:
    assert plan_mismatches(ADD, {}, {"bridges": {}}) == ["network n: device n is missing"]


def test_missing_address_is_a_mismatch() -> None:
    (problem,) = plan_mismatches(ADD, {}, {"bridges": {"n": bridge(ipv4addrs=[])}})
    assert "10.0.0.1/24" in problem


def test_ipv6_address_is_compared_as_an_address_not_as_text() -> None:
    expanded = {**ATTRS, "ipv6addr": "2001:0db8:0000:0000:0000:0000:0000:0001/64"}
    add = [{"op": "add_network", "name": "n", "attrs": expanded}]
    assert plan_mismatches(add, {}, {"bridges": {"n": bridge(ipv6addrs=["2001:db8::1/64"])}}) == []
    (problem,) = plan_mismatches(add, {}, {"bridges": {"n": bridge(ipv6addrs=["2001:db8::2/64"])}})
    assert "missing" in problem


def test_wrong_port_is_a_mismatch() -> None:
    (problem,) = plan_mismatches(ADD, {}, {"bridges": {"n": bridge(ports=["veth_1"])}})
    assert "ports" in problem


def test_missing_default_route_is_a_mismatch() -> None:
    ops = [{"op": "add_network", "name": "n",
            "attrs": {**ATTRS, "gateway": "10.0.0.254", "defaultRoute": True}}]  # fmt: skip
    (problem,) = plan_mismatches(ops, {}, {"bridges": {"n": bridge()}})
    assert "default route" in problem


def test_missing_source_routing_is_a_mismatch() -> None:
    ops = [{"op": "add_network", "name": "n", "attrs": {**ATTRS, "gateway": "10.0.0.254"}}]
    (problem,) = plan_mismatches(ops, {}, {"bridges": {"n": bridge()}})
    assert "source routing via 10.0.0.254" in problem
    assert plan_mismatches(ops, {}, {"bridges": {"n": bridge(gateway="10.0.0.254")}}) == []


def test_removed_bridge_still_present_is_a_mismatch() -> None:
    ops = [{"op": "remove_network", "name": "n", "attrs": ATTRS}]
    assert plan_mismatches(ops, {"networks": {}}, {"bridges": {"n": bridge()}})


def test_bond_with_wrong_slaves_is_a_mismatch() -> None:
    ops = [{"op": "add_bond", "name": "bond1",
            "attrs": {"nics": ["a", "b"], "options": "mode=1", "switch": "legacy"}}]  # fmt: skip
    caps = {"bondings": {"bond1": {"slaves": ["a"], "opts": {"mode": "1"}}}}
    (problem,) = plan_mismatches(ops, {}, caps)
    assert "slaves" in problem


def test_rollback_request_removes_added_and_restores_changed() -> None:
    before = {"networks": {"a": {"mtu": 1500}, "b": {"mtu": 1500}}, "bonds": {}}
    now = {"networks": {"a": {"mtu": 9000}, "c": {"mtu": 1500}},
           "bonds": {"bond1": {"nics": ["x"]}}}  # fmt: skip
    networks, bonds = rollback_request(before, now)
    assert networks == {"a": {"mtu": 1500}, "b": {"mtu": 1500}, "c": {"remove": True}}
    assert bonds == {"bond1": {"remove": True}}
