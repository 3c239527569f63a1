"""build_capabilities on hand-written plain data (no kernel, no root)."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from shared.netinfo_report import (
    IFA_F_PERMANENT,
    IFA_F_SECONDARY,
    bond_opts,
    bridge_opts,
    build_capabilities,
    parse_resolv_conf,
)

V6CONF = {"accept_ra": 1, "autoconf": 1, "disable_ipv6": 0}
NO_AUTOCONF = {"accept_ra": 0, "autoconf": 0, "disable_ipv6": 0}


def fake(*globs: str):
    return lambda name: any(fnmatch.fnmatchcase(name, g) for g in globs)


def link(name: str, index: int, **kw: Any) -> dict[str, Any]:
    out = {
        "name": name,
        "index": index,
        "kind": None,
        "slave_kind": None,
        "master": None,
        "link": None,
        "mtu": 1500,
        "address": f"02:00:00:00:00:{index:02x}",
        "permaddr": None,
        "operstate": "UP",
        "flags": 0x1043,
        "ifi_type": 1,
        "parent_dev": None,
        "info": {},
        "ipv6conf": dict(V6CONF),
    }
    out.update(kw)
    return out


def addr(index: int, address: str, prefixlen: int, flags: int = IFA_F_PERMANENT, scope=0):
    family = 6 if ":" in address else 4
    return {
        "index": index,
        "family": family,
        "address": address,
        "prefixlen": prefixlen,
        "flags": flags,
        "scope": scope,
    }


def route(oif, gateway=None, family=4, table=254, dst_len=0, priority=0, **kw):
    out = {
        "family": family,
        "table": table,
        "type": 1,
        "dst": None,
        "dst_len": dst_len,
        "gateway": gateway,
        "oif": oif,
        "priority": priority,
        "nexthops": [],
    }
    out.update(kw)
    return out


LO = link("lo", 1, flags=0x49, ifi_type=772, address="00:00:00:00:00:00")


def caps(links, addresses=(), routes=(), networks=None, globs=("veth_*", "dummy_*")):
    running = {"networks": networks or {}, "bonds": {}}
    return build_capabilities(
        links, addresses, routes, running, ["192.0.2.53"], fake(*globs)
    )


def test_top_level_shape():
    report = caps([LO])
    assert set(report) == {
        "networks",
        "bridges",
        "bondings",
        "nics",
        "vlans",
        "nameservers",
        "supportsIPv6",
    }
    assert report["nameservers"] == ["192.0.2.53"]
    assert report["supportsIPv6"] is True
    assert report["nics"] == {}


def test_supports_ipv6_false_without_inet6_conf():
    assert caps([dict(LO, ipv6conf=None)])["supportsIPv6"] is False


def test_nic_detection():
    links = [
        LO,
        link("eth0", 2, parent_dev="0000:00:03.0", permaddr="52:54:00:00:00:01"),
        link("ens5", 3),  # no linkinfo kind: a physical driver
        link("veth_0", 4, kind="veth"),  # fake NIC by name
        link("p_0", 5, kind="veth"),  # a veth not matching fake_nics
        link("dummy_1", 6, kind="dummy"),
        link("veth_br", 7, kind="bridge"),  # a bridge is never a NIC
        link("ifb0", 8, kind="ifb"),
        link("veth_0.5", 9, kind="vlan", link=4, info={"vlan_id": 5}),
    ]
    nics = caps(links)["nics"]
    assert sorted(nics) == ["dummy_1", "ens5", "eth0", "veth_0"]
    assert nics["eth0"]["hwaddr"] == "02:00:00:00:00:02"
    assert nics["veth_0"]["speed"] == 0


def test_permhwaddr_only_on_bond_slaves_as_the_agent_reports():
    links = [
        LO,
        link("bond0", 2, kind="bond", info={"bond_mode": 1}),
        link("eth0", 3, parent_dev="0000:00:03.0", permaddr="52:54:00:00:00:01",
             master=2, slave_kind="bond"),
        link("veth_0", 4, kind="veth", master=2, slave_kind="bond"),
        link("eth1", 5, parent_dev="0000:00:04.0", permaddr="52:54:00:00:00:02"),
    ]  # fmt: skip
    nics = caps(links)["nics"]
    assert nics["eth0"]["permhwaddr"] == "52:54:00:00:00:01"
    assert nics["veth_0"]["permhwaddr"] == nics["veth_0"]["hwaddr"]
    assert "permhwaddr" not in nics["eth1"]


def test_nic_detection_follows_fake_nic_globs():
    links = [LO, link("veth_0", 2, kind="veth"), link("tap7", 3, kind="tun")]
    assert sorted(caps(links, globs=("tap*",))["nics"]) == ["tap7"]
    assert caps(links, globs=())["nics"] == {}


def test_bridge_ports_stp_and_opts():
    info = {
        "br_stp_state": 1,
        "br_forward_delay": 1500,
        "br_mcast_snooping": 0,
        "br_mcast_hash_max": 4096,
        "br_mcast_last_member_cnt": 2,
        "br_mcast_query_intvl": 12500,
        "br_gc_timer": 1234,  # changes all the time: left out
        "br_group_addr": "01:80:c2:00:00:00",
        "br_group_fwd_mask": 0,
    }
    links = [
        LO,
        link("br0", 2, kind="bridge", info=info),
        link("veth_1", 3, kind="veth", master=2, slave_kind="bridge"),
        link("veth_0", 4, kind="veth", master=2, slave_kind="bridge"),
        link("br1", 5, kind="bridge"),
    ]
    report = caps(links)
    br0 = report["bridges"]["br0"]
    assert br0["ports"] == ["veth_0", "veth_1"]
    assert br0["stp"] == "on"
    assert br0["opts"] == {
        "stp_state": "1",
        "forward_delay": "1500",
        "multicast_snooping": "0",
        "hash_max": "4096",
        "multicast_last_member_count": "2",
        "multicast_query_interval": "12500",
        "group_addr": "01:80:c2:00:00:00",
        "group_fwd_mask": "0x0",
    }
    assert report["bridges"]["br1"]["ports"] == []
    assert report["bridges"]["br1"]["stp"] == "off"
    # ports of a bridge are still NICs
    assert sorted(report["nics"]) == ["veth_0", "veth_1"]


def test_bridge_opts_vlan_protocol_is_hex():
    assert bridge_opts({"br_vlan_protocol": 0x8100}) == {"vlan_protocol": "0x8100"}


def test_vlan_fields():
    links = [
        LO,
        link("veth_0", 2, kind="veth"),
        link("veth_0.100", 3, kind="vlan", link=2, info={"vlan_id": 100}, mtu=1400),
        link("orphan.7", 4, kind="vlan", link=None, info={"vlan_id": 7}),
    ]
    vlans = caps(links)["vlans"]
    assert vlans["veth_0.100"]["iface"] == "veth_0"
    assert vlans["veth_0.100"]["vlanid"] == 100
    assert vlans["veth_0.100"]["mtu"] == "1400"
    assert vlans["orphan.7"]["iface"] == ""


def test_bond_fields():
    info = {
        "bond_mode": 1,
        "bond_miimon": 150,
        "bond_updelay": 0,  # the default: left out, as the agent does
        "bond_active_slave": 3,
        "bond_primary": 3,
        "bond_ad_lacp_rate": 0,  # default (slow)
        "bond_arp_ip_target": ["10.0.0.2", "10.0.0.1"],
        "bond_num_peer_notif": 3,
    }
    links = [
        LO,
        link("bond0", 2, kind="bond", info=info, address="02:aa:00:00:00:01"),
        link("veth_1", 3, kind="veth", master=2, slave_kind="bond"),
        link("veth_0", 4, kind="veth", master=2, slave_kind="bond"),
        link("bond1", 5, kind="bond", info={"bond_mode": 4, "bond_active_slave": 0}),
    ]
    report = caps(links)
    bond0 = report["bondings"]["bond0"]
    assert bond0["slaves"] == ["veth_0", "veth_1"]
    assert bond0["active_slave"] == "veth_1"
    assert bond0["hwaddr"] == "02:aa:00:00:00:01"
    assert bond0["opts"] == {
        "mode": "1",
        "miimon": "150",
        "primary": "veth_1",
        "arp_ip_target": "10.0.0.1,10.0.0.2",
        "num_grat_arp": "3",
        "num_unsol_na": "3",
    }
    assert report["bondings"]["bond1"]["active_slave"] == ""
    assert report["bondings"]["bond1"]["opts"] == {"mode": "4"}
    assert "bond0" not in report["nics"]


def test_bond_opts_enum_values_are_numeric_and_defaults_optional():
    info = {
        "bond_mode": 4,
        "bond_ad_lacp_rate": 1,
        "bond_xmit_hash_policy": 2,
        "bond_ad_select": 0,
        "bond_miimon": 100,
        "bond_use_carrier": True,
        "bond_primary": 0,
    }
    assert bond_opts(info, {}) == {"mode": "4", "lacp_rate": "1", "xmit_hash_policy": "2"}
    full = bond_opts(info, {}, with_defaults=True)
    assert full["ad_select"] == "0" and full["miimon"] == "100"
    assert full["use_carrier"] == "1" and full["primary"] == ""


def test_bond_opts_always_has_numeric_mode():
    assert bond_opts({}, {}) == {"mode": "0"}
    assert bond_opts({"bond_mode": 0}, {}) == {"mode": "0"}


def test_addresses_primary_netmask_and_ipv6_scope():
    links = [LO, link("veth_0", 2, kind="veth")]
    addresses = [
        addr(2, "10.0.0.5", 24),
        addr(2, "10.0.0.6", 24, IFA_F_PERMANENT | IFA_F_SECONDARY),
        addr(2, "192.168.1.1", 16),
        addr(2, "2001:db8::1", 64),
        addr(2, "fe80::1", 64, scope=253),
        addr(1, "127.0.0.1", 8, scope=254),
    ]
    nic = caps(links, addresses)["nics"]["veth_0"]
    assert nic["addr"] == "10.0.0.5"
    assert nic["netmask"] == "255.255.255.0"
    assert nic["ipv4addrs"] == ["10.0.0.5/24", "10.0.0.6/24", "192.168.1.1/16"]
    assert nic["ipv6addrs"] == ["2001:db8::1/64"]
    assert nic["dhcpv4"] is False
    assert nic["dhcpv6"] is False


def test_primary_skips_secondary_addresses():
    links = [LO, link("veth_0", 2, kind="veth")]
    addresses = [
        addr(2, "10.9.0.1", 8, IFA_F_PERMANENT | IFA_F_SECONDARY),
        addr(2, "10.0.0.5", 30),
    ]
    nic = caps(links, addresses)["nics"]["veth_0"]
    assert (nic["addr"], nic["netmask"]) == ("10.0.0.5", "255.255.255.252")


def test_no_address():
    nic = caps([LO, link("veth_0", 2, kind="veth")])["nics"]["veth_0"]
    assert (nic["addr"], nic["netmask"], nic["ipv4addrs"]) == ("", "", [])
    assert nic["ipv6gateway"] == "::"
    assert nic["gateway"] == ""
    assert nic["ipv4defaultroute"] is False


@pytest.mark.parametrize(
    ("addresses", "dhcpv4", "dhcpv6", "v6"),
    [
        ([addr(2, "10.0.0.5", 24, flags=0)], True, False, []),
        ([addr(2, "2001:db8::7", 128, flags=0)], False, True, ["2001:db8::7/128"]),
        # SLAAC: not permanent either, but not a DHCPv6 lease
        ([addr(2, "2001:db8::a:b", 64, flags=0)], False, False, ["2001:db8::a:b/64"]),
        ([addr(2, "2001:db8::7", 128)], False, False, ["2001:db8::7/128"]),
        # a non-permanent link-local address is not a lease
        ([addr(2, "fe80::7", 128, flags=0, scope=253)], False, False, []),
    ],
)
def test_dhcp_flags(addresses, dhcpv4, dhcpv6, v6):
    nic = caps([LO, link("veth_0", 2, kind="veth")], addresses)["nics"]["veth_0"]
    assert (nic["dhcpv4"], nic["dhcpv6"], nic["ipv6addrs"]) == (dhcpv4, dhcpv6, v6)


def test_ipv6autoconf_from_devconf():
    links = [
        LO,
        link("veth_0", 2, kind="veth"),
        link("veth_1", 3, kind="veth", ipv6conf=dict(NO_AUTOCONF)),
        link("veth_2", 4, kind="veth", ipv6conf={"accept_ra": 0, "autoconf": 1}),
        link("veth_3", 5, kind="veth", ipv6conf=None),
    ]
    nics = caps(links)["nics"]
    assert [nics[f"veth_{i}"]["ipv6autoconf"] for i in range(4)] == [
        True,
        False,
        False,
        False,
    ]


def test_default_route_and_gateways():
    links = [LO] + [link(f"veth_{i}", i + 2, kind="veth") for i in range(4)]
    routes = [
        route(2, "10.0.0.254", priority=100),
        route(3, "10.1.0.254", priority=10),  # the best default route
        route(4, "10.2.0.254", table=100),  # not the main table
        route(4, None, dst_len=24, dst="10.2.0.0"),  # not a default route
        route(5, "2001:db8::fe", family=6, priority=1024),
        route(2, "fe80::1", family=6, priority=1024, type=7),  # not unicast
    ]
    nics = caps(links, routes=routes)["nics"]
    assert nics["veth_0"]["gateway"] == "10.0.0.254"
    assert nics["veth_0"]["ipv4defaultroute"] is False
    assert nics["veth_1"]["gateway"] == "10.1.0.254"
    assert nics["veth_1"]["ipv4defaultroute"] is True
    assert nics["veth_2"]["gateway"] == ""
    assert nics["veth_2"]["ipv4defaultroute"] is False
    assert nics["veth_3"]["ipv6gateway"] == "2001:db8::fe"
    assert nics["veth_3"]["ipv4defaultroute"] is False
    assert nics["veth_0"]["ipv6gateway"] == "::"


def test_gateway_from_a_table_a_rule_looks_up():
    links = [LO] + [link(f"veth_{i}", i + 2, kind="veth") for i in range(3)]
    routes = [
        route(2, "10.0.0.254"),  # the main table's default route
        route(3, "10.1.0.254", table=146342471),  # source routing, looked up below
        route(4, "10.2.0.254", table=777),  # a table no rule looks up
        route(2, "10.0.0.253", table=146342471),  # a table's, but main has one for veth_0
    ]
    rules = [{"table": 146342471, "priority": 3200, "src": "10.1.0.0", "src_len": 24},
             {"table": 254, "priority": 32766}]  # fmt: skip
    report = build_capabilities(links, (), routes, {"networks": {}, "bonds": {}}, [],
                                fake("veth_*"), rules)  # fmt: skip
    gateways = {n: (e["gateway"], e["ipv4defaultroute"]) for n, e in report["nics"].items()}
    assert gateways == {"veth_0": ("10.0.0.254", True), "veth_1": ("10.1.0.254", False),
                        "veth_2": ("", False)}  # fmt: skip


def test_multipath_default_route():
    links = [LO, link("veth_0", 2, kind="veth"), link("veth_1", 3, kind="veth")]
    hops = [{"oif": 2, "gateway": "10.0.0.1"}, {"oif": 3, "gateway": "10.1.0.1"}]
    nics = caps(links, routes=[route(None, None, nexthops=hops)])["nics"]
    assert nics["veth_0"]["gateway"] == "10.0.0.1"
    assert nics["veth_1"]["gateway"] == "10.1.0.1"
    assert nics["veth_0"]["ipv4defaultroute"] and nics["veth_1"]["ipv4defaultroute"]


def test_networks_bridged_bridgeless_and_vlan():
    links = [
        LO,
        link("veth_0", 2, kind="veth", master=4),
        link("veth_1", 3, kind="veth"),
        link("net0", 4, kind="bridge", info={"br_stp_state": 0}, mtu=9000),
        link("veth_1.7", 5, kind="vlan", link=3, info={"vlan_id": 7}),
    ]
    addresses = [addr(4, "10.0.0.1", 24), addr(5, "10.7.0.1", 24)]
    routes = [route(4, "10.0.0.254")]
    networks = {
        "net0": {"bridged": True, "nic": "veth_0", "stp": False, "mtu": 9000},
        "flat": {"bridged": False, "nic": "veth_1", "vlan": 7, "switch": "legacy"},
    }
    report = caps(links, addresses, routes, networks)
    net0 = report["networks"]["net0"]
    assert net0["iface"] == "net0"
    assert net0["bridged"] is True
    assert net0["ports"] == ["veth_0"]
    assert net0["stp"] == "off"
    assert net0["switch"] == "legacy"
    assert net0["mtu"] == "9000"
    assert net0["southbound"] == "veth_0"
    assert "vlanid" not in net0
    assert (net0["addr"], net0["gateway"], net0["ipv4defaultroute"]) == (
        "10.0.0.1",
        "10.0.0.254",
        True,
    )
    assert "interface" not in net0
    assert "missing" not in net0
    flat = report["networks"]["flat"]
    assert flat["iface"] == flat["interface"] == "veth_1.7"
    assert flat["bridged"] is False
    assert flat["southbound"] == "veth_1.7" and flat["vlanid"] == 7
    assert "ports" not in flat and "stp" not in flat
    assert flat["ipv4addrs"] == ["10.7.0.1/24"]


def test_bridgeless_network_on_nic():
    links = [LO, link("veth_1", 2, kind="veth")]
    networks = {"plain": {"bridged": False, "nic": "veth_1"}}
    net = caps(links, networks=networks)["networks"]["plain"]
    assert net["iface"] == net["interface"] == "veth_1"


def test_missing_network_is_reported_not_fatal():
    networks = {
        "gone": {"bridged": True, "nic": "veth_9", "mtu": 1400, "stp": True},
        "gone2": {"bridged": False, "bonding": "bond7", "vlan": 3},
        "nothing": {"bridged": False},
    }
    report = caps([LO], networks=networks)["networks"]
    assert report["gone"]["missing"] is True
    assert report["gone"]["iface"] == "gone"
    assert report["gone"]["mtu"] == "1400"
    assert report["gone"]["stp"] == "on"
    assert report["gone"]["southbound"] is None
    assert report["gone"]["ports"] == []
    assert report["gone"]["ipv4addrs"] == []
    assert report["gone2"]["missing"] is True
    assert report["gone2"]["iface"] == report["gone2"]["interface"] == "bond7.3"
    assert report["nothing"]["missing"] is True


def test_parse_resolv_conf():
    text = "# comment\nsearch example.org\nnameserver 10.0.0.1\nnameserver  ::1 \n"
    assert parse_resolv_conf(text + "nameserver\noptions edns0\n") == ["10.0.0.1", "::1"]


# -- the memoizing builder ------------------------------------------------------


def _by_index(addrs):
    """Addresses per device, as a live state holds them (tuples kept while
    unchanged)."""
    by_index: dict = {}
    for a in addrs:
        by_index[a["index"]] = by_index.get(a["index"], ()) + (a,)
    return by_index


def _build(builder, links, by_index, networks):
    running = {"networks": networks, "bonds": {}}
    return builder.build(links, by_index, [route(5, "10.0.0.254")], running, [], fake("veth_*"))


def test_builder_reuses_entries_whose_inputs_are_the_same_objects():
    from shared.netinfo_report import ReportBuilder

    builder = ReportBuilder()
    bridges = [link("br0", 5, kind="bridge"), link("br1", 6, kind="bridge")]
    links = [LO, link("veth_0", 4, master=5), *bridges]
    addrs = _by_index([addr(5, "10.0.0.1", 24), addr(6, "10.0.1.1", 24)])
    nets = {"br0": {"nic": "veth_0", "bridged": True}, "br1": {"bridged": True}}
    first = _build(builder, links, addrs, nets)
    changed = dict(links[3], mtu=9000)  # br1 changed: a new object, as a new state has
    second = _build(builder, links[:3] + [changed], addrs, nets)
    assert second["bridges"]["br0"] is first["bridges"]["br0"]
    assert second["networks"]["br0"] is first["networks"]["br0"]
    assert second["bridges"]["br1"]["mtu"] == "9000" and second["networks"]["br1"]["mtu"] == "9000"
    assert second == _build(ReportBuilder(), links[:3] + [changed], addrs, nets)


def test_builder_sees_a_new_port_and_a_new_gateway_of_an_unchanged_bridge():
    from shared.netinfo_report import ReportBuilder

    builder = ReportBuilder()
    bridge = link("br0", 5, kind="bridge")
    nets = {"br0": {"bridged": True}}
    before = _build(builder, [LO, bridge, link("veth_0", 4)], {}, nets)
    after = _build(builder, [LO, bridge, link("veth_0", 4, master=5)], {}, nets)
    assert before["bridges"]["br0"]["ports"] == []
    assert after["bridges"]["br0"]["ports"] == ["veth_0"]
    assert after["networks"]["br0"]["gateway"] == "10.0.0.254"


def test_missing_nics_does_not_stick_to_a_reused_entry():
    from shared.netinfo_report import ReportBuilder

    builder = ReportBuilder()
    bridge = link("br0", 5, kind="bridge")
    nets = {"br0": {"nic": "veth_0", "bridged": True}}
    gone = _build(builder, [LO, bridge], {}, nets)
    back = _build(builder, [LO, bridge, link("veth_0", 4, master=5)], {}, nets)
    assert gone["networks"]["br0"]["missing_nics"] == ["veth_0"]
    assert "missing_nics" not in back["networks"]["br0"]


def test_lacp_aggregator_and_partner_are_reported_as_the_agent_does() -> None:
    info = {"bond_mode": 4, "bond_ad_info_aggregator": 2,
            "bond_ad_info_partner_mac": "52:54:00:aa:bb:cc"}  # fmt: skip
    slave = {"bond_slave_perm_hwaddr": "52:54:00:00:00:01", "bond_slave_ad_aggregator_id": 2}
    links = [
        LO,
        link("bond0", 2, kind="bond", info=info),
        link("veth_0", 3, kind="veth", master=2, slave_kind="bond", slave_info=slave),
        link("bond1", 4, kind="bond", info={"bond_mode": 4}),  # no active aggregator
    ]
    report = caps(links)
    bond0, bond1 = report["bondings"]["bond0"], report["bondings"]["bond1"]
    assert (bond0["ad_aggregator_id"], bond0["ad_partner_mac"]) == ("2", "52:54:00:aa:bb:cc")
    assert "ad_aggregator_id" not in bond1 and "ad_partner_mac" not in bond1
    nic = report["nics"]["veth_0"]
    assert (nic["ad_aggregator_id"], nic["permhwaddr"]) == ("2", "52:54:00:00:00:01")


def test_a_dhcp_network_and_its_bridge_say_dhcp_before_the_lease_comes() -> None:
    links = [LO, link("veth_0", 2, kind="veth", master=3), link("dyn", 3, kind="bridge")]
    networks = {"dyn": {"bridged": True, "nic": "veth_0", "bootproto": "dhcp", "dhcpv6": True},
                "static": {"bridged": True}}  # fmt: skip
    report = caps(links + [link("static", 4, kind="bridge")], networks=networks)
    for entry in (report["networks"]["dyn"], report["bridges"]["dyn"]):
        assert (entry["dhcpv4"], entry["dhcpv6"], entry["ipv4addrs"]) == (True, True, [])
    assert report["networks"]["static"]["dhcpv4"] is False
    assert report["bridges"]["static"]["dhcpv4"] is False


def test_a_team_is_reported_under_bondings_with_the_options_asked_for():
    links = [
        LO,
        link("bond7", 2, kind="team", address="02:aa:00:00:00:07"),
        link("dummy_1", 3, master=2, slave_kind="team"),
        link("dummy_0", 4, master=2, slave_kind="team"),
    ]
    running = {"networks": {},
               "bonds": {"bond7": {"nics": ["dummy_0", "dummy_1"],
                                   "options": "lacp_rate=fast mode=802.3ad"}}}  # fmt: skip
    report = build_capabilities(links, (), (), running, [], fake("dummy_*"))
    team = report["bondings"]["bond7"]
    assert team["slaves"] == ["dummy_0", "dummy_1"]
    assert team["opts"] == {"mode": "4", "lacp_rate": "1"}
    assert team["hwaddr"] == "02:aa:00:00:00:07" and team["switch"] == "legacy"
    assert "bond7" not in report["nics"] and "dummy_0" in report["nics"]
