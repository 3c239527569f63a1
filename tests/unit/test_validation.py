"""Every validation rule of a setupNetworks request, one test each.

Requests are planned against a host described as data (tests/unit/conftest.py),
so these run without root.
"""

from __future__ import annotations

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig


def reject(host, networks, bondings=None, running=None) -> ErrorCode:
    with pytest.raises(NetError) as info:
        plan_setup_networks(networks, bondings or {}, {}, host, running or RunningConfig())
    assert info.value.message
    return info.value.code


def accept(host, networks, bondings=None, running=None):
    return plan_setup_networks(networks, bondings or {}, {}, host, running or RunningConfig())


# --- names ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a" * 16, "br:0", "br.0", "br 0", "br\t0", "-br", "a/b", 7])
def test_invalid_bridge_name_is_bad_bridge(host, name) -> None:
    assert reject(host, {name: {"nic": "veth_0"}}) == ErrorCode.BAD_BRIDGE


@pytest.mark.parametrize("name", ["../x", "a/b", "x\x00", "", "a.b"])
def test_invalid_bridgeless_network_name_is_bad_params(host, name) -> None:
    assert reject(host, {name: {"nic": "veth_0", "bridged": False}}) == 21


@pytest.mark.parametrize("name", ["bond", "bnd0", "bond-0", "bond0/x", "bond" + "x" * 12])
def test_invalid_bond_name_is_bad_bonding(host, name) -> None:
    code = reject(host, {}, {name: {"nics": ["veth_0"]}})
    assert code == ErrorCode.BAD_BONDING


# --- network shape -------------------------------------------------------


def test_nic_and_bonding_together_rejected(host) -> None:
    nets = {"n": {"nic": "veth_0", "bonding": "bond9", "bridged": False}}
    assert reject(host, nets) == ErrorCode.BAD_PARAMS


def test_bridgeless_network_without_nic_or_bond_rejected(host) -> None:
    assert reject(host, {"n": {"bridged": False}}) == ErrorCode.BAD_PARAMS


def test_nicless_bridge_accepted(host) -> None:
    plan = accept(host, {"n": {"ipaddr": "10.1.0.1", "prefix": 24}})
    assert [op["op"] for op in plan.operations] == ["add_network"]


def test_vlan_without_nic_or_bond_is_bad_vlan(host) -> None:
    assert reject(host, {"n": {"vlan": 5}}) == ErrorCode.BAD_VLAN


def test_vlan_device_name_longer_than_15_is_bad_vlan() -> None:
    host = NetinfoSnapshot(nics={"veth_abcdefghij": {"mtu": 1500}})
    assert reject(host, {"n": {"nic": "veth_abcdefghij", "vlan": 4000}}) == 26


def test_unknown_nic_is_bad_nic(host) -> None:
    assert reject(host, {"n": {"nic": "veth_77"}}) == ErrorCode.BAD_NIC


def test_network_on_bond_slave_is_used_nic(host) -> None:
    assert reject(host, {"n": {"nic": "eth9"}}) == ErrorCode.USED_NIC


def test_unknown_bond_is_bad_bonding(host) -> None:
    assert reject(host, {"n": {"bonding": "bond5"}}) == ErrorCode.BAD_BONDING


def test_network_on_bond_defined_in_same_request_accepted(host) -> None:
    plan = accept(host, {"n": {"bonding": "bond1", "vlan": 3}}, {"bond1": {"nics": ["veth_0"]}})
    assert [op["op"] for op in plan.operations] == ["add_bond", "add_network"]


# --- addresses -----------------------------------------------------------


def test_ipaddr_without_netmask_is_bad_address(host) -> None:
    assert reject(host, {"n": {"nic": "veth_0", "ipaddr": "10.0.0.1"}}) == 22


def test_netmask_without_ipaddr_is_bad_address(host) -> None:
    assert reject(host, {"n": {"nic": "veth_0", "netmask": "255.0.0.0"}}) == 22


def test_gateway_without_ipaddr_is_bad_address(host) -> None:
    assert reject(host, {"n": {"nic": "veth_0", "gateway": "10.0.0.254"}}) == 22


def test_non_contiguous_netmask_is_bad_address(host) -> None:
    nets = {"n": {"nic": "veth_0", "ipaddr": "10.0.0.1", "netmask": "255.0.255.0"}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


def test_static_and_dhcp_are_mutually_exclusive(host) -> None:
    nets = {"n": {"nic": "veth_0", "ipaddr": "10.0.0.1", "prefix": 8, "bootproto": "dhcp"}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


@pytest.mark.parametrize("gateway", ["10.0.0.300", "gateway", "2001:db8::1"])
def test_invalid_gateway_is_bad_address(host, gateway) -> None:
    nets = {"n": {"nic": "veth_0", "ipaddr": "10.0.0.1", "prefix": 8, "gateway": gateway}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


def test_invalid_ipaddr_is_bad_address(host) -> None:
    nets = {"n": {"nic": "veth_0", "ipaddr": "10.0.0", "prefix": 8}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


def test_static_ipv6_with_autoconf_is_bad_address(host) -> None:
    nets = {"n": {"nic": "veth_0", "ipv6addr": "2001:db8::1/64", "ipv6autoconf": True}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


def test_invalid_ipv6_gateway_is_bad_address(host) -> None:
    nets = {"n": {"nic": "veth_0", "ipv6addr": "2001:db8::1/64", "ipv6gateway": "10.0.0.1"}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


def test_nameservers_only_on_default_route_network(host) -> None:
    nets = {"n": {"nic": "veth_0", "nameservers": ["192.0.2.1"]}}
    assert reject(host, nets) == ErrorCode.BAD_PARAMS


def test_invalid_nameserver_is_bad_address(host) -> None:
    nets = {"n": {"nic": "veth_0", "defaultRoute": True, "nameservers": ["dns.example"]}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


@pytest.mark.parametrize(
    "server",
    [
        "fe80::1%x options ndots:15",  # would become resolv.conf options
        "fe80::1%eth0\nnameserver 203.0.113.66",  # would become a second line
        "fe80::1%a/b",
        "fe80::1%eth:0",
        "fe80::1%",
        "fe80::1%..",
        "fe80::1%abcdefghijklmnop",  # 16 characters: longer than any device name
        "2001:db8::53%eth0",  # a scope on a global address
        "192.0.2.1%eth0",
        "192.0.2.1 ",
        "١.2.3.4",
    ],
)
def test_nameserver_with_more_than_an_address_is_bad_address(host, server: str) -> None:
    nets = {"n": {"nic": "veth_0", "defaultRoute": True, "nameservers": [server]}}
    assert reject(host, nets) == ErrorCode.BAD_ADDR


@pytest.mark.parametrize("server", ["192.0.2.53", "2001:db8::53", "fe80::1%veth_0", "fe80::1%2"])
def test_nameserver_addresses_and_link_local_scopes_are_accepted(host, server: str) -> None:
    nets = {"n": {"nic": "veth_0", "defaultRoute": True, "nameservers": [server]}}
    assert accept(host, nets)


# --- bonds ---------------------------------------------------------------


@pytest.mark.parametrize("bond", [{"nics": []}, {}, {"options": "mode=1"}])
def test_bond_without_nics_is_bad_params(host, bond) -> None:
    assert reject(host, {}, {"bond1": bond}) == ErrorCode.BAD_PARAMS


def test_bond_with_unknown_nic_is_bad_nic(host) -> None:
    assert reject(host, {}, {"bond1": {"nics": ["veth_9"]}}) == ErrorCode.BAD_NIC


def test_bond_slave_of_another_bond_is_used_nic(host) -> None:
    assert reject(host, {}, {"bond1": {"nics": ["eth9"]}}) == ErrorCode.USED_NIC


def test_same_nic_in_two_bonds_is_used_nic(host) -> None:
    bonds = {"bond1": {"nics": ["veth_0"]}, "bond2": {"nics": ["veth_0", "veth_1"]}}
    assert reject(host, {}, bonds) == ErrorCode.USED_NIC


def test_bond_slave_carrying_a_network_is_used_nic(host) -> None:
    running = RunningConfig(networks={"n": {"nic": "veth_1", "bridged": True, "mtu": 1500}})
    assert reject(host, {}, {"bond1": {"nics": ["veth_1"]}}, running) == ErrorCode.USED_NIC


def test_bond_slave_carrying_vlans_is_used_nic(host) -> None:
    assert reject(host, {}, {"bond1": {"nics": ["veth_3"]}}) == ErrorCode.USED_NIC


def test_bond_with_bad_option_is_bad_bonding(host) -> None:
    bonds = {"bond1": {"nics": ["veth_0"], "options": "mode=1 lacp_rate=fast"}}
    assert reject(host, {}, bonds) == ErrorCode.BAD_BONDING


def test_bond_with_bad_hwaddr_is_bad_bonding(host) -> None:
    bonds = {"bond1": {"nics": ["veth_0"], "hwaddr": "not-a-mac"}}
    assert reject(host, {}, bonds) == ErrorCode.BAD_BONDING


def test_removing_a_bond_in_use_is_used_bond(host) -> None:
    running = RunningConfig(
        networks={"n": {"bonding": "bond1", "bridged": True, "mtu": 1500}},
        bonds={"bond1": {"nics": ["veth_0"], "options": "", "switch": "legacy"}},
    )
    assert reject(host, {}, {"bond1": {"remove": True}}, running) == ErrorCode.USED_BOND


def test_removing_unknown_bond_is_bad_bonding(host) -> None:
    assert reject(host, {}, {"bond4": {"remove": True}}) == ErrorCode.BAD_BONDING


def test_removing_unknown_network_is_bad_bridge(host) -> None:
    assert reject(host, {"ghost": {"remove": True}}) == ErrorCode.BAD_BRIDGE


# --- combinations on one NIC or bond --------------------------------------


def test_two_untagged_networks_on_one_nic_is_bad_params(host) -> None:
    nets = {"a": {"nic": "veth_0"}, "b": {"nic": "veth_0", "bridged": False}}
    assert reject(host, nets) == ErrorCode.BAD_PARAMS


def test_two_untagged_networks_on_one_bond_is_bad_params(host) -> None:
    nets = {"a": {"bonding": "bond1"}, "b": {"bonding": "bond1", "bridged": False}}
    assert reject(host, nets, {"bond1": {"nics": ["veth_0"]}}) == ErrorCode.BAD_PARAMS


def test_untagged_network_against_running_one_is_bad_params(host) -> None:
    running = RunningConfig(networks={"a": {"nic": "veth_0", "bridged": True, "mtu": 1500}})
    assert reject(host, {"b": {"nic": "veth_0"}}, running=running) == ErrorCode.BAD_PARAMS


def test_same_vlan_twice_on_one_nic_is_bad_params(host) -> None:
    nets = {"a": {"nic": "veth_0", "vlan": 5}, "b": {"nic": "veth_0", "vlan": 5}}
    assert reject(host, nets) == ErrorCode.BAD_PARAMS


def test_one_untagged_and_several_vlans_on_one_nic_accepted(host) -> None:
    nets = {
        "a": {"nic": "veth_0"},
        "b": {"nic": "veth_0", "vlan": 5},
        "c": {"nic": "veth_0", "vlan": 6, "bridged": False},
    }
    assert len(accept(host, nets).operations) == 3


def test_mixed_switch_types_on_one_nic_rejected(host) -> None:
    nets = {"a": {"nic": "veth_0", "vlan": 1}, "b": {"nic": "veth_0", "vlan": 2, "switch": "ovs"}}
    assert reject(host, nets) == ErrorCode.BAD_PARAMS


def test_two_default_routes_in_one_request_rejected(host) -> None:
    nets = {
        "a": {"nic": "veth_0", "defaultRoute": True, "bootproto": "dhcp"},
        "b": {"nic": "veth_1", "defaultRoute": True, "bootproto": "dhcp"},
    }
    assert reject(host, nets) == ErrorCode.BAD_PARAMS


def test_bridge_named_like_an_existing_nic_is_bad_bridge(host) -> None:
    assert reject(host, {"veth_2": {"nic": "veth_0"}}) == ErrorCode.BAD_BRIDGE


# --- MTU -----------------------------------------------------------------


def test_nic_carries_maximum_mtu_of_its_networks(host) -> None:
    nets = {
        "a": {"nic": "veth_0", "vlan": 1, "mtu": 9000},
        "b": {"nic": "veth_0", "vlan": 2, "mtu": 4000},
    }
    plan = accept(host, nets)
    assert {"op": "set_mtu", "device": "veth_0", "mtu": 9000} in plan.operations


def test_nic_mtu_shrinks_when_its_biggest_user_goes(host) -> None:
    host = NetinfoSnapshot(nics={"veth_0": {"mtu": 9000}})
    running = RunningConfig(
        networks={
            "a": {"nic": "veth_0", "vlan": 1, "bridged": True, "mtu": 9000},
            "b": {"nic": "veth_0", "vlan": 2, "bridged": True, "mtu": 4000},
        }
    )
    plan = accept(host, {"a": {"remove": True}}, running=running)
    assert {"op": "set_mtu", "device": "veth_0", "mtu": 4000} in plan.operations


def test_network_on_bond_found_on_the_host_is_accepted(host) -> None:
    plan = accept(host, {"n": {"bonding": "bond9", "bridged": False}})
    assert [op["op"] for op in plan.operations] == ["add_network"]


def test_bond_option_error_names_the_bond(host) -> None:
    bonds = {"bond1": {"nics": ["veth_0"], "options": "mode=1 lacp_rate=fast"}}
    with pytest.raises(NetError) as info:
        accept(host, {}, bonds)
    assert "bond1" in info.value.message
