"""A DHCP lease's routes on the real superd, against a real dnsmasq on the
peer of veth_0 (10.66.0.1, the router).

On a network without the default route, the lease's router is source
routed like a static gateway (the network's table, rules ``from``/``to``
its subnet) and reported as its ``gateway``; a lease that would take over
part of the default route's traffic (a prefix shorter than /8, or a subnet
overlapping the default-route network's) is refused: no address, no route.
veth_1 carries the static default-route network.

The behaviour tests run under ``iproute2`` (the dhclient hook) and ``nm``
(NetworkManager's DHCP client, the network's profile routing into the
network's table, netreload adding the rules once the lease is there); the
refused leases are the hook's only (see the README's nm section).
"""

from __future__ import annotations

import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.functional.conftest import HostNs, ip_json
from tests.functional.dnsmasq import Dnsmasq, dnsmasq_path
from tests.functional.nm_lab import NmLab, why_no_nm
from tests.functional.superd_daemon import (
    Client,
    Superd,
    error_of,
    make_plan,
    wait_until,
)
from tests.functional.test_nm_superd import NmSuperd
from tests.functional.test_source_routing import main_defaults, rules, setup, table

pytestmark = pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed")

DYN_TABLE = str(zlib.adler32(b"veth_0"))
MGMT = {"nic": "veth_1", "bridged": False, "ipaddr": "192.0.2.10", "prefix": 24,
        "gateway": "192.0.2.1", "defaultRoute": True}  # fmt: skip
DYN = {"nic": "veth_0", "bridged": False, "bootproto": "dhcp"}
DYN_RULES = [("from 10.66.0.0/24", DYN_TABLE, 3200), ("to 10.66.0.0/24", DYN_TABLE, 3200)]


@pytest.fixture(params=["iproute2", "nm"])
def superd(
    request: pytest.FixtureRequest, make_ns: Callable[[], HostNs], tmp_path: Path, sock_dir: Path
) -> Iterator[Superd]:
    """superd with ``net_configurator`` the parameter (nm: a private
    NetworkManager in the namespace, as ``test_nm_superd``'s)."""
    why = why_no_nm() if request.param == "nm" else None
    if why is not None:
        pytest.skip(why)
    host = make_ns()
    if request.param == "nm":
        daemon: Superd = NmSuperd(host, tmp_path, sock_dir, NmLab(host.name, tmp_path / "nm"))
    else:
        daemon = Superd(host, tmp_path, sock_dir)
    with daemon:
        yield daemon


#: what only the dhclient hook does: refusing a lease (NetworkManager's
#: client takes it; netreload then adds no rules for it: the tests that it
#: steers no traffic run under both)
hook_only = pytest.mark.parametrize("superd", ["iproute2"], indirect=True)


@contextmanager
def serving(superd: Superd, tmp_path: Path, netmask: str) -> Iterator[Dnsmasq]:
    """dnsmasq on p_0 (10.66.0.1/24), leases .100-.150 with ``netmask``;
    stopped afterwards."""
    subprocess.run(["ip", "-n", superd.host.peer, "addr", "add", "10.66.0.1/24", "dev", "p_0"],
                   check=True, capture_output=True)  # fmt: skip
    server = Dnsmasq(superd.host.peer, "p_0", tmp_path / "dnsmasq",
                     [f"10.66.0.100,10.66.0.150,{netmask},2m"], ["option:router,10.66.0.1"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def conn(superd: Superd) -> Iterator[Client]:
    client = superd.connect()
    yield client
    # the DHCP clients go before the namespace does
    networks = client.result("netinfo")["running"]["networks"]
    if networks:
        setup(client, {name: {"remove": True} for name in networks})
    client.close()


def lease(ns: str) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}"
            for entry in ip_json(ns, "-4", "addr", "show", "dev", "veth_0")
            for a in entry.get("addr_info", []) if a.get("dynamic")]  # fmt: skip


def wait_acked(server: Dnsmasq, timeout: float = 20.0) -> None:
    """Until dnsmasq acknowledged a lease, and the hook had time to run."""
    deadline = time.monotonic() + timeout
    while "DHCPACK" not in server.log():
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    time.sleep(1.0)


def lease_table(ns: str) -> set[tuple]:
    """The lease's table as :func:`table` reads it, its default route
    without its preferred source (NetworkManager gives it the lease's
    address, the hook none: the same source either way)."""
    return {r[:3] if r[0] == "default" else r for r in table(ns, int(DYN_TABLE))}


def routes_via_veth_0(ns: str) -> list[str]:
    return [r["dst"] for r in ip_json(ns, "-4", "route", "show", "dev", "veth_0")]


def test_lease_router_of_a_network_without_the_default_route_is_source_routed(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with serving(superd, tmp_path, "255.255.255.0"):
        setup(conn, {"mgmt": MGMT, "dyn": {**DYN, "blockingdhcp": True}})
        ns = superd.host.name
        [address] = lease(ns)
        assert [r for r in rules(ns) if r[1] == DYN_TABLE] == DYN_RULES
        assert lease_table(ns) == {
            ("default", "10.66.0.1", "veth_0"),
            ("10.66.0.0/24", None, "veth_0", address.split("/")[0]),
        }
        assert main_defaults(ns) == [("192.0.2.1", "veth_1")]
        net = conn.result("netinfo")["caps"]["networks"]["dyn"]
        assert (net["gateway"], net["ipv4defaultroute"]) == ("10.66.0.1", False)


def test_removing_a_dhcp_network_removes_its_table_and_rules(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with serving(superd, tmp_path, "255.255.255.0"):
        setup(conn, {"mgmt": MGMT, "dyn": {**DYN, "blockingdhcp": True}})
        ns = superd.host.name
        assert len([r for r in rules(ns) if r[1] == DYN_TABLE]) == 2
        setup(conn, {"dyn": {"remove": True}})
        assert [r for r in rules(ns) if r[1] == DYN_TABLE] == []
        assert table(ns, int(DYN_TABLE)) == set()


def test_giving_up_the_default_route_moves_the_lease_router_to_source_routing(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with serving(superd, tmp_path, "255.255.255.0"):
        setup(conn, {"dyn": {**DYN, "blockingdhcp": True, "defaultRoute": True}})
        ns = superd.host.name
        assert main_defaults(ns) == [("10.66.0.1", "veth_0")]
        setup(conn, {"mgmt": MGMT})  # takes the default route over
        assert main_defaults(ns) == [("192.0.2.1", "veth_1")]
        # dyn is re-sent without it: removed and added, its new client not blocking
        wait_until(lambda: ("default", "10.66.0.1", "veth_0") in lease_table(ns))
        # and the rules looking it up, for the lease that came after the change
        wait_until(lambda: [r for r in rules(ns) if r[1] == DYN_TABLE] == DYN_RULES)
        assert main_defaults(ns) == [("192.0.2.1", "veth_1")]
        assert conn.result("netinfo")["caps"]["networks"]["dyn"]["gateway"] == "10.66.0.1"


def test_taking_the_default_route_removes_the_lease_table_and_rules(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with serving(superd, tmp_path, "255.255.255.0"):
        setup(conn, {"mgmt": MGMT, "dyn": {**DYN, "blockingdhcp": True}})
        ns = superd.host.name
        assert [r for r in rules(ns) if r[1] == DYN_TABLE] == DYN_RULES
        setup(conn, {"dyn": {**DYN, "blockingdhcp": True, "defaultRoute": True}})
        assert main_defaults(ns) == [("10.66.0.1", "veth_0")]
        assert [r for r in rules(ns) if r[1] == DYN_TABLE] == []
        assert table(ns, int(DYN_TABLE)) == set()


def test_a_dhcp_network_rolled_back_for_lost_connectivity_leaves_no_table_or_rules(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with serving(superd, tmp_path, "255.255.255.0"):
        setup(conn, {"mgmt": MGMT})
        options = {"connectivityCheck": True, "connectivityTimeout": 2}
        plan = make_plan(conn, {"dyn": {**DYN, "blockingdhcp": True}}, options)
        code, _ = error_of(conn.call("apply_plan", plan=plan))
        assert code == 10
        ns = superd.host.name
        assert [r for r in rules(ns) if r[1] == DYN_TABLE] == []
        assert table(ns, int(DYN_TABLE)) == set()


@contextmanager
def storage_lease(
    superd: Superd, conn: Client, tmp_path: Path, netmask: str, mgmt: dict
) -> Iterator[str]:
    """A storage network (DHCP, no default route) beside ``mgmt``, offered a
    lease with ``netmask``; yields the namespace once dnsmasq acknowledged
    it (the server still up)."""
    with serving(superd, tmp_path, netmask) as server:
        setup(conn, {"mgmt": mgmt, "storage": DYN})
        wait_acked(server)
        yield superd.host.name


def assert_lease_steers_no_traffic(ns: str, probe: str) -> None:
    """No rule looks the lease's table up, and what the host sends to
    ``probe`` still goes out through the default-route network (veth_1)."""
    assert [r for r in rules(ns) if r[1] == DYN_TABLE] == []
    [route] = ip_json(ns, "-4", "route", "get", probe)
    assert route["dev"] == "veth_1"


#: a lease of 0.0.0.0/1, half of IPv4 (its other half holds 200.1.1.1)
HALF_OF_IPV4 = "128.0.0.0"
#: the default-route network holds 10.66.200.0/24, inside a lease's 10.66.0.0/16
MGMT_IN_THE_LEASE = {**MGMT, "ipaddr": "10.66.200.10", "gateway": "10.66.200.1"}


def test_a_lease_for_half_of_ipv4_on_a_storage_network_steers_no_traffic(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with storage_lease(superd, conn, tmp_path, HALF_OF_IPV4, MGMT) as ns:
        assert_lease_steers_no_traffic(ns, probe="200.1.1.1")


@hook_only
def test_a_lease_for_half_of_ipv4_on_a_storage_network_is_refused(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with storage_lease(superd, conn, tmp_path, HALF_OF_IPV4, MGMT) as ns:
        assert_lease_steers_no_traffic(ns, probe="200.1.1.1")
        assert lease(ns) == [] and routes_via_veth_0(ns) == []


def test_a_lease_overlapping_the_default_route_networks_subnet_steers_no_traffic(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with storage_lease(superd, conn, tmp_path, "255.255.0.0", MGMT_IN_THE_LEASE) as ns:
        assert_lease_steers_no_traffic(ns, probe="10.66.200.1")


@hook_only
def test_a_lease_overlapping_the_default_route_networks_subnet_is_refused(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with storage_lease(superd, conn, tmp_path, "255.255.0.0", MGMT_IN_THE_LEASE) as ns:
        assert_lease_steers_no_traffic(ns, probe="10.66.200.1")
        assert lease(ns) == [] and routes_via_veth_0(ns) == []


def test_the_default_route_network_takes_the_lease_it_is_given(
    superd: Superd, conn: Client, tmp_path: Path
) -> None:
    with serving(superd, tmp_path, "255.255.0.0"):
        setup(conn, {"dyn": {**DYN, "blockingdhcp": True, "defaultRoute": True}})
        [address] = lease(superd.host.name)
        assert address.endswith("/16")
