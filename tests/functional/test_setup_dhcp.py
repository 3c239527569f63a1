"""DHCPv4 and DHCPv6 networks through setupNetworks, against a real dnsmasq
in the peer namespace (the peer end of veth_0 is p_0); each test once per
configurator (``configurator_params``: iproute2's DHCP clients,
NetworkManager's)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.configurator_params import CONFIGURATORS, configured_agent
from tests.functional.conftest import HostNs, ip_json
from tests.functional.contract import assert_caps_contract
from tests.functional.dnsmasq import Dnsmasq, dnsmasq_path, serving_the_peer

pytestmark = pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed")


@pytest.fixture
def dhcp_server(host_ns: HostNs, tmp_path) -> Iterator[Dnsmasq]:
    with serving_the_peer(host_ns.peer, tmp_path / "dnsmasq", "10.66.0",
                          ["option:dns-server,10.66.0.53"]) as server:  # fmt: skip
        yield server


@pytest.fixture
def dhcpv6_server(host_ns: HostNs, tmp_path: Path) -> Iterator[Dnsmasq]:
    """dnsmasq leasing fd66::100..1ff (no router advertisement: the client
    asks by itself) and naming fd66::53 as DNS server, on p_0 (fd66::1/64)."""
    subprocess.run(
        ["ip", "-n", host_ns.peer, "addr", "add", "fd66::1/64", "dev", "p_0", "nodad"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = Dnsmasq(host_ns.peer, "p_0", tmp_path / "dnsmasq6", ["fd66::100,fd66::1ff,64,2m"],
                     ["option6:dns-server,[fd66::53]"])  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=CONFIGURATORS)
def agent(request: pytest.FixtureRequest, host_ns: HostNs, tmp_path) -> Iterator[Agent]:
    with configured_agent(request.param, host_ns, tmp_path / "agent") as agent:
        yield agent
        # Stop the DHCP clients netreload started before the namespace goes.
        for name in list(agent.running().get("nets", {})):
            agent.setup({name: {"remove": True}}, options={"connectivityCheck": False})


def dynamic_ipv4(ns: str, device: str) -> list[dict]:
    entries = ip_json(ns, "-4", "addr", "show", "dev", device)  # [] without IPv4
    return [a for e in entries for a in e.get("addr_info", []) if a.get("dynamic")]


def test_blocking_dhcp_network_has_its_lease_when_setup_returns(agent, dhcp_server) -> None:
    result = agent.setup(
        {"dyn": {"nic": "veth_0", "bootproto": "dhcp", "blockingdhcp": True,
                 "defaultRoute": True}}
    )  # fmt: skip
    assert result["code"] == 0, result
    (lease,) = dynamic_ipv4(agent.host.name, "dyn")
    assert lease["local"].startswith("10.66.0.") and lease["prefixlen"] == 24
    (route,) = ip_json(agent.host.name, "-4", "route", "show", "default")
    assert route["gateway"] == "10.66.0.1" and route["dev"] == "dyn"


def test_async_dhcp_network_gets_its_lease_in_the_background(agent, dhcp_server) -> None:
    result = agent.setup({"dyn": {"nic": "veth_0", "bridged": False, "bootproto": "dhcp"}})
    assert result["code"] == 0, result
    deadline = time.monotonic() + 20
    while not dynamic_ipv4(agent.host.name, "veth_0") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dynamic_ipv4(agent.host.name, "veth_0")


def test_dhcp_capabilities_report_dhcpv4(agent, dhcp_server) -> None:
    agent.setup({"dyn": {"nic": "veth_0", "bootproto": "dhcp", "blockingdhcp": True}})
    net = assert_caps_contract(agent.caps())["networks"]["dyn"]
    assert net["dhcpv4"] is True and net["addr"].startswith("10.66.0.")
    assert net["southbound"] == "veth_0" and net["mtu"] == "1500"


def test_blockingdhcp_is_not_persisted(agent, dhcp_server) -> None:
    agent.setup({"dyn": {"nic": "veth_0", "bootproto": "dhcp", "blockingdhcp": True}})
    assert "blockingdhcp" not in agent.running()["nets"]["dyn"]


def test_removing_a_dhcp_network_releases_its_address(agent, dhcp_server) -> None:
    agent.setup({"dyn": {"nic": "veth_0", "bridged": False, "bootproto": "dhcp",
                         "blockingdhcp": True}})  # fmt: skip
    assert agent.setup({"dyn": {"remove": True}})["code"] == 0
    assert dynamic_ipv4(agent.host.name, "veth_0") == []


def dynamic_ipv6(ns: str, device: str) -> list[dict]:
    entries = ip_json(ns, "-6", "addr", "show", "dev", device, "scope", "global")
    return [a for e in entries for a in e.get("addr_info", []) if a.get("dynamic")]


def test_dhcpv6_network_gets_its_lease_in_the_background(agent, dhcpv6_server) -> None:
    result = agent.setup({"dyn6": {"nic": "veth_0", "bridged": False, "dhcpv6": True}})
    assert result["code"] == 0, result
    deadline = time.monotonic() + 30
    while not dynamic_ipv6(agent.host.name, "veth_0") and time.monotonic() < deadline:
        time.sleep(0.2)
    (lease,) = dynamic_ipv6(agent.host.name, "veth_0")
    assert lease["local"].startswith("fd66::") and lease["prefixlen"] == 128
    assert lease["local"] in dhcpv6_server.leases()
    net = assert_caps_contract(agent.caps())["networks"]["dyn6"]
    assert net["dhcpv6"] is True and f"{lease['local']}/128" in net["ipv6addrs"]
