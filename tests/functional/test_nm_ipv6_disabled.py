"""IPv6 off on a network that asks for none, through NetworkManager.

As VDSM does (``nmstate/ip.py``: IPv6 ``enabled: false`` without
``ipv6addr``, ``ipv6autoconf`` or ``dhcpv6``), the network's top device
gets ``ipv6.method disabled``: NetworkManager writes ``disable_ipv6`` = 1,
so the device has no link-local address (and the kernel no IPv6 routes
of it to walk on every bridge added or deleted). A network asking for
IPv6 keeps it; a NIC whose bridgeless network goes gets it back.

Agent (``superd.oneshot``) with ``net_configurator = nm`` and a private
NetworkManager (``nm_lab``); read back from the namespace's
``/proc/sys/net/ipv6/conf`` and ``ip -j -6 addr``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.configurator_params import configured_agent
from tests.functional.conftest import HostNs, ip_json, ipv6_conf
from tests.functional.contract import assert_caps_contract
from tests.functional.nm_lab import TIMEOUT, why_no_nm

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))


@pytest.fixture
def agent(make_host_ns: Callable[..., HostNs], tmp_path: Path) -> Iterator[Agent]:
    with configured_agent("nm", make_host_ns(2, prefix="nm6-"), tmp_path) as agent:
        yield agent


def ipv6_addresses(agent: Agent, device: str) -> list[str]:
    return [
        f"{info['local']}/{info['prefixlen']}"
        for entry in ip_json(agent.host.name, "-6", "addr", "show", "dev", device)
        for info in entry.get("addr_info", [])
    ]


def profile_ipv6_method(agent: Agent, name: str) -> str:
    return agent.nm.nmcli("-g", "ipv6.method", "connection", "show", "id", name).strip()


BRIDGED = {"nic": "veth_0", "ipaddr": "192.0.2.5", "prefix": 24}
BRIDGELESS = {"nic": "veth_1", "bridged": False, "ipaddr": "198.51.100.7", "prefix": 24}


def test_a_bridge_without_ipv6_has_it_disabled_and_no_address(agent: Agent) -> None:
    assert agent.setup({"net_a": BRIDGED})["code"] == 0
    assert ipv6_conf(agent.host.name, "net_a") == "1"
    assert ipv6_addresses(agent, "net_a") == []
    assert profile_ipv6_method(agent, "net_a") == "disabled"


def test_a_bridge_with_ipv6_autoconf_keeps_ipv6(agent: Agent) -> None:
    assert agent.setup({"net_a": {**BRIDGED, "ipv6autoconf": True}})["code"] == 0
    assert ipv6_conf(agent.host.name, "net_a") == "0"


def test_a_bridge_with_a_static_ipv6_address_keeps_ipv6_and_has_it(agent: Agent) -> None:
    net = {**BRIDGED, "ipv6addr": "2001:db8:6::10/64"}
    assert agent.setup({"net_a": net})["code"] == 0
    assert ipv6_conf(agent.host.name, "net_a") == "0"
    assert "2001:db8:6::10/64" in ipv6_addresses(agent, "net_a")


def test_a_bridgeless_network_without_ipv6_disables_it_on_its_nic(agent: Agent) -> None:
    assert agent.setup({"storage": BRIDGELESS})["code"] == 0
    assert ipv6_conf(agent.host.name, "veth_1") == "1"
    assert ipv6_addresses(agent, "veth_1") == []


def test_a_nic_gets_ipv6_back_when_its_bridgeless_network_goes(agent: Agent) -> None:
    assert agent.setup({"storage": BRIDGELESS})["code"] == 0
    assert agent.setup({"storage": {"remove": True}})["code"] == 0
    assert ipv6_conf(agent.host.name, "veth_1") == "0"


def test_a_nic_keeps_ipv6_when_its_network_fails_to_activate(agent: Agent) -> None:
    """A blocking DHCP network without a DHCP server never activates: 29,
    NetworkManager's checkpoint rolled back, the NIC as it was."""
    text = agent.config_path.read_text().replace(f"timeout = {TIMEOUT}", "timeout = 3")
    agent.config_path.write_text(text)
    net = {"nic": "veth_1", "bridged": False, "bootproto": "dhcp", "blockingdhcp": True}
    assert agent.setup({"storage": net})["code"] == 29
    assert ipv6_conf(agent.host.name, "veth_1") == "0"


def test_a_nic_gets_ipv6_back_when_its_network_becomes_bridged(agent: Agent) -> None:
    assert agent.setup({"storage": BRIDGELESS})["code"] == 0
    assert agent.setup({"storage": {**BRIDGELESS, "bridged": True}})["code"] == 0
    ns = agent.host.name
    assert (ipv6_conf(ns, "veth_1"), ipv6_conf(ns, "storage")) == ("0", "1")


def test_a_network_edited_to_ask_for_ipv6_gets_it_enabled(agent: Agent) -> None:
    assert agent.setup({"net_a": BRIDGED})["code"] == 0
    assert agent.setup({"net_a": {**BRIDGED, "ipv6addr": "2001:db8:6::10/64"}})["code"] == 0
    assert ipv6_conf(agent.host.name, "net_a") == "0"
    assert "2001:db8:6::10/64" in ipv6_addresses(agent, "net_a")


def test_a_network_edited_to_ask_for_no_ipv6_loses_its_address_and_ipv6(agent: Agent) -> None:
    assert agent.setup({"net_a": {**BRIDGED, "ipv6addr": "2001:db8:6::10/64"}})["code"] == 0
    assert agent.setup({"net_a": BRIDGED})["code"] == 0
    assert ipv6_conf(agent.host.name, "net_a") == "1"
    assert ipv6_addresses(agent, "net_a") == []
    assert assert_caps_contract(agent.caps())["networks"]["net_a"]["ipv6addrs"] == []


def test_a_link_local_profile_of_an_earlier_release_is_disabled_on_the_next_edit(
    agent: Agent,
) -> None:
    assert agent.setup({"net_a": BRIDGED})["code"] == 0
    # what netreload held before IPv6 was disabled: the profile in link-local
    agent.nm.nmcli("connection", "modify", "id", "net_a", "ipv6.method", "link-local")
    agent.nm.nmcli("connection", "up", "id", "net_a")
    assert profile_ipv6_method(agent, "net_a") == "link-local"
    assert agent.setup({"net_a": {**BRIDGED, "ipaddr": "192.0.2.6"}})["code"] == 0
    assert profile_ipv6_method(agent, "net_a") == "disabled"
    assert ipv6_conf(agent.host.name, "net_a") == "1"


def test_a_network_without_ipv6_reports_vdsms_keys_and_types(agent: Agent) -> None:
    assert agent.setup({"net_a": BRIDGED})["code"] == 0
    net = assert_caps_contract(agent.caps())["networks"]["net_a"]
    assert (net["ipv6addrs"], net["ipv6autoconf"], net["dhcpv6"], net["ipv6gateway"]) == (
        [], False, False, "::"
    )  # fmt: skip
