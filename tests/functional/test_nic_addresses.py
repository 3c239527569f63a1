"""A NIC a network takes over loses the addresses it had, on the real superd.

The production agent's rule: a bridge port has no IP configuration of its
own (the network's is on the bridge), and a bridgeless network's NIC holds
the network's IP configuration and nothing else. A change that is rolled
back — it failed, or the engine lost the host — gives the NIC its addresses
back: the kernel is as before. veth_0 and veth_1 start with addresses of
their own; assertions are on ``ip -j addr`` read back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.faults import FAIL_AFTER_ENV
from tests.functional.conftest import ip_json
from tests.functional.superd_daemon import (
    NO_CHECK,
    Client,
    Superd,
    error_of,
    make_plan,
)
from tests.functional.test_source_routing import kernel_state, setup

OWN = {"veth_0": ["10.9.0.9/24", "10.9.0.10/24", "2001:db8:9::9/64"],
       "veth_1": ["10.8.0.8/24", "2001:db8:8::8/64"]}  # fmt: skip


def addresses(ns: str, device: str) -> list[str]:
    """IPv4 and global IPv6 addresses, in the kernel's order."""
    return [f"{a['local']}/{a['prefixlen']}"
            for entry in ip_json(ns, "addr", "show", "dev", device)
            for a in entry.get("addr_info", []) if a.get("scope") == "global"]  # fmt: skip


@pytest.fixture
def nics_with_addresses(superd: Superd) -> Superd:
    for nic, cidrs in OWN.items():
        for cidr in cidrs:
            superd.host.ip("addr", "add", cidr, "dev", nic, "nodad")
    return superd


@pytest.fixture
def conn(nics_with_addresses: Superd) -> Iterator[Client]:
    client = nics_with_addresses.connect()
    yield client
    client.close()


def test_a_bridged_network_takes_the_nics_addresses_away(
    nics_with_addresses: Superd, conn: Client
) -> None:
    setup(conn, {"net": {"nic": "veth_0", "ipaddr": "10.5.0.2", "prefix": 24}})
    ns = nics_with_addresses.host.name
    assert addresses(ns, "veth_0") == []
    assert addresses(ns, "net") == ["10.5.0.2/24"]


def test_a_bridgeless_network_replaces_the_nics_addresses(
    nics_with_addresses: Superd, conn: Client
) -> None:
    setup(conn, {"net": {"nic": "veth_1", "bridged": False, "ipaddr": "10.5.0.2", "prefix": 24,
                         "ipv6addr": "2001:db8:5::2/64"}})  # fmt: skip
    ns = nics_with_addresses.host.name
    assert addresses(ns, "veth_1") == ["10.5.0.2/24", "2001:db8:5::2/64"]


def test_a_bridgeless_network_without_ip_leaves_the_nic_without_addresses(
    nics_with_addresses: Superd, conn: Client
) -> None:
    setup(conn, {"net": {"nic": "veth_1", "bridged": False}})
    assert addresses(nics_with_addresses.host.name, "veth_1") == []


def test_a_failed_change_gives_the_nics_their_addresses_back(nics_with_addresses: Superd) -> None:
    daemon = nics_with_addresses
    daemon.stop()
    daemon.env[FAIL_AFTER_ENV] = "1"  # the first network is set up, the second fails
    daemon.start()
    before = kernel_state(daemon)
    conn = daemon.connect()
    try:
        networks = {"a": {"nic": "veth_0", "ipaddr": "10.5.0.2", "prefix": 24},
                    "b": {"nic": "veth_1", "bridged": False}}  # fmt: skip
        code, message = error_of(conn.call("apply_plan", plan=make_plan(conn, networks, NO_CHECK)))
        assert code == 29 and "injected" in message
    finally:
        conn.close()
    ns = daemon.host.name
    assert {nic: addresses(ns, nic) for nic in OWN} == OWN
    assert kernel_state(daemon) == before


def test_lost_connectivity_gives_the_nic_its_addresses_back(
    nics_with_addresses: Superd, conn: Client
) -> None:
    before = kernel_state(nics_with_addresses)
    plan = make_plan(conn, {"net": {"nic": "veth_0", "ipaddr": "10.5.0.2", "prefix": 24}},
                     {"connectivityCheck": True, "connectivityTimeout": 1})  # fmt: skip
    code, _ = error_of(conn.call("apply_plan", plan=plan))
    assert code == 10
    assert addresses(nics_with_addresses.host.name, "veth_0") == OWN["veth_0"]
    assert kernel_state(nics_with_addresses) == before
