"""The NetworkManager profiles of a network, computed from the model (pure:
no bus, no NetworkManager)."""

from __future__ import annotations

import pytest

from configurators.nm_profiles import network_profiles, profile_uuid, same_settings
from shared.errors import ErrorCode, NetError
from shared.netmodel.network import build_network
from shared.source_routing import RULE_PRIORITY, source_table


def profiles(name: str, attrs: dict) -> dict:
    return {p.device: p for p in network_profiles(build_network(name, attrs))}


def test_a_bridged_network_is_a_bridge_profile_and_a_port_profile_named_after_devices() -> None:
    got = profiles("vmnet", {"nic": "eth1", "mtu": 9000})
    bridge, port = got["vmnet"], got["eth1"]
    assert bridge.settings["connection"]["id"] == "vmnet"
    assert bridge.settings["connection"]["uuid"] == profile_uuid("vmnet")
    assert bridge.settings["802-3-ethernet"]["mtu"] == 9000
    assert port.settings["connection"]["master"] == "vmnet"
    assert port.settings["connection"]["slave-type"] == "bridge"
    assert "ipv4" not in port.settings  # a port has no IP of its own
    assert bridge.settings["user"]["data"] == {"org.ovirt.netreload": "netreload"}
    assert not bridge.settings["connection"]["autoconnect"]


def test_the_uuid_is_stable_per_device_name() -> None:
    assert profile_uuid("eth1") == profile_uuid("eth1") != profile_uuid("eth2")


def test_the_default_route_network_has_its_gateway_and_no_table() -> None:
    v4 = profiles(
        "mgmt",
        {
            "nic": "eth0",
            "ipaddr": "192.0.2.5",
            "netmask": "255.255.255.0",
            "gateway": "192.0.2.1",
            "defaultRoute": True,
        },
    )["mgmt"].settings["ipv4"]
    assert v4["gateway"] == "192.0.2.1" and v4["route-metric"] == 0
    assert "never-default" not in v4 and "routing-rules" not in v4


def test_another_network_with_a_gateway_is_source_routed_in_its_own_table() -> None:
    v4 = profiles(
        "storage",
        {
            "nic": "eth1",
            "bridged": False,
            "ipaddr": "198.51.100.7",
            "netmask": "255.255.255.0",
            "gateway": "198.51.100.1",
        },
    )["eth1"].settings["ipv4"]
    table = source_table("eth1")
    assert v4["never-default"] is True and "gateway" not in v4
    assert {"dest": "0.0.0.0", "prefix": 0, "next-hop": "198.51.100.1", "table": table} in (
        v4["route-data"]
    )
    assert [
        (r["priority"], r["table"], r.get("from"), r.get("to")) for r in v4["routing-rules"]
    ] == [
        (RULE_PRIORITY, table, "198.51.100.0", None),
        (RULE_PRIORITY, table, None, "198.51.100.0"),
    ]


def test_blocking_dhcp_needs_its_lease_and_async_dhcp_does_not() -> None:
    blocking = profiles("d", {"nic": "eth0", "bootproto": "dhcp", "blockingdhcp": True})["d"]
    background = profiles("d", {"nic": "eth0", "bootproto": "dhcp"})["d"]
    assert blocking.settings["ipv4"]["may-fail"] is False and not blocking.layer2
    assert background.settings["ipv4"]["may-fail"] is True and background.layer2


def test_ipv6_autoconf_alone_is_left_to_the_kernel() -> None:
    got = profiles("a", {"nic": "eth0", "bridged": False, "ipv6autoconf": True})["eth0"]
    assert got.settings["ipv6"] == {"method": "ignore"}


def test_a_bridged_network_without_ipv6_has_it_disabled_on_its_bridge() -> None:
    got = profiles("vmnet", {"nic": "eth1", "ipaddr": "192.0.2.5", "prefix": 24})
    assert got["vmnet"].settings["ipv6"] == {"method": "disabled"}
    assert "ipv6" not in got["eth1"].settings  # a port: NetworkManager's default


def test_a_bridgeless_network_without_any_ip_has_ipv6_disabled_on_its_nic() -> None:
    got = profiles("bare", {"nic": "eth0", "bridged": False})["eth0"]
    assert got.settings["ipv6"] == {"method": "disabled"}
    assert got.settings["ipv4"] == {"method": "disabled"} and not got.plain


@pytest.mark.parametrize(
    ("attrs", "method"),
    [
        ({"ipv6addr": "2001:db8::5/64"}, "manual"),
        ({"dhcpv6": True}, "dhcp"),
        ({"ipv6autoconf": True, "dhcpv6": True}, "auto"),
    ],
)
def test_a_network_asking_for_ipv6_keeps_it_enabled(attrs: dict, method: str) -> None:
    got = profiles("six", {"nic": "eth0", **attrs})["six"]
    assert got.settings["ipv6"]["method"] == method


def test_a_held_link_local_profile_counts_as_changed() -> None:
    """A profile an earlier release made (IPv6 link-local) is updated."""
    wanted = profiles("vmnet", {"nic": "eth1"})["vmnet"].settings
    held = {**wanted, "ipv6": {"method": "link-local", "addr-gen-mode": 0}}
    assert not same_settings(wanted, held)
    assert same_settings(wanted, {**wanted, "ipv6": {"method": "disabled", "addr-gen-mode": 1}})


def test_stp_off_leaves_the_forward_delay_to_netlink_and_stp_on_clamps_it() -> None:
    off = profiles("b", {"nic": "eth0"})["b"]
    on = profiles("b", {"nic": "eth0", "stp": True})["b"]
    assert "forward-delay" not in off.settings["bridge"] and off.forward_delay == 0
    assert on.settings["bridge"]["forward-delay"] == 2 and on.forward_delay is None


def test_bridge_opts_are_translated_to_networkmanagers_names() -> None:
    opts = "multicast_snooping=0 multicast_router=0 priority=100 group_addr=01:80:c2:00:00:0e"
    bridge = profiles("b", {"nic": "eth0", "custom": {"bridge_opts": opts}})["b"].settings["bridge"]
    assert bridge["multicast-snooping"] is False and bridge["multicast-router"] == "disabled"
    assert bridge["priority"] == 100 and bridge["group-address"] == bytes.fromhex("0180c200000e")


@pytest.mark.parametrize("opts", ["nf_call_iptables=1", "hello_time=150"])
def test_bridge_opts_networkmanager_cannot_express_are_21(opts: str) -> None:
    with pytest.raises(NetError) as info:
        profiles("b", {"nic": "eth0", "custom": {"bridge_opts": opts}})
    assert info.value.code == ErrorCode.BAD_PARAMS


def test_a_dhcp_network_without_the_default_route_routes_its_lease_in_its_own_table() -> None:
    v4 = profiles("dyn", {"nic": "eth1", "bridged": False, "bootproto": "dhcp"})["eth1"].settings[
        "ipv4"
    ]
    assert (v4["method"], v4["route-table"], v4["never-default"]) == (
        "auto", source_table("eth1"), False
    )  # fmt: skip
    assert "routing-rules" not in v4  # the lease's subnet is not known yet


def test_the_default_route_dhcp_network_routes_its_lease_in_the_main_table() -> None:
    v4 = profiles(
        "dyn", {"nic": "eth1", "bridged": False, "bootproto": "dhcp", "defaultRoute": True}
    )["eth1"].settings["ipv4"]
    assert (v4["route-table"], v4["never-default"]) == (0, False)


def test_a_wanted_zero_matches_a_key_networkmanager_does_not_show() -> None:
    wanted = {"ipv4": {"method": "auto", "route-table": 0, "never-default": False}}
    assert same_settings(wanted, {"ipv4": {"method": "auto"}})
    assert not same_settings(wanted, {"ipv4": {"method": "auto", "route-table": 7}})
