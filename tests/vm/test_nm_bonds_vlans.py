"""Bonds and VLANs through ``net_configurator = nm``, on the VM lane's kernel.

NetworkManager runs in the test's namespace on a private bus
(``tests.functional.nm_lab``, as on the host's functional lane); the NICs
are veth pairs, as there (NetworkManager sees a dummy device as a software
device of its own kind, never as an Ethernet NIC). Requests go through
netreload's setupNetworks core (``superd.oneshot``). Assertions read the
kernel back (``ip -j -d``, the bonding driver's sysfs files as seen from
the namespace) and NetworkManager's profiles through ``nmcli`` on the
private bus, never netreload's own client.

As in ``test_bonds_and_vlans`` (whose helpers are reused), each request
costs tens of seconds in the emulated guest: one module-scoped scenario
applies two requests building several independent objects, each test
asserts one behaviour on its own objects; the tests that send a request of
their own (refused, failing) come last and must leave the state as it was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import ns_sysfs_read
from test_bonds_and_vlans import (
    ACTIVE_BACKUP,
    LACP,
    Scenario,
    apply,
    ipv4,
    is_free_and_up,
    is_up,
    link,
    link_names,
    mtus,
    slaves,
    vlan_of,
)

from tests.functional.agent import Agent
from tests.functional.conftest import create_host_ns, destroy_host_ns
from tests.functional.nm_lab import NmLab, why_no_nm

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))

NICS = 9
MTU_FAMILY = ("bond1", "veth_0", "veth_1", "bond1.30", "onbond", "veth_6", "veth_6.101",
              "veth_6.100", "nicvbr")  # fmt: skip


def profiles(lab: NmLab) -> dict[str, tuple[str, str]]:
    """NetworkManager's profiles but the loopback's: {id: (type, device)}."""
    return {
        name: (entry["type"], entry["device"])
        for name, entry in lab.connections().items()
        if entry["type"] != "loopback"
    }


def ok_nm(agent: Agent, result: dict) -> None:
    """``ok``, showing NetworkManager's log when it is not."""
    assert result["code"] == 0, (result, agent.nm.log(12000))  # type: ignore[attr-defined]


def state(agent: Agent) -> tuple[dict, dict]:
    return agent.kernel_state(), profiles(agent.nm)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def nm(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    """Request 1: bond1 (active-backup) carrying the bridged network
    ``onbond``; bond2 (802.3ad) carrying a bridged VLAN network ``vbr`` and
    a bridgeless one ``vnobr``; bond3 without networks; two VLAN networks
    on veth_6, one of them and one on bond1 with an MTU of 9000. Request 2:
    bond1's miimon changed, bond2's veth_3 swapped for veth_7, bond3
    removed, the 9000 VLAN network on veth_6 removed."""
    host = create_host_ns(NICS, prefix="nrvm-nm-")
    root = tmp_path_factory.mktemp("nm")
    lab = NmLab(host.name, root / "nm")
    try:
        lab.start()
        agent = Agent(host, root, configurator="nm", nm_bus=lab.address)
        agent.nm = lab  # type: ignore[attr-defined]
        agent.write_config()
        s = Scenario(agent)
        ok_nm(
            agent,
            apply(
                agent,
                {
                    "onbond": {"bonding": "bond1", "ipaddr": "10.1.0.1", "prefix": 24},
                    "vbr": {"bonding": "bond2", "vlan": 10, "ipaddr": "10.10.0.1", "prefix": 24},
                    "vnobr": {"bonding": "bond2", "vlan": 20, "bridged": False,
                              "ipaddr": "10.20.0.1", "prefix": 24},
                    "nicvbr": {"nic": "veth_6", "vlan": 100, "ipaddr": "10.100.0.1",
                               "prefix": 24},
                    "nicraw": {"nic": "veth_6", "vlan": 101, "bridged": False,
                               "ipaddr": "10.101.0.1", "prefix": 24, "mtu": 9000},
                    "jumbo": {"bonding": "bond1", "vlan": 30, "bridged": False, "mtu": 9000},
                },
                {
                    "bond1": {"nics": ["veth_0", "veth_1"], "options": ACTIVE_BACKUP},
                    "bond2": {"nics": ["veth_2", "veth_3"], "options": LACP},
                    "bond3": {"nics": ["veth_4", "veth_5"], "options": ACTIVE_BACKUP},
                },
            )
        )  # fmt: skip
        s.seen["profiles"] = profiles(lab)
        s.seen["bond2"] = {f: ns_sysfs_read(host.name, "bond2", f"bonding/{f}")
                           for f in ("mode", "miimon", "lacp_rate")}  # fmt: skip
        s.seen["ifindex"] = {name: link(host.name, name)["ifindex"] for name in ("bond1",)}
        s.seen["mtus"] = mtus(host.name, *MTU_FAMILY)
        s.seen["veth_6.101"] = (link(host.name, "veth_6.101"), ipv4(host.name, "veth_6.101"))
        ok_nm(
            agent,
            apply(
                agent,
                {"nicraw": {"remove": True}},
                {
                    "bond1": {"nics": ["veth_0", "veth_1"],
                              "options": "mode=active-backup miimon=250"},
                    "bond2": {"nics": ["veth_2", "veth_7"], "options": LACP},
                    "bond3": {"remove": True},
                },
            )
        )  # fmt: skip
        yield s
    finally:
        lab.stop()
        destroy_host_ns(host)


def test_bond_is_created_with_its_options_read_back_from_the_kernel(nm) -> None:
    assert nm.seen["bond2"] == {"mode": "802.3ad 4", "miimon": "100", "lacp_rate": "fast 1"}
    assert nm.seen["profiles"]["bond2"] == ("bond", "bond2")
    assert nm.seen["profiles"]["veth_2"] == ("802-3-ethernet", "veth_2")
    bond2 = nm.agent.nm.connection("bond2", "bond.options,connection.autoconnect")
    assert "mode=802.3ad" in bond2["bond.options"]
    assert bond2["connection.autoconnect"] == "no"
    assert list(nm.agent.nm.keyfiles.iterdir()) == []  # in memory only


def test_bridged_network_on_a_bond(nm) -> None:
    ns = nm.ns
    assert link(ns, "bond1")["master"] == "onbond"
    assert ipv4(ns, "onbond") == {"10.1.0.1/24"} and ipv4(ns, "bond1") == set()
    assert slaves(ns, "bond1") == ["veth_0", "veth_1"]
    assert link(ns, "bond1")["ifalias"] == "netreload"  # created: netreload's mark


def test_vlan_networks_on_a_bond(nm) -> None:
    ns = nm.ns
    bridged, bridgeless = link(ns, "bond2.10"), link(ns, "bond2.20")
    assert vlan_of(bridged) == ("bond2", 10) and bridged["master"] == "vbr"
    assert vlan_of(bridgeless) == ("bond2", 20) and "master" not in bridgeless
    assert ipv4(ns, "vbr") == {"10.10.0.1/24"} and ipv4(ns, "bond2.20") == {"10.20.0.1/24"}
    assert nm.seen["profiles"]["bond2.20"] == ("vlan", "bond2.20")


def test_vlan_networks_on_a_nic(nm) -> None:
    ns = nm.ns
    bridged, (bridgeless, bridgeless_ipv4) = link(ns, "veth_6.100"), nm.seen["veth_6.101"]
    assert vlan_of(bridged) == ("veth_6", 100) and bridged["master"] == "nicvbr"
    assert vlan_of(bridgeless) == ("veth_6", 101) and is_up(bridgeless)
    assert ipv4(ns, "nicvbr") == {"10.100.0.1/24"}
    assert bridgeless_ipv4 == {"10.101.0.1/24"}
    assert "veth_6" not in nm.seen["profiles"]  # the NIC itself: no profile


def test_bond_options_edit_keeps_the_bond_in_its_bridge(nm) -> None:
    ns = nm.ns
    assert ns_sysfs_read(ns, "bond1", "bonding/miimon") == "250"
    assert ns_sysfs_read(ns, "bond1", "bonding/mode") == "active-backup 1"
    bond1 = link(ns, "bond1")
    assert bond1["master"] == "onbond" and is_up(bond1)
    assert bond1["ifindex"] == nm.seen["ifindex"]["bond1"]  # not re-created
    assert slaves(ns, "bond1") == ["veth_0", "veth_1"]


def test_slave_change_enslaves_the_new_nic_and_frees_the_old_one(nm) -> None:
    ns = nm.ns
    assert slaves(ns, "bond2") == ["veth_2", "veth_7"]
    assert is_free_and_up(ns, "veth_3")
    held = profiles(nm.agent.nm)
    assert "veth_3" not in held and held["veth_7"] == ("802-3-ethernet", "veth_7")
    assert nm.agent.nm.connection("veth_7", "connection.master")["connection.master"] == "bond2"
    assert link(ns, "bond2.20")["link"] == "bond2"  # its VLANs stay


def test_bond_removal_leaves_no_device_and_no_profile(nm) -> None:
    ns = nm.ns
    assert "bond3" not in link_names(ns)
    held = profiles(nm.agent.nm)
    assert {"bond3", "veth_4", "veth_5"}.isdisjoint(held)
    assert is_free_and_up(ns, "veth_4") and is_free_and_up(ns, "veth_5")
    assert "bond3" not in nm.agent.running()["bonds"]


def test_bond_and_its_slaves_carry_the_largest_vlan_mtu(nm) -> None:
    seen = nm.seen["mtus"]
    assert {name: seen[name] for name in ("bond1", "veth_0", "veth_1", "bond1.30")} == {
        "bond1": 9000,
        "veth_0": 9000,
        "veth_1": 9000,
        "bond1.30": 9000,
    }
    assert seen["onbond"] == 1500


def test_nic_under_a_jumbo_vlan_carries_its_mtu(nm) -> None:
    seen = nm.seen["mtus"]
    assert (seen["veth_6"], seen["veth_6.101"]) == (9000, 9000)
    assert (seen["veth_6.100"], seen["nicvbr"]) == (1500, 1500)


def test_vlan_network_removal_leaves_no_device_no_profile_and_the_nic_back_at_1500(nm) -> None:
    ns = nm.ns
    assert "veth_6.101" not in link_names(ns)
    assert "veth_6.101" not in profiles(nm.agent.nm)
    assert link(ns, "veth_6")["mtu"] == 1500 and is_up(link(ns, "veth_6"))
    assert link(ns, "veth_6.100")["master"] == "nicvbr"  # the other VLAN network stays


def profile_mtus(agent: Agent, *names: str) -> dict[str, str]:
    return {
        name: agent.nm.nmcli("-g", "802-3-ethernet.mtu", "connection", "show", "id", name).strip()  # type: ignore[attr-defined]
        for name in names
    }


def test_a_bonds_mtu_set_by_a_vlan_network_alone_is_in_its_and_its_slaves_profiles(nm) -> None:
    """bond2's profile is not sent when a VLAN network with a bigger MTU is
    added on it, nor when it goes: its MTU, and its slaves', follow in
    their profiles all the same (a reactivation would bring the old one
    back otherwise); the state is as before afterwards."""
    before, running = state(nm.agent), nm.agent.running()
    family = ("bond2", "veth_2", "veth_7")
    big = {"bonding": "bond2", "vlan": 40, "bridged": False, "mtu": 9000}
    ok_nm(nm.agent, apply(nm.agent, {"big": big}, {}))
    assert mtus(nm.ns, *family) == dict.fromkeys(family, 9000)
    assert profile_mtus(nm.agent, *family) == dict.fromkeys(family, "9000")
    ok_nm(nm.agent, apply(nm.agent, {"big": {"remove": True}}, {}))
    assert mtus(nm.ns, *family) == dict.fromkeys(family, 1500)
    assert profile_mtus(nm.agent, *family) == dict.fromkeys(family, "1500")
    assert state(nm.agent) == before and nm.agent.running() == running


def test_bond_option_networkmanager_cannot_express_is_25_and_changes_nothing(nm) -> None:
    before, running = state(nm.agent), nm.agent.running()
    result = apply(
        nm.agent,
        {},
        {"bond4": {"nics": ["veth_8"], "options": "mode=4 miimon=100 lacp_active=off"}},
    )
    assert result["code"] == 25 and "lacp_active" in result["message"], result
    assert state(nm.agent) == before
    assert nm.agent.running() == running


def test_failure_injected_midway_restores_kernel_and_profiles(nm) -> None:
    before, running = state(nm.agent), nm.agent.running()
    result = apply(
        nm.agent,
        {"vc": {"bonding": "bond1", "vlan": 31, "bridged": False}},
        {"bond1": {"nics": ["veth_0", "veth_1"], "options": "mode=active-backup miimon=300"},
         "bond4": {"nics": ["veth_8"], "options": ACTIVE_BACKUP}},
        env={"NETRELOAD_TEST_FAIL_AFTER_OPS": "2"},
    )  # fmt: skip
    assert result["code"] == 29 and "injected" in result["message"], result
    assert ns_sysfs_read(nm.ns, "bond1", "bonding/miimon") == "250"
    assert state(nm.agent) == before
    assert nm.agent.running() == running
    assert nm.agent.nm.checkpoints() == []


def test_failed_activation_after_bond_changes_rolls_them_back(nm) -> None:
    """bond1's options changed and bond4 created by NetworkManager, then a
    blocking DHCP network on bond4 that never gets a lease: 29, and the
    checkpoint brings the previous kernel and profiles back."""
    before, running = state(nm.agent), nm.agent.running()
    seen = len(nm.agent.nm.audits())
    result = apply(
        nm.agent,
        {"dhcpnet": {"bonding": "bond4", "bridged": False, "bootproto": "dhcp",
                     "blockingdhcp": True}},
        {"bond1": {"nics": ["veth_0", "veth_1"], "options": "mode=active-backup miimon=300"},
         "bond4": {"nics": ["veth_8"], "options": ACTIVE_BACKUP}},
    )  # fmt: skip
    assert result["code"] == 29 and "could not activate" in result["message"], result
    asked = nm.agent.nm.audits()[seen:]  # NetworkManager did change bond1, then rolled back
    assert any('op="connection-update"' in line and 'name="bond1"' in line for line in asked)
    assert any('op="checkpoint-rollback"' in line for line in asked)
    assert ns_sysfs_read(nm.ns, "bond1", "bonding/miimon") == "250"
    assert "bond4" not in link_names(nm.ns)
    assert state(nm.agent) == before
    assert nm.agent.running() == running
    assert nm.agent.nm.checkpoints() == []
