"""The pure OVS mapping: networks and bonds → OVSDB rows, and old → new edits."""

from __future__ import annotations

import pytest

from configurators import ovs_layout as layout
from shared.errors import ErrorCode, NetError
from shared.netmodel import ovs_bond_options
from shared.netmodel.bond import Bond
from shared.netmodel.canonical import canonicalize_bond
from superd.ovs_netinfo import parse_select
from superd.ovs_report import overlay


def net(name: str, **attrs: object) -> layout.OvsNetwork:
    return layout.OvsNetwork.from_attrs(name, {"switch": "ovs", **attrs}, None)


def with_network(state: layout.OvsState, network: layout.OvsNetwork) -> layout.OvsState:
    new = layout.copy_state(state)
    layout.add_network(new, network, "netdev")
    return new


def test_bridge_name_is_stable_per_southbound_and_fits_a_device_name() -> None:
    assert layout.bridge_name("eth0", "a") == layout.bridge_name("eth0", "b")
    assert layout.bridge_name("eth0", "a") != layout.bridge_name("eth1", "a")
    assert layout.bridge_name(None, "a") != layout.bridge_name(None, "b")
    assert len(layout.bridge_name("a-very-long-nic", "x")) <= 15


def test_networks_on_one_nic_share_its_bridge_as_internal_ports() -> None:
    state = with_network(layout.empty_state(), net("red", nic="eth0", vlan=10))
    state = with_network(state, net("blue", nic="eth0", vlan=20, mtu=9000))
    bridge = layout.bridge_name("eth0", "red")
    assert sorted(state["bridges"][bridge]["ports"]) == sorted(["blue", "red", "eth0", bridge])
    assert state["ports"]["red"]["tag"] == 10
    assert state["interfaces"]["blue"] == {"type": "internal", "mtu_request": 9000}
    assert state["interfaces"]["eth0"]["type"] == ""


def test_first_network_creates_the_bridge_in_one_set_of_edits() -> None:
    edits = layout.diff(layout.empty_state(), with_network(layout.empty_state(),
                                                           net("red", nic="eth0")))  # fmt: skip
    kinds = [e[0] for e in edits]
    assert kinds == ["add_bridge", "add_port", "add_port", "add_port"]
    assert {e[2] for e in edits[1:]} == {"red", "eth0", layout.bridge_name("eth0", "red")}


def test_removing_the_last_network_of_a_nic_removes_its_bridge() -> None:
    one = with_network(layout.empty_state(), net("red", nic="eth0", vlan=10))
    two = with_network(one, net("blue", nic="eth0", vlan=20))
    after = layout.copy_state(two)
    layout.remove_network(after, net("blue", nic="eth0", vlan=20))
    assert layout.diff(two, after) == [("del_port", "blue")]
    layout.remove_network(after, net("red", nic="eth0", vlan=10))
    assert layout.diff(two, after) == [("del_bridge", layout.bridge_name("eth0", "x"))]


def test_asking_for_what_exists_gives_no_edit() -> None:
    state = with_network(layout.empty_state(), net("red", nic="eth0", vlan=10))
    assert layout.diff(state, with_network(state, net("red", nic="eth0", vlan=10))) == []


def test_a_changed_tag_is_one_column_write() -> None:
    state = with_network(layout.empty_state(), net("red", nic="eth0", vlan=10))
    edits = layout.diff(state, with_network(state, net("red", nic="eth0", vlan=11)))
    assert edits == [("set_port", "red", {"tag": 11})]


def test_bond_bridge_outlives_its_networks_and_goes_with_the_bond() -> None:
    state = layout.empty_state()
    bond = layout.OvsBond("bond0", ("eth0", "eth1"), "balance-slb", "off", 1500)
    layout.add_bond(state, bond, "netdev")
    on_bond = net("red", bonding="bond0", vlan=10)
    layout.add_network(state, on_bond, "netdev")
    assert state["ports"]["bond0"]["interfaces"] == ["eth0", "eth1"]
    layout.remove_network(state, on_bond)
    assert bond.bridge in state["bridges"]
    layout.remove_bond(state, "bond0")
    assert state == layout.empty_state()


def test_network_on_a_missing_ovs_bond_is_refused() -> None:
    with pytest.raises(KeyError):
        layout.add_network(layout.empty_state(), net("red", bonding="bond9"), "netdev")


def test_set_mtu_sets_every_bond_interface() -> None:
    state = layout.empty_state()
    layout.add_bond(state, layout.OvsBond("b", ("e0", "e1"), "active-backup", "off", 1500),
                    "netdev")  # fmt: skip
    assert layout.set_mtu(state, "b", 9000)
    assert {state["interfaces"][i]["mtu_request"] for i in ("e0", "e1")} == {9000}
    assert not layout.set_mtu(state, "nothere", 9000)


def test_owned_bridges_are_those_netreload_marked() -> None:
    state = with_network(layout.empty_state(), net("red", nic="eth0"))
    state["bridges"]["foreign"] = {"datapath_type": "", "stp_enable": False,
                                   "external_ids": {}, "ports": []}  # fmt: skip
    assert layout.owned_bridges(state) == {layout.bridge_name("eth0", "red"): "eth0"}


def test_ovs_bond_options_canonical_form_fills_defaults() -> None:
    assert ovs_bond_options.canonical("", "b") == "bond_mode=active-backup lacp=off"
    assert ovs_bond_options.canonical("lacp=active bond_mode=balance-tcp", "b") == (
        "bond_mode=balance-tcp lacp=active"
    )
    attrs = canonicalize_bond("b", {"nics": ["e1", "e0"], "switch": "ovs",
                                    "options": "bond_mode=balance-slb"})  # fmt: skip
    assert attrs["options"] == "bond_mode=balance-slb lacp=off"


@pytest.mark.parametrize(
    "options", ["mode=4", "bond_mode=802.3ad", "lacp=maybe", "bond_mode=balance-tcp"]
)
def test_ovs_bond_options_refuse_what_ovs_does_not_have(options: str) -> None:
    with pytest.raises(NetError) as info:
        ovs_bond_options.parse(options, "b")
    assert info.value.code == ErrorCode.BAD_BONDING


def test_select_rows_parse_to_the_layout_state() -> None:
    bridges = [{"_uuid": ["uuid", "b1"], "name": "br", "ports": ["set", [["uuid", "p1"]]],
                "datapath_type": "netdev", "stp_enable": False,
                "external_ids": ["map", [["netreload", "bridge"]]]}]
    ports = [{"_uuid": ["uuid", "p1"], "name": "red", "interfaces": ["uuid", "i1"],
              "tag": 10, "bond_mode": ["set", []], "lacp": ["set", []],
              "external_ids": ["map", []]}]
    ifaces = [{"_uuid": ["uuid", "i1"], "name": "red", "type": "internal",
               "mtu_request": ["set", []]}]  # fmt: skip
    state = parse_select(bridges, ports, ifaces)
    assert state["ports"]["red"] == {"bridge": "br", "interfaces": ["red"], "tag": 10,
                                     "bond_mode": None, "lacp": None,
                                     "external_ids": {}}  # fmt: skip
    assert state["interfaces"]["red"] == {"type": "internal", "mtu_request": None}
    assert state["bridges"]["br"]["ports"] == ["red"]


def _caps(**networks: dict) -> dict:
    return {"networks": networks, "bridges": {}, "vlans": {}, "bondings": {}, "nics": {
        "eth0": {"mtu": 1500, "ipv4addrs": []}}}  # fmt: skip


def test_report_shows_a_tagged_bridged_ovs_network_as_bridge_and_vlan() -> None:
    attrs = {"nic": "eth0", "vlan": 10, "switch": "ovs", "bridged": True, "mtu": 1500}
    state = with_network(layout.empty_state(), net("red", **attrs))
    caps = overlay(_caps(red={"iface": "red", "mtu": 1500, "ipv4addrs": ["10.0.0.1/24"]}),
                   state, {"networks": {"red": attrs}})  # fmt: skip
    assert caps["networks"]["red"]["ports"] == ["eth0.10"]
    assert caps["networks"]["red"]["switch"] == "ovs"
    assert caps["bridges"]["red"]["ipv4addrs"] == ["10.0.0.1/24"]
    assert caps["vlans"]["eth0.10"]["vlanid"] == 10


def test_report_puts_a_bridgeless_ovs_network_on_its_nic() -> None:
    attrs = {"nic": "eth0", "switch": "ovs", "bridged": False}
    state = with_network(layout.empty_state(), net("red", **attrs))
    caps = overlay(_caps(red={"iface": "red", "mtu": 1500, "ipv4addrs": ["10.0.0.1/24"]}),
                   state, {"networks": {"red": attrs}})  # fmt: skip
    assert caps["networks"]["red"]["iface"] == "eth0"
    assert caps["nics"]["eth0"]["ipv4addrs"] == ["10.0.0.1/24"]
    assert "red" not in caps["bridges"]


def test_report_marks_an_ovs_network_missing_from_ovsdb() -> None:
    attrs = {"nic": "eth0", "switch": "ovs"}
    caps = overlay(_caps(), layout.empty_state(), {"networks": {"red": attrs}})
    assert caps["networks"]["red"]["missing"] is True


def test_fast_json_parser_splits_a_stream_of_messages_at_any_chunk_boundary() -> None:
    import json
    import random

    from configurators.ovs_db import FastParser

    messages = [
        {"id": 1, "result": [{"a": 'x"}{[\\]', "b": [1, 2.5, {"c": "\\\\"}], "d": None}]},
        {"method": "update", "params": [None, {"T": {"u": {"new": {"n": 'q\\"}'}}}}]},
    ] * 3
    text = "".join(json.dumps(m) for m in messages)
    rng = random.Random(7)
    for _ in range(200):
        got, pending, parser, pos = [], "", None, 0
        while pos < len(text):
            step = rng.randint(1, 7)
            pending, pos = pending + text[pos:pos + step], pos + step
            while pending:
                parser = parser or FastParser()
                pending = pending[parser.feed(pending):]
                if not parser.is_done():
                    break
                got.append(parser.finish())
                parser = None
        assert got == messages


def test_unreachable_ovsdb_is_error_32(tmp_path) -> None:
    from configurators.ovs import OvsConfigurator
    from shared.config import Config

    configurator = OvsConfigurator(Config(ovs_db=f"unix:{tmp_path}/none.sock"), None)
    bond = Bond(name="bond0", slaves=("e0", "e1"), options="bond_mode=active-backup lacp=off",
                switch="ovs")  # fmt: skip
    with pytest.raises(NetError) as info:
        configurator.create_bond(bond)
    assert info.value.code == ErrorCode.OVS_CONNECTION
    assert configurator.remove_unrecorded({"networks": {}, "bonds": {}}) == []
