"""A network asking for no IPv6 has none: IPv6 is disabled on its device.

The production agent's rule (its nmstate backend: ``enabled: false`` unless
``ipv6addr``, ``ipv6autoconf`` or ``dhcpv6``; its ifcfg backend:
``IPV6INIT=no``): no link-local address, no router advertisement listened
to, and none of the kernel's per-device IPv6 work. A device that outlives
its network (a NIC) gets the namespace's default back. The first tests run
against every configurator (``configurator_params``); the rollback ones
through the real superd. Assertions read ``disable_ipv6`` and ``ip -j``.
"""

from __future__ import annotations

import subprocess

from shared.faults import FAIL_AFTER_ENV
from tests.functional import configurator_params
from tests.functional.agent import Agent
from tests.functional.conftest import ip_json, ipv6_conf
from tests.functional.superd_daemon import NO_CHECK, Superd, error_of, make_plan
from tests.functional.test_source_routing import setup

agent = configurator_params.agent  # the agent tests, once per configurator

BRIDGED = {"nic": "veth_0", "ipaddr": "10.5.0.2", "prefix": 24}
STATIC6 = {**BRIDGED, "ipv6addr": "2001:db8:5::2/64"}


def ipv6_addresses(ns: str, device: str) -> list[str]:
    """Every IPv6 address of ``device``, link-local and tentative ones too."""
    return [f"{a['local']}/{a['prefixlen']}"
            for entry in ip_json(ns, "-6", "addr", "show", "dev", device)
            for a in entry.get("addr_info", [])]  # fmt: skip


def test_a_network_without_ipv6_has_ipv6_disabled_on_its_bridge(agent: Agent) -> None:
    assert agent.setup({"net": BRIDGED})["code"] == 0
    ns = agent.host.name
    assert ipv6_conf(ns, "net") == "1"
    assert ipv6_addresses(ns, "net") == []


def test_a_network_without_ipv6_reports_no_ipv6_in_the_agents_types(agent: Agent) -> None:
    assert agent.setup({"net": BRIDGED})["code"] == 0
    net = agent.caps()["networks"]["net"]
    assert (net["ipv6addrs"], net["ipv6autoconf"], net["dhcpv6"]) == ([], False, False)
    assert net["ipv6gateway"] == "::"


def test_a_network_with_a_static_ipv6_address_keeps_ipv6_on(agent: Agent) -> None:
    assert agent.setup({"net": STATIC6})["code"] == 0
    ns = agent.host.name
    assert ipv6_conf(ns, "net") == "0"
    assert "2001:db8:5::2/64" in ipv6_addresses(ns, "net")


def test_taking_ipv6_away_from_a_network_disables_it(agent: Agent) -> None:
    assert agent.setup({"net": STATIC6})["code"] == 0
    assert agent.setup({"net": BRIDGED})["code"] == 0
    ns = agent.host.name
    assert ipv6_conf(ns, "net") == "1"
    assert ipv6_addresses(ns, "net") == []


def test_giving_ipv6_to_a_network_enables_it(agent: Agent) -> None:
    assert agent.setup({"net": BRIDGED})["code"] == 0
    assert agent.setup({"net": STATIC6})["code"] == 0
    ns = agent.host.name
    assert ipv6_conf(ns, "net") == "0"
    assert "2001:db8:5::2/64" in ipv6_addresses(ns, "net")


def test_a_bridgeless_network_without_ipv6_disables_it_on_its_nic(agent: Agent) -> None:
    assert agent.setup({"net": {"nic": "veth_1", "bridged": False}})["code"] == 0
    assert ipv6_conf(agent.host.name, "veth_1") == "1"


def test_removing_a_bridgeless_network_gives_its_nic_ipv6_back(agent: Agent) -> None:
    assert agent.setup({"net": {"nic": "veth_1", "bridged": False}})["code"] == 0
    assert agent.setup({"net": {"remove": True}})["code"] == 0
    assert ipv6_conf(agent.host.name, "veth_1") == "0"


# -- through the real superd: a change rolled back ---------------------------


def test_a_failed_change_gives_the_nic_its_ipv6_back(superd: Superd) -> None:
    superd.stop()
    superd.env[FAIL_AFTER_ENV] = "1"  # the first network is set up, the second fails
    superd.start()
    conn = superd.connect()
    try:
        networks = {"a": {"nic": "veth_1", "bridged": False},
                    "b": {"nic": "veth_0", "ipaddr": "10.5.0.2", "prefix": 24}}  # fmt: skip
        code, message = error_of(conn.call("apply_plan", plan=make_plan(conn, networks, NO_CHECK)))
        assert code == 29 and "injected" in message
    finally:
        conn.close()
    assert ipv6_conf(superd.host.name, "veth_1") == "0"


def test_lost_connectivity_gives_the_nic_its_ipv6_back(superd: Superd) -> None:
    conn = superd.connect()
    try:
        plan = make_plan(conn, {"net": {"nic": "veth_1", "bridged": False}},
                         {"connectivityCheck": True, "connectivityTimeout": 1})  # fmt: skip
        code, _ = error_of(conn.call("apply_plan", plan=plan))
        assert code == 10
    finally:
        conn.close()
    assert ipv6_conf(superd.host.name, "veth_1") == "0"


def test_the_nic_of_a_removed_network_follows_the_namespaces_default(superd: Superd) -> None:
    """The namespace's default is the administrator's choice for any device:
    a NIC netreload gives back gets it, whatever its network had."""
    ns = superd.host.name
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                    "net.ipv6.conf.default.disable_ipv6=1"], check=True, timeout=30)  # fmt: skip
    conn = superd.connect()
    try:
        setup(conn, {"net": {"nic": "veth_1", "bridged": False,
                             "ipv6addr": "2001:db8:7::2/64"}})  # fmt: skip
        assert ipv6_conf(ns, "veth_1") == "0"
        setup(conn, {"net": {"remove": True}})
    finally:
        conn.close()
    assert ipv6_conf(ns, "veth_1") == "1"
