"""Bonds and VLANs through netreload, on the VM lane's kernel.

Every request goes through netreload's setupNetworks core (``superd.oneshot``
under ``ip netns exec``, see tests/functional/agent.py) inside a namespace of
dummy NICs, brought up first as a host's NICs would be. Assertions read the
kernel back: ``ip -j -d`` and the bonding driver's sysfs files as seen from
the namespace. Netreload's running configuration is asserted on only where
it is the behaviour (bond removal, rejected requests, rollback).

Each ``superd.oneshot`` run costs tens of seconds in the emulated guest
(mostly Python imports over 9p), so requests are shared: a module-scoped
scenario applies one or two requests that set up several independent
objects, and each test asserts one behaviour on its own objects. What a test
needs from between two requests of a scenario is read back at that moment
and kept in ``Scenario.seen``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import ns_sysfs_read, vm_namespace

from tests.functional.agent import Agent
from tests.functional.conftest import HostNs, ip_batch, ip_json, ipv6_conf
from tests.functional.contract import assert_caps_contract

ACTIVE_BACKUP = "mode=active-backup miimon=100"
LACP = "mode=4 miimon=100 lacp_rate=fast"
REQUEST_TIMEOUT = 600  # seconds for one superd.oneshot run


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


@dataclass
class Scenario:
    agent: Agent
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return self.agent.host.name


@contextlib.contextmanager
def host(tmp_path_factory: pytest.TempPathFactory, nics: int) -> Iterator[Agent]:
    """A namespace with dummy_0 .. dummy_<nics-1>, all up, and an Agent in it."""
    with vm_namespace(nics) as ns:
        names = [f"dummy_{i}" for i in range(nics)]
        ip_batch(ns, [f"link set {nic} up" for nic in names])
        agent = Agent(HostNs(name=ns, peer="", nics=names), tmp_path_factory.mktemp("agent"))
        agent.write_config()
        yield agent


def apply(
    agent: Agent,
    networks: dict,
    bondings: dict | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """``Agent.setup`` with room for the emulated guest: a request on a busy
    CI host can take well over Agent's default two minutes."""
    request = {"networks": networks, "bondings": bondings or {}, "options": {}}
    path = agent.root / "request.json"
    path.write_text(json.dumps(request))
    return agent.run("setup", str(path), env=env, timeout=REQUEST_TIMEOUT)


def ok(result: dict) -> None:
    assert result["code"] == 0, result


def _ip(ns: str, *args: str) -> Any:
    """Parsed ``ip -n NS -j -d ARGS``."""
    return ip_json(ns, "-d", *args)


def link(ns: str, name: str) -> dict[str, Any]:
    (entry,) = _ip(ns, "link", "show", "dev", name)
    return entry


def link_names(ns: str) -> set[str]:
    return {entry["ifname"] for entry in _ip(ns, "link", "show")}


def is_up(entry: dict[str, Any]) -> bool:
    return "UP" in entry.get("flags", [])


def is_free_and_up(ns: str, nic: str) -> bool:
    entry = link(ns, nic)
    return "master" not in entry and is_up(entry)


def ipv4(ns: str, name: str) -> set[str]:
    entries = _ip(ns, "-4", "addr", "show", "dev", name)
    return {f"{i['local']}/{i['prefixlen']}" for e in entries for i in e.get("addr_info", [])}


def vlan_of(entry: dict[str, Any]) -> tuple[str | None, int | None]:
    """(lower device, VLAN id) of a VLAN link, from ``ip -d``."""
    assert entry["linkinfo"]["info_kind"] == "vlan", entry
    return entry.get("link"), entry["linkinfo"]["info_data"]["id"]


def slaves(ns: str, bond: str) -> list[str]:
    return sorted(ns_sysfs_read(ns, bond, "bonding/slaves").split())


def mtus(ns: str, *names: str) -> dict[str, int]:
    return {name: link(ns, name)["mtu"] for name in names}


# --------------------------------------------------------------------------
# 1.-3. bonds: created with options, edited live, removed
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bonds(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    """Request 1 creates bond1 .. bond6 and bond9 (and a VLAN network on
    bond6); request 2 edits bond3 .. bond6 and removes bond9."""
    with host(tmp_path_factory, 14) as agent:
        s = Scenario(agent)
        ok(
            apply(
                agent,
                {"v60": {"bonding": "bond6", "vlan": 60, "bridged": False,
                         "ipaddr": "10.60.0.1", "prefix": 24}},
                {
                    "bond1": {"nics": ["dummy_0", "dummy_1"], "options": LACP},
                    "bond2": {"nics": ["dummy_2", "dummy_3"],
                              "options": f"{ACTIVE_BACKUP} primary=dummy_3"},
                    "bond3": {"nics": ["dummy_4", "dummy_5"], "options": ACTIVE_BACKUP},
                    "bond4": {"nics": ["dummy_6"], "options": ACTIVE_BACKUP},
                    "bond5": {"nics": ["dummy_8", "dummy_9"], "options": ACTIVE_BACKUP},
                    "bond6": {"nics": ["dummy_10", "dummy_11"], "options": "mode=1 miimon=100"},
                    "bond9": {"nics": ["dummy_12", "dummy_13"], "options": ACTIVE_BACKUP},
                },
            )
        )  # fmt: skip
        s.seen["ifindex"] = {b: link(s.ns, b)["ifindex"] for b in ("bond3", "bond6")}
        ok(
            apply(
                agent,
                {},
                {
                    "bond3": {"nics": ["dummy_4", "dummy_5"],
                              "options": "mode=active-backup miimon=200"},
                    "bond4": {"nics": ["dummy_6", "dummy_7"], "options": ACTIVE_BACKUP},
                    "bond5": {"nics": ["dummy_8"], "options": ACTIVE_BACKUP},
                    "bond6": {"nics": ["dummy_10", "dummy_11"], "options": LACP},
                    "bond9": {"remove": True},
                },
            )
        )  # fmt: skip
        s.seen["caps"] = agent.run("caps", timeout=REQUEST_TIMEOUT)
        yield s


def test_capabilities_of_bonds_fit_the_agents_contract(bonds) -> None:
    caps = assert_caps_contract(bonds.seen["caps"])
    bond1 = caps["bondings"]["bond1"]
    assert bond1["opts"]["mode"] == "4" and bond1["slaves"] == ["dummy_0", "dummy_1"]
    assert isinstance(bond1["speed"], int) and bond1["switch"] == "legacy"
    assert "permhwaddr" in caps["nics"]["dummy_0"]  # a bond slave
    assert "permhwaddr" not in caps["nics"]["dummy_12"]  # bond9's, freed


def test_lacp_aggregators_are_reported_only_for_8023ad_bonds(bonds) -> None:
    """What the agent's tests assert of LACP (assertLACPConfigured and
    assertNoLACPConfigured)."""
    caps = bonds.seen["caps"]
    for nic in ("dummy_0", "dummy_1"):  # bond1, mode 4
        assert caps["nics"][nic]["ad_aggregator_id"].isdigit()
    bond1 = caps["bondings"]["bond1"]
    assert ("ad_aggregator_id" in bond1) == ("ad_partner_mac" in bond1)
    assert "ad_aggregator_id" not in caps["bondings"]["bond2"]  # active-backup
    assert "ad_partner_mac" not in caps["bondings"]["bond2"]
    assert "ad_aggregator_id" not in caps["nics"]["dummy_2"]


def test_lacp_bond_options_and_slaves_read_back_from_sysfs(bonds, ns_sysfs) -> None:
    ns = bonds.ns
    assert ns_sysfs(ns, "bond1", "bonding/mode") == "802.3ad 4"
    assert ns_sysfs(ns, "bond1", "bonding/miimon") == "100"
    assert ns_sysfs(ns, "bond1", "bonding/lacp_rate") == "fast 1"
    assert slaves(ns, "bond1") == ["dummy_0", "dummy_1"]
    assert is_up(link(ns, "bond1"))
    for nic in ("dummy_0", "dummy_1"):
        entry = link(ns, nic)
        assert entry["master"] == "bond1" and is_up(entry), entry


def test_active_backup_bond_primary_reads_back_from_sysfs(bonds, ns_sysfs) -> None:
    ns = bonds.ns
    assert ns_sysfs(ns, "bond2", "bonding/mode") == "active-backup 1"
    assert ns_sysfs(ns, "bond2", "bonding/miimon") == "100"
    assert ns_sysfs(ns, "bond2", "bonding/primary") == "dummy_3"
    assert ns_sysfs(ns, "bond2", "bonding/active_slave") == "dummy_3"
    assert slaves(ns, "bond2") == ["dummy_2", "dummy_3"]


def test_bond_edit_changes_miimon_of_the_live_bond(bonds, ns_sysfs) -> None:
    ns = bonds.ns
    assert ns_sysfs(ns, "bond3", "bonding/miimon") == "200"
    assert ns_sysfs(ns, "bond3", "bonding/mode") == "active-backup 1"
    assert slaves(ns, "bond3") == ["dummy_4", "dummy_5"]
    assert link(ns, "bond3")["ifindex"] == bonds.seen["ifindex"]["bond3"]  # not re-created


def test_bond_edit_adds_a_slave(bonds) -> None:
    assert slaves(bonds.ns, "bond4") == ["dummy_6", "dummy_7"]
    entry = link(bonds.ns, "dummy_7")
    assert entry["master"] == "bond4" and is_up(entry), entry


def test_bond_edit_removes_a_slave_which_is_left_free_and_up(bonds) -> None:
    assert slaves(bonds.ns, "bond5") == ["dummy_8"]
    assert is_free_and_up(bonds.ns, "dummy_9")


def test_bond_edit_changes_mode_from_active_backup_to_802_3ad(bonds, ns_sysfs) -> None:
    ns = bonds.ns
    assert ns_sysfs(ns, "bond6", "bonding/mode") == "802.3ad 4"
    assert ns_sysfs(ns, "bond6", "bonding/lacp_rate") == "fast 1"
    assert slaves(ns, "bond6") == ["dummy_10", "dummy_11"]
    bond = link(ns, "bond6")
    assert bond["ifindex"] == bonds.seen["ifindex"]["bond6"] and is_up(bond)


def test_bond_mode_change_keeps_the_vlan_network_on_it(bonds) -> None:
    vlan = link(bonds.ns, "bond6.60")
    assert vlan_of(vlan) == ("bond6", 60) and is_up(vlan)
    assert ipv4(bonds.ns, "bond6.60") == {"10.60.0.1/24"}


def test_bond_removal_deletes_it_and_leaves_its_slaves_free_and_up(bonds) -> None:
    assert "bond9" not in link_names(bonds.ns)
    assert is_free_and_up(bonds.ns, "dummy_12")
    assert is_free_and_up(bonds.ns, "dummy_13")
    assert "bond9" not in bonds.agent.running()["bonds"]


# --------------------------------------------------------------------------
# 4.-7. VLAN networks on a NIC and on bonds, MTU across VLANs
# --------------------------------------------------------------------------

MTU_FAMILY = ("bond2", "dummy_3", "dummy_4", "bond2.10", "jumbo", "bond2.20")


@pytest.fixture(scope="module")
def vlans(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    """Request 1: three VLAN networks on dummy_0, four networks on bond1, a
    9000 and a 1500 VLAN network on bond2; request 2 removes the 9000 one."""
    with host(tmp_path_factory, 5) as agent:
        s = Scenario(agent)
        ok(
            apply(
                agent,
                {
                    "nicbr": {"nic": "dummy_0", "vlan": 100, "ipaddr": "10.100.0.1", "prefix": 24},
                    "nicraw": {"nic": "dummy_0", "vlan": 101, "bridged": False,
                               "ipaddr": "10.101.0.1", "prefix": 24},
                    "nicraw6": {"nic": "dummy_0", "vlan": 102, "bridged": False,
                                "ipv6addr": "fd00:102::1/64"},
                    "untagged": {"bonding": "bond1", "ipaddr": "10.0.0.1", "prefix": 24},
                    "vbr": {"bonding": "bond1", "vlan": 10, "ipaddr": "10.10.0.1", "prefix": 24},
                    "vnobr": {"bonding": "bond1", "vlan": 20, "bridged": False,
                              "ipaddr": "10.20.0.1", "prefix": 24},
                    "vplain": {"bonding": "bond1", "vlan": 30},
                    "jumbo": {"bonding": "bond2", "vlan": 10, "mtu": 9000},
                    "small": {"bonding": "bond2", "vlan": 20, "mtu": 1500, "bridged": False},
                },
                {
                    "bond1": {"nics": ["dummy_1", "dummy_2"], "options": LACP},
                    "bond2": {"nics": ["dummy_3", "dummy_4"], "options": ACTIVE_BACKUP},
                },
            )
        )  # fmt: skip
        s.seen["mtus"] = mtus(s.ns, *MTU_FAMILY)
        ok(apply(agent, {"jumbo": {"remove": True}}))
        s.seen["caps"] = agent.run("caps", timeout=REQUEST_TIMEOUT)
        yield s


def test_capabilities_of_vlan_networks_fit_the_agents_contract(vlans) -> None:
    caps = assert_caps_contract(vlans.seen["caps"])
    nets = caps["networks"]
    assert (nets["vbr"]["southbound"], nets["vbr"]["vlanid"]) == ("bond1.10", 10)
    assert (nets["nicraw"]["southbound"], nets["nicraw"]["vlanid"]) == ("dummy_0.101", 101)
    assert nets["untagged"]["southbound"] == "bond1" and "vlanid" not in nets["untagged"]
    assert caps["vlans"]["bond1.20"]["vlanid"] == 20
    assert caps["vlans"]["bond2.20"]["mtu"] == "1500"
    assert caps["bondings"]["bond1"]["switch"] == "legacy"


def test_bridged_vlan_network_on_a_nic(vlans) -> None:
    ns = vlans.ns
    vlan = link(ns, "dummy_0.100")
    assert vlan_of(vlan) == ("dummy_0", 100)
    assert vlan["master"] == "nicbr"
    assert link(ns, "nicbr")["linkinfo"]["info_kind"] == "bridge"
    assert ipv4(ns, "nicbr") == {"10.100.0.1/24"}
    assert ipv4(ns, "dummy_0.100") == set() and ipv4(ns, "dummy_0") == set()


def test_bridgeless_vlan_network_on_a_nic(vlans) -> None:
    ns = vlans.ns
    vlan = link(ns, "dummy_0.101")
    assert vlan_of(vlan) == ("dummy_0", 101)
    assert "master" not in vlan
    assert ipv4(ns, "dummy_0.101") == {"10.101.0.1/24"}
    assert "nicraw" not in link_names(ns)


def test_bridged_and_bridgeless_vlan_networks_on_a_bond_in_one_request(vlans) -> None:
    ns = vlans.ns
    bridged, bridgeless = link(ns, "bond1.10"), link(ns, "bond1.20")
    assert vlan_of(bridged) == ("bond1", 10) and bridged["master"] == "vbr"
    assert vlan_of(bridgeless) == ("bond1", 20) and "master" not in bridgeless
    assert ipv4(ns, "vbr") == {"10.10.0.1/24"}
    assert ipv4(ns, "bond1.20") == {"10.20.0.1/24"}
    assert ipv4(ns, "bond1.10") == set()
    assert "vnobr" not in link_names(ns)


def test_several_vlan_networks_and_one_untagged_network_on_one_bond(vlans) -> None:
    ns = vlans.ns
    on_bond1 = {
        entry["ifname"]: vlan_of(entry)[1]
        for entry in _ip(ns, "link", "show")
        if entry.get("link") == "bond1"
    }
    assert on_bond1 == {"bond1.10": 10, "bond1.20": 20, "bond1.30": 30}
    assert link(ns, "bond1.30")["master"] == "vplain"
    assert link(ns, "bond1")["master"] == "untagged"
    assert ipv4(ns, "untagged") == {"10.0.0.1/24"}
    assert ipv4(ns, "bond1") == set()


def test_bond_and_slaves_carry_the_largest_vlan_mtu(vlans) -> None:
    assert vlans.seen["mtus"] == {
        "bond2": 9000,
        "dummy_3": 9000,
        "dummy_4": 9000,
        "bond2.10": 9000,
        "jumbo": 9000,
        "bond2.20": 1500,
    }


def test_bond_mtu_drops_back_when_the_jumbo_vlan_network_goes(vlans) -> None:
    assert {"bond2.10", "jumbo"}.isdisjoint(link_names(vlans.ns))
    assert mtus(vlans.ns, "bond2", "dummy_3", "dummy_4", "bond2.20") == {
        "bond2": 1500,
        "dummy_3": 1500,
        "dummy_4": 1500,
        "bond2.20": 1500,
    }


def test_the_vlan_device_of_a_bridged_network_has_ipv6_disabled(vlans) -> None:
    """The production agent's rule for a bridge port: no IP stack of its own."""
    ports = ("dummy_0.100", "bond1.10", "bond1.30")
    assert {p: ipv6_conf(vlans.ns, p) for p in ports} == dict.fromkeys(ports, "1")


def test_a_bridgeless_vlan_network_without_ipv6_has_it_disabled(vlans) -> None:
    tops = ("dummy_0.101", "bond1.20", "bond2.20")
    assert {t: ipv6_conf(vlans.ns, t) for t in tops} == dict.fromkeys(tops, "1")


def test_a_bridgeless_vlan_network_with_an_ipv6_address_has_ipv6_on(vlans) -> None:
    ns = vlans.ns
    assert ipv6_conf(ns, "dummy_0.102") == "0"
    entries = _ip(ns, "-6", "addr", "show", "dev", "dummy_0.102")
    assert "fd00:102::1" in {i["local"] for e in entries for i in e.get("addr_info", [])}


# --------------------------------------------------------------------------
# 8. legacy address behaviour
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def legacy(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    """bond7 made outside netreload (dummy_0 + dummy_1, 10.77.0.9/24); request
    1 puts a bridgeless untagged network on it, request 2 removes it."""
    with host(tmp_path_factory, 2) as agent:
        s = Scenario(agent)
        ip_batch(
            s.ns,
            [
                "link add bond7 type bond mode active-backup miimon 100",
                "link set dummy_0 down",
                "link set dummy_1 down",
                "link set dummy_0 master bond7",
                "link set dummy_1 master bond7",
                "link set dummy_0 up",
                "link set dummy_1 up",
                "link set bond7 up",
                "addr add 10.77.0.9/24 dev bond7",
            ],
        )
        s.seen["ifindex"] = link(s.ns, "bond7")["ifindex"]
        net = {"bonding": "bond7", "bridged": False, "ipaddr": "10.78.0.1", "prefix": 24}
        ok(apply(agent, {"legacy": net}))
        s.seen["bond7"] = link(s.ns, "bond7")
        s.seen["ipv4"] = ipv4(s.ns, "bond7")
        s.seen["slaves"] = slaves(s.ns, "bond7")
        ok(apply(agent, {"legacy": {"remove": True}}))
        yield s


def test_network_on_external_bond_keeps_its_previous_address(legacy) -> None:
    assert legacy.seen["ipv4"] == {"10.77.0.9/24", "10.78.0.1/24"}
    assert legacy.seen["bond7"]["ifindex"] == legacy.seen["ifindex"]  # adopted, not re-made
    assert legacy.seen["slaves"] == ["dummy_0", "dummy_1"]


def test_removing_network_leaves_the_external_bond_as_it_was(legacy) -> None:
    """The production agent's legacy rule broke a bond it did not define
    with its last network; netreload never deletes a device it did not
    create (shared.netmodel.ownership): only the network's address goes."""
    ns = legacy.ns
    entry = link(ns, "bond7")
    assert entry["ifindex"] == legacy.seen["ifindex"] and is_up(entry)
    assert "ifalias" not in entry
    assert slaves(ns, "bond7") == ["dummy_0", "dummy_1"]
    assert ipv4(ns, "bond7") == {"10.77.0.9/24"}


def test_network_on_nic_replaces_its_previous_address(vm_netns, tmp_path) -> None:
    ip_batch(vm_netns, ["link set dummy_0 up", "addr add 10.77.0.9/24 dev dummy_0"])
    agent = Agent(HostNs(name=vm_netns, peer="", nics=["dummy_0", "dummy_1"]), tmp_path)
    agent.write_config()
    net = {"nic": "dummy_0", "bridged": False, "ipaddr": "10.78.0.1", "prefix": 24}
    ok(apply(agent, {"legacy": net}))
    assert ipv4(vm_netns, "dummy_0") == {"10.78.0.1/24"}


# --------------------------------------------------------------------------
# 9.-10. a rejected or failing request changes nothing
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settled(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    """bond1 (dummy_0 + dummy_1, active-backup) carrying a bridged VLAN
    network, applied by netreload; dummy_2 and dummy_3 free."""
    with host(tmp_path_factory, 4) as agent:
        ok(
            apply(
                agent,
                {"onbond": {"bonding": "bond1", "vlan": 10, "ipaddr": "10.10.0.1", "prefix": 24}},
                {"bond1": {"nics": ["dummy_0", "dummy_1"], "options": ACTIVE_BACKUP}},
            )
        )
        yield Scenario(agent)


@pytest.mark.parametrize(
    ("networks", "bondings", "code"),
    [
        pytest.param(
            {"onbond": {"remove": True}},
            {"bond2": {"nics": ["dummy_2", "dummy_9"], "options": ACTIVE_BACKUP}},
            23,
            id="bond-with-unknown-nic",
        ),
        pytest.param(
            {},
            {"bond1": {"nics": ["dummy_0", "dummy_1"], "options": "mode=1 lacp_rate=fast"}},
            25,
            id="lacp-rate-in-active-backup",
        ),
    ],
)
def test_rejected_request_changes_nothing(settled, networks, bondings, code) -> None:
    agent = settled.agent
    kernel_before, running_before = agent.kernel_state(), agent.running()
    result = apply(agent, networks, bondings)
    assert result["code"] == code, result
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before


def test_injected_failure_rolls_back_bond_and_vlan_networks(settled) -> None:
    agent = settled.agent
    kernel_before, running_before = agent.kernel_state(), agent.running()
    # add_bond, add_network va, [failure], add_network vb
    result = apply(
        agent,
        {
            "va": {"bonding": "bond2", "vlan": 10, "ipaddr": "10.11.0.1", "prefix": 24},
            "vb": {"bonding": "bond2", "vlan": 20, "bridged": False,
                   "ipaddr": "10.21.0.1", "prefix": 24},
        },
        {"bond2": {"nics": ["dummy_2", "dummy_3"], "options": LACP}},
        env={"NETRELOAD_TEST_FAIL_AFTER_OPS": "2"},
    )  # fmt: skip
    assert result["code"] == 29 and "injected" in result["message"], result
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before


def test_injected_failure_restores_the_options_of_an_edited_bond(settled, ns_sysfs) -> None:
    agent, ns = settled.agent, settled.ns
    kernel_before, running_before = agent.kernel_state(), agent.running()
    # edit_bond bond1, [failure], add_network vc
    result = apply(
        agent,
        {"vc": {"bonding": "bond1", "vlan": 30, "bridged": False}},
        {"bond1": {"nics": ["dummy_0", "dummy_1"], "options": "mode=active-backup miimon=250"}},
        env={"NETRELOAD_TEST_FAIL_AFTER_OPS": "1"},
    )
    assert result["code"] == 29 and "injected" in result["message"], result
    assert ns_sysfs(ns, "bond1", "bonding/miimon") == "100"
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before

