"""Verification looks for each network's top device where the model puts it,
for every kind of network: the bridge (an OVS network's internal port)
when bridged, the NIC, bond or VLAN device under it when bridgeless, on
either switch — a bridgeless OVS network's address is reported on that
device, not on the internal port named after the network."""

from __future__ import annotations

import pytest

from shared.netmodel.canonical import canonicalize_network
from shared.netmodel.network import build_network
from superd.verify import _expected_iface, plan_mismatches

KINDS = [
    {"bridged": True},
    {"nic": "veth_1"},
    {"nic": "veth_1", "vlan": 7},
    {"nic": "veth_1", "bridged": False},
    {"nic": "veth_1", "vlan": 7, "bridged": False},
    {"bonding": "bond0", "vlan": 7, "bridged": False},
    {"nic": "veth_1", "switch": "ovs"},
    {"nic": "veth_1", "vlan": 7, "switch": "ovs"},
    {"nic": "veth_1", "bridged": False, "switch": "ovs"},
    {"nic": "veth_1", "vlan": 7, "bridged": False, "switch": "ovs"},
]


@pytest.mark.parametrize("attrs", KINDS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_the_top_device_is_the_models(attrs: dict) -> None:
    canonical = canonicalize_network("storage", attrs)
    assert _expected_iface("storage", canonical) == build_network("storage", canonical).iface


def test_a_bridgeless_ovs_vlan_network_is_verified_on_its_vlan() -> None:
    attrs = canonicalize_network("storage", {"nic": "veth_1", "vlan": 7, "bridged": False,
                                             "switch": "ovs", "ipaddr": "198.51.100.7",
                                             "prefix": 24})  # fmt: skip
    vlan = {"iface": "veth_1", "vlanid": 7, "mtu": "1500", "ipv4addrs": ["198.51.100.7/24"],
            "ipv6addrs": [], "ipv6autoconf": False, "gateway": ""}  # fmt: skip
    caps = {"bridges": {}, "nics": {"veth_1": {"mtu": "1500"}}, "vlans": {"veth_1.7": vlan}}
    ops = [{"op": "add_network", "name": "storage", "attrs": attrs}]
    assert plan_mismatches(ops, {"networks": {"storage": attrs}}, caps) == []
    del caps["vlans"]["veth_1.7"]
    assert plan_mismatches(ops, {"networks": {"storage": attrs}}, caps) == [
        "network storage: device veth_1.7 is missing"
    ]
