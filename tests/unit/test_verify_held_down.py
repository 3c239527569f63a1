"""A network's own devices held down count as a mismatch for the rebuild.

``network_mismatches`` takes the devices netreload marked that the kernel
holds administratively down (``superd.admin_state``, read apart: the report
has no link state). Pure: the report and the down set are plain data.
"""

from __future__ import annotations

from superd.repair import broken_entries
from superd.verify import network_mismatches, plan_mismatches

BRIDGED = {"nic": "eth0", "bridged": True, "mtu": 1500}
VLAN_BRIDGED = {"nic": "eth0", "vlan": 10, "bridged": True, "mtu": 1500}
CAPS = {
    "bridges": {
        "net1": {"ports": ["eth0"], "stp": "off", "mtu": 1500, "ipv6autoconf": False},
        "net2": {"ports": ["eth0.10"], "stp": "off", "mtu": 1500, "ipv6autoconf": False},
    },
    "vlans": {"eth0.10": {"vlanid": 10, "mtu": 1500}},
    "nics": {"eth0": {"mtu": 1500}},
}


def test_a_complete_network_has_no_mismatch() -> None:
    assert network_mismatches("net1", BRIDGED, CAPS) == []


def test_its_bridge_held_down_is_a_mismatch() -> None:
    assert network_mismatches("net1", BRIDGED, CAPS, {"net1"}) == ["network net1: net1 is down"]


def test_its_vlan_device_held_down_is_a_mismatch() -> None:
    problems = network_mismatches("net2", VLAN_BRIDGED, CAPS, {"eth0.10"})
    assert problems == ["network net2: eth0.10 is down"]


def test_its_nic_down_is_not_a_mismatch() -> None:
    # a NIC is the administrator's: never in netreload's down set, and not
    # one of the network's own devices if it were
    assert network_mismatches("net1", BRIDGED, CAPS, {"eth0"}) == []


def test_another_networks_device_down_is_not_this_ones_mismatch() -> None:
    assert network_mismatches("net1", BRIDGED, CAPS, {"net2"}) == []


def test_an_ovs_network_has_no_kernel_device_of_its_own_to_check() -> None:
    ovs = {**BRIDGED, "switch": "ovs"}
    caps = {"bridges": {"net1": CAPS["bridges"]["net1"]}}
    assert not any("down" in p for p in network_mismatches("net1", ovs, caps, {"net1"}))


def test_the_rebuild_removes_an_unchanged_network_held_down_first() -> None:
    config = {"networks": {"net1": BRIDGED, "net2": VLAN_BRIDGED}, "bonds": {}}
    nets, bonds = broken_entries(config, config, CAPS, {"net1"})
    assert (nets, bonds) == ({"net1": {"remove": True}}, {})


def test_the_verification_after_a_change_does_not_read_link_state() -> None:
    ops = [{"op": "add_network", "name": "net1", "attrs": BRIDGED}]
    assert plan_mismatches(ops, {"networks": {"net1": BRIDGED}}, CAPS) == []
