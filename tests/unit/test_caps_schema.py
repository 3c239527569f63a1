"""The whole capabilities report, every host shape, against the agent's
contract (``shared.caps_schema``): keys, types and defaults the engine's
casts rely on."""

from __future__ import annotations

import copy

import pytest

from configurators import ovs_layout as layout
from shared.caps_schema import problems
from shared.netinfo_report import IFA_F_PERMANENT, build_capabilities
from superd.ovs_report import overlay
from tests.unit.test_netinfo_report import LO, addr, fake, link, route

BRIDGE_INFO = {"br_stp_state": 1, "br_forward_delay": 1500, "br_mcast_snooping": 0,
               "br_group_fwd_mask": 0, "br_vlan_protocol": 0x8100, "br_priority": 100}  # fmt: skip


def _legacy_host() -> dict:
    """Bridged, bridgeless, VLAN, bond, nic-less, DHCP, IPv6 and missing."""
    links = [
        LO,
        link("veth_0", 2, kind="veth", master=10, slave_kind="bridge"),
        link("veth_1", 3, kind="veth", master=20, slave_kind="bond"),
        link("veth_2", 4, kind="veth", master=20, slave_kind="bond"),
        link("veth_3", 5, kind="veth"),
        link("veth_4", 6, kind="veth"),
        link("red", 10, kind="bridge", info=BRIDGE_INFO, mtu=9000),
        link("bond0", 20, kind="bond", info={"bond_mode": 1, "bond_active_slave": 3}),
        link("bond0.30", 21, kind="vlan", link=20, info={"vlan_id": 30}, master=22),
        link("blue", 22, kind="bridge"),
        link("bond0.40", 23, kind="vlan", link=20, info={"vlan_id": 40}),
        link("island", 24, kind="bridge"),
        link("dyn", 25, kind="bridge"),
        link("veth_4.5", 26, kind="vlan", link=6, info={"vlan_id": 5}, master=25),
    ]
    addresses = [
        addr(10, "10.0.0.1", 24),
        addr(10, "2001:db8::1", 64),
        addr(23, "10.40.0.1", 24),
        addr(5, "192.0.2.9", 24),
        addr(25, "10.25.0.7", 24, flags=0),  # a DHCP lease
        addr(25, "2001:db8:25::7", 128, flags=0),  # a DHCPv6 lease
    ]
    routes = [route(10, "10.0.0.254"), route(10, "2001:db8::fe", family=6, priority=1024)]
    networks = {
        "red": {"bridged": True, "nic": "veth_0", "stp": True, "mtu": 9000,
                "ipaddr": "10.0.0.1", "netmask": "255.255.255.0", "gateway": "10.0.0.254",
                "defaultRoute": True, "ipv6addr": "2001:db8::1/64"},
        "blue": {"bridged": True, "bonding": "bond0", "vlan": 30},
        "green": {"bridged": False, "bonding": "bond0", "vlan": 40},
        "flat": {"bridged": False, "nic": "veth_3"},
        "island": {"bridged": True},
        "dyn": {"bridged": True, "nic": "veth_4", "vlan": 5, "bootproto": "dhcp",
                "dhcpv6": True, "ipv6autoconf": True},
        "gone": {"bridged": True, "nic": "veth_9", "stp": True},
        "gone_flat": {"bridged": False, "bonding": "bond7", "vlan": 3},
    }  # fmt: skip
    running = {"networks": networks, "bonds": {"bond0": {"nics": ["veth_1", "veth_2"]},
                                               "bond7": {"nics": ["veth_8"]}}}  # fmt: skip
    return build_capabilities(links, addresses, routes, running, ["192.0.2.53"],
                              fake("veth_*"))  # fmt: skip


def _ovs_host() -> dict:
    """OVS: bridged, tagged on a bond, bridgeless on a NIC, and missing."""
    links = [
        LO,
        link("veth_0", 2, kind="veth", master=9),
        link("veth_1", 3, kind="veth", master=9),
        link("veth_2", 4, kind="veth", master=9),
        link("ovs-system", 9, kind="openvswitch"),
        link("ovsnet", 10, kind="openvswitch"),
        link("vnet20", 11, kind="openvswitch"),
        link("storage", 12, kind="openvswitch"),
    ]
    addresses = [addr(10, "10.0.0.1", 24), addr(12, "198.51.100.7", 24, IFA_F_PERMANENT)]
    networks = {
        "ovsnet": {"switch": "ovs", "bridged": True, "nic": "veth_0", "mtu": 1500},
        "vnet20": {"switch": "ovs", "bridged": True, "bonding": "bond0", "vlan": 20},
        "storage": {"switch": "ovs", "bridged": False, "nic": "veth_2", "mtu": 1500},
        "lost": {"switch": "ovs", "bridged": False, "nic": "veth_7", "vlan": 4},
    }
    bonds = {"bond0": {"switch": "ovs", "nics": ["veth_1", "veth_3"]}}
    running = {"networks": networks, "bonds": bonds}
    state = layout.empty_state()
    layout.add_bond(state, layout.OvsBond("bond0", ("veth_1", "veth_3"), "balance-slb",
                                          "off", 1500), "system")  # fmt: skip
    for name, attrs in networks.items():
        if name != "lost":
            layout.add_network(state, layout.OvsNetwork.from_attrs(name, attrs, None), "system")
    caps = build_capabilities(links, addresses, [], running, [], fake("veth_*"))
    return overlay(caps, state, running)


def _answer(report: dict, dirty: bool = False) -> dict:
    """What frontd answers: the report and netConfigDirty."""
    return {**report, "netConfigDirty": str(dirty)}


@pytest.mark.parametrize("host", [_legacy_host, _ovs_host], ids=["legacy", "ovs"])
def test_every_shape_of_the_report_fits_the_agents_types(host) -> None:
    report = host()
    assert problems(report, answer=False) == []
    assert problems(_answer(report)) == []


def test_the_legacy_host_covers_each_section_of_the_contract() -> None:
    report = _legacy_host()
    assert {"red", "blue", "island", "dyn"} <= set(report["bridges"])
    assert set(report["bondings"]) == {"bond0"} and len(report["vlans"]) == 3
    nets = report["networks"]
    assert (nets["red"]["mtu"], nets["red"]["stp"], nets["red"]["southbound"]) == (
        "9000", "on", "veth_0")  # fmt: skip
    assert (nets["blue"]["southbound"], nets["blue"]["vlanid"]) == ("bond0.30", 30)
    assert (nets["green"]["southbound"], nets["green"]["vlanid"]) == ("bond0.40", 40)
    assert nets["island"]["southbound"] is None and "vlanid" not in nets["island"]
    assert nets["dyn"]["dhcpv4"] and nets["dyn"]["dhcpv6"]
    assert report["bridges"]["red"]["opts"]["priority"] == "100"
    assert report["bondings"]["bond0"]["switch"] == "legacy"


def test_the_ovs_host_reports_southbound_and_vlanid_of_ovs_networks() -> None:
    nets = _ovs_host()["networks"]
    assert (nets["ovsnet"]["southbound"], nets["ovsnet"]["stp"]) == ("veth_0", "off")
    assert (nets["vnet20"]["southbound"], nets["vnet20"]["vlanid"]) == ("bond0.20", 20)
    assert nets["storage"]["southbound"] == nets["storage"]["iface"] == "veth_2"
    assert nets["lost"]["missing"] is True and nets["lost"]["southbound"] == "veth_7.4"


def _broken(path: tuple[str, ...], value: object) -> list[str]:
    report = copy.deepcopy(_answer(_legacy_host()))
    target = report
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return problems(report)


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (("networks", "red", "mtu"), 9000, "networks.red.mtu: 9000 is not a decimal string"),
        (("bridges", "red", "stp"), True, "bridges.red.stp: True is not one of"),
        (("vlans", "bond0.40", "vlanid"), "40", "vlans.bond0.40.vlanid: '40' is not an int"),
        (("nics", "veth_3", "speed"), "0", "nics.veth_3.speed: '0' is not an integer"),
        (("bridges", "red", "opts"), {"priority": 100}, "bridges.red.opts: 'priority': 100"),
        (("netConfigDirty",), False, "netConfigDirty: False is not one of 'True', 'False'"),
        (("networks", "flat", "bridged"), "false", "networks.flat.bridged: 'false' is not"),
        (("nics", "veth_3", "color"), "red", "nics.veth_3: unknown key 'color'"),
    ],
)
def test_the_check_names_each_key_of_the_wrong_type(path, value, says) -> None:
    found = _broken(path, value)
    assert len(found) == 1 and found[0].startswith(says), found


def test_the_check_names_a_missing_key() -> None:
    report = _answer(_legacy_host())
    report["networks"] = {**report["networks"], "red": dict(report["networks"]["red"])}
    del report["networks"]["red"]["southbound"]
    assert problems(report) == ["networks.red: southbound is missing"]


def test_the_sample_host_fits_the_contract() -> None:
    from tests.unit.fake_superd import sample_caps

    assert problems(sample_caps(), answer=False) == []


def test_the_cli_table_renders_the_report_in_the_agents_types() -> None:
    from frontd.render import render_caps

    table = render_caps({**_legacy_host(), "netConfigDirty": "False"})
    red = next(line for line in table.splitlines() if line.startswith("red "))
    assert red.split()[:5] == ["red", "red", "yes", "veth_0", "9000"]
    assert any(line.split()[:3] == ["bond0.30", "vlan", "1500"] for line in table.splitlines())
