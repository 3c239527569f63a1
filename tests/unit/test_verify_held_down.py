"""A network's own devices, and a bond, held down count as a mismatch for the rebuild.

``network_mismatches`` and ``bond_mismatches`` take the devices netreload
marked that the kernel holds administratively down (``superd.admin_state``,
read apart: the report has no link state). Pure: the report and the down
set are plain data.
"""

from __future__ import annotations

from superd.repair import broken_entries, unchanged_bonds
from superd.verify import bond_mismatches, network_mismatches, plan_mismatches

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
BOND = {"nics": ["eth1", "eth2"], "options": "mode=1 miimon=100"}
ON_BOND = {"bonding": "bond1", "bridged": True, "mtu": 1500}
VLAN_ON_BOND = {"bonding": "bond1", "vlan": 20, "bridged": False, "mtu": 1500}
BONDED = {
    "networks": {"net1": BRIDGED, "onbond": ON_BOND, "vbond": VLAN_ON_BOND},
    "bonds": {"bond1": BOND},
}
BOND_CAPS = {
    **CAPS,
    "bridges": {**CAPS["bridges"], "onbond": {"ports": ["bond1"], "stp": "off", "mtu": 1500,
                                              "ipv6autoconf": False}},
    "vlans": {**CAPS["vlans"], "bond1.20": {"vlanid": 20, "mtu": 1500, "ipv6autoconf": False}},
    "bondings": {"bond1": {"slaves": ["eth1", "eth2"], "opts": {"mode": "1", "miimon": "100"}}},
    "nics": {**CAPS["nics"], "eth1": {"mtu": 1500}, "eth2": {"mtu": 1500}},
}  # fmt: skip


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


def test_a_complete_bond_has_no_mismatch() -> None:
    assert bond_mismatches("bond1", BOND, BOND_CAPS) == []


def test_a_bond_held_down_is_a_mismatch() -> None:
    assert bond_mismatches("bond1", BOND, BOND_CAPS, {"bond1"}) == ["bond bond1 is down"]


def test_a_bonds_nic_down_is_not_its_mismatch() -> None:
    # a NIC is the administrator's: never in netreload's down set, and not
    # the bond's own device if it were
    assert bond_mismatches("bond1", BOND, BOND_CAPS, {"eth1"}) == []


def test_an_ovs_bond_is_no_kernel_device_to_read_down() -> None:
    ovs = {"nics": ["eth1", "eth2"], "switch": "ovs"}
    caps = {"bondings": {"bond1": {"slaves": ["eth1", "eth2"], "opts": {}}}}
    assert not any("down" in p for p in bond_mismatches("bond1", ovs, caps, {"bond1"}))


def test_a_vlan_device_on_a_bond_held_down_is_its_networks_mismatch() -> None:
    problems = network_mismatches("vbond", VLAN_ON_BOND, BOND_CAPS, {"bond1.20"})
    assert problems == ["network vbond: bond1.20 is down"]


def test_the_rebuild_removes_a_bond_held_down_with_every_network_on_it() -> None:
    # a bond in use cannot be removed: its networks go first, and all come back
    nets, bonds = broken_entries(BONDED, BONDED, BOND_CAPS, {"bond1"})
    assert bonds == {"bond1": {"remove": True}}
    assert nets == {"onbond": {"remove": True}, "vbond": {"remove": True}}


def test_the_rebuild_leaves_a_bond_up_and_its_networks_alone() -> None:
    assert broken_entries(BONDED, BONDED, BOND_CAPS, {"eth1"}) == ({}, {})


def test_the_bonds_read_for_down_are_the_unchanged_legacy_ones() -> None:
    running = {"bonds": {"bond1": BOND, "bond2": BOND, "ovsb": {**BOND, "switch": "ovs"}}}
    persistent = {"bonds": {"bond1": BOND, "bond2": {**BOND, "nics": ["eth1"]},
                            "ovsb": running["bonds"]["ovsb"]}}  # fmt: skip
    assert unchanged_bonds(persistent, running) == ["bond1"]
