"""Requests reusing a device netreload did not create are refused before any
change (``shared.netmodel.ownership``), in frontd's validation and in
superd's plan checks. The host is data (tests/unit/conftest.py): ``bond9``
and the VLAN device ``veth_3.7`` are another agent's; ``virbr0`` (added
here) is libvirt's bridge."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.canonical import canonicalize_bond, canonicalize_network
from shared.netmodel.ownership import OWNER_ALIAS, named_devices, owned_links, taken_over
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.plan_checks import check_plan_owned
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from shared.wire import restore_skipped


@pytest.fixture
def libvirt_host(host: NetinfoSnapshot) -> NetinfoSnapshot:
    return replace(host, bridges={"virbr0": {"ports": [], "mtu": 1500}})


def code_of(host, networks, bondings=None, running=None) -> int:
    with pytest.raises(NetError) as info:
        plan_setup_networks(networks, bondings or {}, {}, host, running or RunningConfig())
    return info.value.code


def plan(host, networks, bondings=None, running=None):
    return plan_setup_networks(networks, bondings or {}, {}, host, running or RunningConfig())


def test_network_named_like_another_agents_bridge_is_used_bridge(libvirt_host) -> None:
    assert code_of(libvirt_host, {"virbr0": {"nic": "veth_0"}}) == ErrorCode.USED_BRIDGE == 28


def test_nicless_network_named_like_another_agents_bridge_is_used_bridge(libvirt_host) -> None:
    assert code_of(libvirt_host, {"virbr0": {}}) == ErrorCode.USED_BRIDGE


def test_bridgeless_network_named_like_another_agents_bridge_is_accepted(libvirt_host) -> None:
    # it has no device of its name: the bridge is not touched
    plan(libvirt_host, {"virbr0": {"nic": "veth_0", "bridged": False}})


def test_a_bridge_with_netreloads_mark_is_netreloads_to_reuse(libvirt_host) -> None:
    host = replace(libvirt_host, owned=frozenset({"virbr0"}))
    ops = plan(host, {"virbr0": {"nic": "veth_0"}}).operations
    assert [op["op"] for op in ops] == ["add_network"]


def test_a_running_networks_bridge_is_netreloads_to_edit(libvirt_host) -> None:
    running = RunningConfig(networks={"virbr0": canonicalize_network("virbr0", {"nic": "veth_0"})})
    ops = plan(libvirt_host, {"virbr0": {"nic": "veth_0", "mtu": 1400}}, running=running)
    assert [op["op"] for op in ops.operations][:1] == ["remove_network"]


def test_network_whose_vlan_device_is_another_agents_is_used_nic(host) -> None:
    assert code_of(host, {"n": {"nic": "veth_3", "vlan": 7}}) == ErrorCode.USED_NIC


def test_network_whose_vlan_device_carries_the_mark_is_accepted(host) -> None:
    plan(replace(host, owned=frozenset({"veth_3.7"})), {"n": {"nic": "veth_3", "vlan": 7}})


def test_other_vlan_tags_on_the_same_nic_are_accepted(host) -> None:
    plan(host, {"n": {"nic": "veth_3", "vlan": 8}})


@pytest.mark.parametrize(
    "bondings",
    [{"bond9": {"nics": ["veth_1"]}}, {"bond9": {"nics": ["eth9"], "options": "mode=4"}},
     {"bond9": {"remove": True}}],
    ids=["define", "change", "remove"],
)  # fmt: skip
def test_another_agents_bond_is_used_bond(host, bondings) -> None:
    assert code_of(host, {}, bondings) == ErrorCode.USED_BOND == 31


def test_a_bond_with_netreloads_mark_may_be_removed(host) -> None:
    ops = plan(replace(host, owned=frozenset({"bond9"})), {}, {"bond9": {"remove": True}})
    assert [op["op"] for op in ops.operations] == ["remove_bond"]


def test_a_network_may_still_sit_on_another_agents_bond(host) -> None:
    plan(host, {"n": {"bonding": "bond9", "bridged": False}})


# -- superd's plan checks: the same rules on a plan from the wire -----------------


def test_superd_refuses_a_forged_plan_adding_a_bond_it_does_not_own(host) -> None:
    attrs = canonicalize_bond("bond9", {"nics": ["veth_1"]})
    ops = [{"op": "add_bond", "name": "bond9", "attrs": attrs}]
    with pytest.raises(NetError) as info:
        check_plan_owned(ops, {"networks": {}, "bonds": {}}, host)
    assert info.value.code == ErrorCode.USED_BOND


def test_superd_refuses_a_forged_plan_building_on_a_foreign_vlan_device(host) -> None:
    attrs = canonicalize_network("n", {"nic": "veth_3", "vlan": 7})
    with pytest.raises(NetError) as info:
        check_plan_owned([{"op": "add_network", "name": "n", "attrs": attrs}], {}, host)
    assert info.value.code == ErrorCode.USED_NIC


def test_superd_refuses_a_forged_plan_on_a_foreign_bridge(libvirt_host) -> None:
    attrs = canonicalize_network("virbr0", {"nic": "veth_0"})
    with pytest.raises(NetError) as info:
        check_plan_owned([{"op": "add_network", "name": "virbr0", "attrs": attrs}], {},
                         libvirt_host)  # fmt: skip
    assert info.value.code == ErrorCode.USED_BRIDGE


# -- the mark and the upgrade rule ---------------------------------------------------


def test_owned_links_are_those_with_the_alias() -> None:
    links = [{"name": "a", "alias": OWNER_ALIAS}, {"name": "b", "alias": None},
             {"name": "c", "alias": "libvirt"}, {"name": "d"}]  # fmt: skip
    assert owned_links(links) == {"a"}


def test_a_running_configuration_names_its_bridges_vlan_devices_and_bonds() -> None:
    running = {
        "networks": {
            "br": canonicalize_network("br", {"nic": "veth_0", "vlan": 5}),
            "flat": canonicalize_network("flat", {"bonding": "bond1", "bridged": False}),
            "ovsnet": canonicalize_network("ovsnet", {"nic": "veth_2", "switch": "ovs"}),
        },
        "bonds": {"bond1": canonicalize_bond("bond1", {"nics": ["veth_1"]})},
    }
    assert named_devices(running) == {"br": "bridge", "veth_0.5": "vlan", "bond1": "bond"}


def test_netinfo_snapshot_takes_the_marked_devices_beside_the_report() -> None:
    snapshot = NetinfoSnapshot.from_caps({"bridges": {"br": {}}}, ["br"])
    assert snapshot.owned == {"br"} and snapshot.device_kinds() == {"br": "bridge"}
    with pytest.raises(NetError):
        NetinfoSnapshot.from_caps({}, "br")


# -- restore-nets: one taken name leaves out that entry only -----------------

EMPTY_RUNNING = {"networks": {}, "bonds": {}}


def test_restore_leaves_out_a_network_whose_bridge_another_agent_made() -> None:
    wanted = {"networks": {"virbr0": {"nic": "veth_0"}, "net2": {"nic": "veth_1"}}}
    nets, bonds = taken_over(wanted, EMPTY_RUNNING, {"virbr0": "bridge"}, ())
    assert sorted(nets) == ["virbr0"] and nets["virbr0"].code == ErrorCode.USED_BRIDGE
    assert bonds == {}


def test_restore_leaves_out_a_foreign_bond_and_the_networks_on_it() -> None:
    wanted = {
        "bonds": {"bond9": {"nics": ["veth_0"]}},
        "networks": {"on9": {"bonding": "bond9"}, "net2": {"nic": "veth_1"}},
    }
    nets, bonds = taken_over(wanted, EMPTY_RUNNING, {"bond9": "bond"}, ())
    assert sorted(bonds) == ["bond9"] and bonds["bond9"].code == ErrorCode.USED_BOND
    assert sorted(nets) == ["on9"] and nets["on9"].code == ErrorCode.USED_BOND


def test_restore_leaves_out_nothing_marked_or_running() -> None:
    wanted = {"networks": {"virbr0": {"nic": "veth_0"}}, "bonds": {"bond9": {"nics": ["veth_1"]}}}
    existing = {"virbr0": "bridge", "bond9": "bond"}
    assert taken_over(wanted, EMPTY_RUNNING, existing, {"virbr0", "bond9"}) == ({}, {})
    assert taken_over(wanted, wanted, existing, ()) == ({}, {})


def test_a_restore_answer_with_left_out_entries_is_their_first_code() -> None:
    error = restore_skipped({
        "code": 0,
        "skipped": {
            "network virbr0": {"code": 28, "message": "Network already exists (virbr0)"},
            "bond bond9": {"code": 31, "message": "bond bond9 exists"},
        },
    })
    assert error is not None and error.code == ErrorCode.USED_BOND
    assert "bond bond9" in error.message and "network virbr0" in error.message


def test_a_restore_answer_without_left_out_entries_is_no_failure() -> None:
    assert restore_skipped({"code": 0, "message": "Done", "skipped": {}}) is None
    assert restore_skipped({"code": 0, "message": "Done"}) is None
