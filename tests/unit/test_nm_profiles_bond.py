"""The NetworkManager profiles of bonds, their slaves and VLANs, computed
from the model (pure: no bus, no NetworkManager)."""

from __future__ import annotations

import pytest

from configurators.nm_profiles import activation_order, network_profiles
from configurators.nm_profiles_bond import (
    bond_profiles,
    check_bonds,
    keep_role,
    nm_bond_options,
    with_role,
)
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.network import build_network

BOND = {"nics": ["eth1", "eth2"], "options": "mode=4 miimon=100 lacp_rate=fast"}


def profiles(name: str, attrs: dict, bond: dict | None = None) -> dict:
    network = build_network(name, attrs, None, bond)
    return {p.device: p for p in network_profiles(network)}


def bond(options: str = BOND["options"], nics: tuple[str, ...] = ("eth1", "eth2")) -> Bond:
    return Bond(name="bond0", mtu=1500, slaves=nics, options=options)


def test_bond_options_become_networkmanagers_with_named_values() -> None:
    assert nm_bond_options(bond()) == {"mode": "802.3ad", "miimon": "100", "lacp_rate": "fast"}
    assert nm_bond_options(bond("mode=1 miimon=100 primary=eth2 use_carrier=on")) == {
        "mode": "active-backup",
        "miimon": "100",
        "primary": "eth2",
        "use_carrier": "1",
    }


def test_bond_without_a_mode_is_balance_rr_as_in_the_kernel() -> None:
    assert nm_bond_options(bond("miimon=100")) == {"mode": "balance-rr", "miimon": "100"}


def test_updelay_is_rounded_down_to_miimon_as_the_kernel_does() -> None:
    options = nm_bond_options(bond("mode=1 miimon=100 updelay=250 downdelay=99"))
    assert (options["updelay"], options["downdelay"]) == ("200", "0")


@pytest.mark.parametrize("option", ["arp_missed_max=3", "lacp_active=off"])
def test_bond_options_networkmanager_has_no_key_for_are_25_naming_them(option: str) -> None:
    mode = "mode=4" if option.startswith("lacp") else "mode=1 arp_interval=100"
    name = option.split("=")[0]
    with pytest.raises(NetError) as info:
        check_bonds({"bond0": {"nics": ["eth1"], "options": f"{mode} {option}"}})
    assert info.value.code == ErrorCode.BAD_BONDING and name in info.value.message


def test_bond_profile_and_slave_profiles() -> None:
    got = {p.device: p for p in bond_profiles(bond())}
    assert got["bond0"].settings["connection"]["type"] == "bond"
    assert got["bond0"].settings["bond"]["options"]["mode"] == "802.3ad"
    assert got["bond0"].created and got["bond0"].inherit_role
    for nic in ("eth1", "eth2"):
        connection = got[nic].settings["connection"]
        assert (connection["master"], connection["slave-type"]) == ("bond0", "bond")
        assert got[nic].after == ("bond0",) and "ipv4" not in got[nic].settings


def test_bridged_network_on_a_bond_makes_the_bond_its_port() -> None:
    got = profiles("net", {"bonding": "bond0"}, BOND)
    connection = got["bond0"].settings["connection"]
    assert (connection["master"], connection["slave-type"]) == ("net", "bridge")
    assert not got["bond0"].inherit_role and "ipv4" not in got["bond0"].settings
    assert got["eth1"].settings["connection"]["master"] == "bond0"


def test_bridgeless_network_on_a_bond_puts_its_ip_on_the_bond() -> None:
    got = profiles("net", {"bonding": "bond0", "bridged": False, "ipaddr": "192.0.2.1",
                           "netmask": "255.255.255.0"}, BOND)  # fmt: skip
    ipv4 = got["bond0"].settings["ipv4"]
    assert ipv4["address-data"] == [{"address": "192.0.2.1", "prefix": 24}]
    assert "master" not in got["bond0"].settings["connection"]


def test_network_on_a_bond_netreload_does_not_define_is_25() -> None:
    with pytest.raises(NetError) as info:
        profiles("net", {"bonding": "bond7"})
    assert info.value.code == ErrorCode.BAD_BONDING


def test_bridged_vlan_network_on_a_nic_is_a_vlan_port_and_no_nic_profile() -> None:
    ip = {"ipaddr": "192.0.2.1", "netmask": "255.255.255.0"}
    got = profiles("net", {"nic": "eth0", "vlan": 10, **ip})
    assert set(got) == {"net", "eth0.10"}
    vlan = got["eth0.10"]
    assert vlan.settings["vlan"] == {"parent": "eth0", "id": 10}
    assert vlan.settings["connection"]["master"] == "net" and vlan.parent_nic == "eth0"
    assert "ipv4" not in vlan.settings and vlan.created
    assert [p.device for p in activation_order(got.values())] == ["net", "eth0.10"]


def test_bridgeless_vlan_network_on_a_bond_has_the_ip_and_leaves_the_bond_alone() -> None:
    got = profiles("net", {"bonding": "bond0", "vlan": 20, "bridged": False,
                           "ipaddr": "192.0.2.1", "netmask": "255.255.255.0"}, BOND)  # fmt: skip
    assert set(got) == {"bond0.20"}
    vlan = got["bond0.20"]
    assert vlan.settings["vlan"]["parent"] == "bond0" and vlan.parent_nic is None
    assert vlan.settings["ipv4"]["method"] == "manual"


def test_a_bond_edited_alone_keeps_the_role_its_held_profile_has() -> None:
    (profile, *_) = bond_profiles(bond())
    held = {
        "connection": {"id": "bond0", "master": "net", "slave-type": "bridge"},
        "bond": {"options": {"mode": "active-backup"}},
    }
    kept = with_role(profile, held)
    assert kept.settings["connection"]["master"] == "net"
    assert kept.settings["bond"]["options"]["mode"] == "802.3ad"
    assert kept.after == ("net",)
    fresh = with_role(profile, None)  # a new bond: no role
    assert fresh.settings["ipv4"] == {"method": "disabled"} and fresh.plain


def test_a_bond_without_a_network_keeps_ipv6_as_the_kernel_has_it() -> None:
    """No network asks anything of it: link-local, as the iproute2
    configurator leaves a bond (IPv6 disabled is a network's)."""
    (alone, *_) = bond_profiles(bond(), role=True)
    assert alone.settings["ipv6"]["method"] == "link-local" and alone.plain


def test_a_bridgeless_network_on_a_bond_without_ipv6_disables_it_on_the_bond() -> None:
    got = profiles("net", {"bonding": "bond0", "bridged": False}, BOND)["bond0"]
    assert got.settings["ipv6"] == {"method": "disabled"} and not got.plain


def test_a_bond_edited_alone_keeps_its_networks_disabled_ipv6() -> None:
    (profile, *_) = bond_profiles(bond())
    held = {"connection": {"id": "bond0"}, "ipv4": {"method": "disabled"},
            "ipv6": {"method": "disabled"}}  # fmt: skip
    kept = with_role(profile, held)
    assert kept.settings["ipv6"] == {"method": "disabled"}
    assert not kept.plain and not kept.layer2  # the network's device: IPv6 stays off


def test_a_bond_edited_with_its_network_removed_takes_the_role_the_removal_gave() -> None:
    (none_role, *_) = bond_profiles(bond("mode=1"), role=True)
    (edited, *_) = bond_profiles(bond())
    merged = keep_role(edited, none_role)
    assert not merged.inherit_role and merged.plain
    assert merged.settings["bond"]["options"]["mode"] == "802.3ad"
    assert "master" not in merged.settings["connection"]


@pytest.mark.parametrize(
    ("ipv4", "layer2"),
    [
        ({"method": "auto", "may-fail": True}, True),  # non-blocking DHCP: no lease awaited
        ({"method": "auto", "may-fail": False}, False),  # blocking DHCP
        ({"method": "manual", "address-data": [{"address": "192.0.2.1", "prefix": 24}]}, False),
    ],
)
def test_a_bond_edited_alone_awaits_what_its_held_ip_configuration_needs(
    ipv4: dict, layer2: bool
) -> None:
    (profile, *_) = bond_profiles(bond())
    held = {"connection": {"id": "bond0"}, "ipv4": ipv4, "ipv6": {"method": "link-local"}}
    kept = with_role(profile, held)
    assert kept.layer2 is layer2 and not kept.plain
    assert kept.settings["ipv4"] == ipv4
