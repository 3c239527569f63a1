"""OVS networks (``switch: ovs``) on a real ovsdb-server and ovs-vswitchd.

Each test starts a private Open vSwitch in userspace (see ``ovs_lab``),
acts through ``superd.oneshot`` and reads back with ``ovs-vsctl``,
``ovs-appctl`` and ``ip -j``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.conftest import HostNs, addresses, ip_json
from tests.functional.contract import assert_caps_contract
from tests.functional.dnsmasq import Dnsmasq, dnsmasq_path, serving_the_peer
from tests.functional.ovs_lab import OvsLab, why_no_ovs

pytestmark = pytest.mark.skipif(why_no_ovs() is not None, reason=why_no_ovs() or "")


@pytest.fixture
def ovs(host_ns: HostNs, tmp_path: Path) -> Iterator[OvsLab]:
    with OvsLab(host_ns.name, tmp_path / "ovs") as lab:
        yield lab


def ovs_config(agent: Agent, lab: OvsLab) -> None:
    agent.write_config()
    with agent.config_path.open("a") as config:
        config.write(f"[ovs]\ndb = {lab.remote}\ndatapath = netdev\ntimeout = 20\n")


@pytest.fixture
def agent(host_ns: HostNs, tmp_path: Path, ovs: OvsLab) -> Agent:
    agent = Agent(host_ns, tmp_path)
    ovs_config(agent, ovs)
    return agent


def bridge_of(lab: OvsLab, port: str) -> str:
    return lab.vsctl("port-to-br", port).strip()


def test_ovs_bridged_network_with_static_ip_on_a_nic(agent: Agent, ovs: OvsLab) -> None:
    result = agent.setup(
        {"ovsnet": {"nic": "veth_0", "switch": "ovs", "ipaddr": "192.0.2.10", "prefix": 24,
                    "mtu": 1400}},
        options={"connectivityCheck": False},
    )  # fmt: skip
    assert result["code"] == 0, result
    bridge = bridge_of(ovs, "ovsnet")
    assert bridge_of(ovs, "veth_0") == bridge
    assert ovs.ports(bridge) == {"ovsnet", "veth_0"}
    (iface,) = [r for r in ovs.table("Interface", "name,type,mtu_request")
                if r["name"] == "ovsnet"]  # fmt: skip
    assert iface["type"] == "internal" and iface["mtu_request"] == 1400
    ns = agent.host.name
    (link,) = ip_json(ns, "link", "show", "dev", "ovsnet")
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    assert addresses(ns, "ovsnet") == {"192.0.2.10/24"}
    caps = assert_caps_contract(agent.caps())
    net = caps["networks"]["ovsnet"]
    assert net["switch"] == "ovs" and net["ports"] == ["veth_0"]
    assert (net["southbound"], net["mtu"], net["stp"]) == ("veth_0", "1400", "off")
    assert net["ipv4addrs"] == ["192.0.2.10/24"]
    assert caps["bridges"]["ovsnet"]["ports"] == ["veth_0"]


def test_three_vlan_networks_on_one_ovs_bond_of_two_nics(agent: Agent, ovs: OvsLab) -> None:
    networks = {
        f"vnet{tag}": {"bonding": "bond0", "vlan": tag, "switch": "ovs",
                       "ipaddr": f"198.51.{tag}.1", "prefix": 24}
        for tag in (10, 20, 30)
    }  # fmt: skip
    bondings = {"bond0": {"nics": ["veth_0", "veth_1"], "switch": "ovs",
                          "options": "bond_mode=balance-slb lacp=off"}}  # fmt: skip
    result = agent.setup(networks, bondings, {"connectivityCheck": False})
    assert result["code"] == 0, result
    bridge = bridge_of(ovs, "bond0")
    assert ovs.ports(bridge) == {"bond0", "vnet10", "vnet20", "vnet30"}
    tags = {r["name"]: r["tag"] for r in ovs.table("Port", "name,tag")}
    assert {tags[f"vnet{t}"] for t in (10, 20, 30)} == {10, 20, 30}
    shown = ovs.appctl("bond/show", "bond0")
    assert "bond_mode: balance-slb" in shown
    assert "member veth_0" in shown and "member veth_1" in shown
    for tag in (10, 20, 30):
        assert addresses(agent.host.name, f"vnet{tag}") == {f"198.51.{tag}.1/24"}
    caps = assert_caps_contract(agent.caps())
    assert caps["bondings"]["bond0"]["slaves"] == ["veth_0", "veth_1"]
    assert caps["bondings"]["bond0"]["switch"] == "ovs"
    assert caps["networks"]["vnet20"]["ports"] == ["bond0.20"]
    assert (caps["networks"]["vnet20"]["southbound"], caps["networks"]["vnet20"]["vlanid"]) == (
        "bond0.20", 20)  # fmt: skip


def test_mixed_request_rolled_back_restores_ovsdb_and_kernel_exactly(
    agent: Agent, ovs: OvsLab
) -> None:
    base = {"base": {"nic": "veth_0", "switch": "ovs", "ipaddr": "192.0.2.1", "prefix": 24}}
    assert agent.setup(base, options={"connectivityCheck": False})["code"] == 0
    ovsdb_before, kernel_before = ovs.config_snapshot(), agent.kernel_state()
    running_before = agent.running()
    written = ovs.transactions("netreload:")
    mixed = {
        # plan order: aovs (OVS, buffered), blegacy (legacy: OVSDB is written
        # first), then the injected failure before cbridge
        "aovs": {"nic": "veth_0", "vlan": 100, "switch": "ovs",
                 "ipaddr": "203.0.113.1", "prefix": 24},
        "blegacy": {"nic": "veth_1", "ipaddr": "198.51.100.1", "prefix": 24},
        "cbridge": {"bridged": True},
    }  # fmt: skip
    result = agent.setup(mixed, options={"connectivityCheck": False},
                         env={"NETRELOAD_TEST_FAIL_AFTER_OPS": "2"})  # fmt: skip
    assert result["code"] == 29 and "injected" in result["message"], result
    # aovs was written to OVSDB (one transaction), then taken out (another)
    assert ovs.transactions("netreload:") == written + 2
    assert ovs.config_snapshot() == ovsdb_before
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before


def test_mixed_request_applies_legacy_and_ovs_networks_together(agent: Agent, ovs: OvsLab) -> None:
    mixed = {
        "aovs": {"nic": "veth_0", "vlan": 100, "switch": "ovs"},
        "blegacy": {"nic": "veth_1", "ipaddr": "198.51.100.1", "prefix": 24},
    }
    assert agent.setup(mixed, options={"connectivityCheck": False})["code"] == 0
    assert ovs.ports(bridge_of(ovs, "aovs")) == {"aovs", "veth_0"}
    (legacy,) = ip_json(agent.host.name, "-d", "link", "show", "dev", "blegacy")
    assert legacy["linkinfo"]["info_kind"] == "bridge"
    caps = assert_caps_contract(agent.caps())
    assert caps["networks"]["aovs"]["switch"] == "ovs"
    assert caps["networks"]["blegacy"]["switch"] == "legacy"


def test_unreachable_ovsdb_is_error_32_and_changes_nothing(agent: Agent, ovs: OvsLab) -> None:
    ovs.stop()
    before = agent.kernel_state()
    result = agent.setup(
        {"ovsnet": {"nic": "veth_0", "switch": "ovs", "ipaddr": "192.0.2.10", "prefix": 24}},
        options={"connectivityCheck": False},
    )
    assert result["code"] == 32, result
    assert agent.kernel_state() == before
    assert agent.running() == {"nets": {}, "bonds": {}}


def test_bridgeless_ovs_vlan_network_is_reported_on_its_vlan(agent: Agent, ovs: OvsLab) -> None:
    result = agent.setup(
        {"storage": {"nic": "veth_1", "vlan": 7, "bridged": False, "switch": "ovs",
                     "ipaddr": "198.51.100.7", "prefix": 24}},
        options={"connectivityCheck": False},
    )  # fmt: skip
    assert result["code"] == 0, result
    assert ovs.ports(bridge_of(ovs, "storage")) == {"storage", "veth_1"}
    assert addresses(agent.host.name, "storage") == {"198.51.100.7/24"}
    caps = assert_caps_contract(agent.caps())
    assert caps["networks"]["storage"]["iface"] == "veth_1.7"
    assert caps["networks"]["storage"]["southbound"] == "veth_1.7"
    assert caps["networks"]["storage"]["bridged"] is False
    assert caps["vlans"]["veth_1.7"]["ipv4addrs"] == ["198.51.100.7/24"]
    assert "storage" not in caps["bridges"]


def test_removing_the_last_ovs_network_of_a_nic_removes_its_bridge(
    agent: Agent, ovs: OvsLab
) -> None:
    net = {"ovsnet": {"nic": "veth_0", "switch": "ovs", "ipaddr": "192.0.2.10", "prefix": 24}}
    assert agent.setup(net, options={"connectivityCheck": False})["code"] == 0
    assert ovs.bridges()
    result = agent.setup({"ovsnet": {"remove": True}}, options={"connectivityCheck": False})
    assert result["code"] == 0, result
    assert ovs.bridges() == set()
    names = {link["ifname"] for link in ip_json(agent.host.name, "link", "show")}
    assert "ovsnet" not in names
    assert agent.running() == {"nets": {}, "bonds": {}}


def test_failed_edit_of_an_ovs_network_restores_its_rows_exactly(agent: Agent, ovs: OvsLab) -> None:
    base = {"base": {"nic": "veth_0", "vlan": 5, "switch": "ovs",
                     "ipaddr": "192.0.2.1", "prefix": 24}}  # fmt: skip
    assert agent.setup(base, options={"connectivityCheck": False})["code"] == 0
    ovsdb_before, kernel_before = ovs.config_snapshot(), agent.kernel_state()
    running_before = agent.running()
    written = ovs.transactions("netreload:")
    edit = {
        # remove base + add base (new tag, MTU, address): OVSDB edits; then
        # blegacy (legacy: they are sent first); failure before cbridge
        "base": {"nic": "veth_0", "vlan": 6, "switch": "ovs", "mtu": 1400,
                 "ipaddr": "192.0.2.2", "prefix": 24},
        "blegacy": {"nic": "veth_1"},
        "cbridge": {"bridged": True},
    }  # fmt: skip
    result = agent.setup(edit, options={"connectivityCheck": False},
                         env={"NETRELOAD_TEST_FAIL_AFTER_OPS": "4"})  # fmt: skip
    assert result["code"] == 29 and "injected" in result["message"], result
    assert ovs.transactions("netreload:") == written + 2
    assert ovs.config_snapshot() == ovsdb_before
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before


@pytest.fixture
def dhcp_server(host_ns: HostNs, tmp_path: Path) -> Iterator[Dnsmasq]:
    """dnsmasq on the far end of veth_0 (p_0, in the peer namespace)."""
    # A veth hands the UDP checksum dnsmasq's stack left to the "hardware" on
    # to its peer unfilled; the userspace datapath forwards it as it is and
    # dhclient drops the reply. A real NIC fills it in before the wire.
    subprocess.run(["ip", "netns", "exec", host_ns.peer, "ethtool", "-K", "p_0", "tx", "off"],
                   check=True, capture_output=True)  # fmt: skip
    with serving_the_peer(host_ns.peer, tmp_path / "dnsmasq", "10.67.0") as server:
        yield server


@pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed")
def test_dhcp_network_on_ovs_gets_its_lease_on_its_internal_port(
    agent: Agent, ovs: OvsLab, dhcp_server: Dnsmasq
) -> None:
    result = agent.setup(
        {"dynovs": {"nic": "veth_0", "switch": "ovs", "bootproto": "dhcp",
                    "blockingdhcp": True, "defaultRoute": True}}
    )  # fmt: skip
    try:
        assert result["code"] == 0, result
        assert bridge_of(ovs, "dynovs") == bridge_of(ovs, "veth_0")
        ns = agent.host.name
        (lease,) = [a for e in ip_json(ns, "-4", "addr", "show", "dev", "dynovs")
                    for a in e["addr_info"] if a.get("dynamic")]  # fmt: skip
        assert lease["local"].startswith("10.67.0.") and lease["prefixlen"] == 24
        (route,) = ip_json(ns, "-4", "route", "show", "default")
        assert route["gateway"] == "10.67.0.1" and route["dev"] == "dynovs"
        net = assert_caps_contract(agent.caps())["networks"]["dynovs"]
        assert net["switch"] == "ovs" and net["dhcpv4"] is True
    finally:  # stop its DHCP client before the namespace goes
        agent.setup({"dynovs": {"remove": True}}, options={"connectivityCheck": False})
