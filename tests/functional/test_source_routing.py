"""Source routing ("multiple gateways") on the real superd.

Every network with an IPv4 gateway but the default-route one has its own
routing table, numbered after its top device as the production agent
numbers it (Adler-32 of the name), with its subnet and a default route via
its gateway, looked up by the rules ``from <subnet>`` and ``to <subnet>``;
the capabilities report each network's ``gateway`` from there. Assertions are on ``ip -j rule`` and
``ip -j route show table N`` read back, and on superd's netinfo.
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.faults import FAIL_AFTER_ENV
from tests.functional.conftest import HostNs, destroy_host_ns, ip_json
from tests.functional.superd_daemon import (
    NO_CHECK,
    Client,
    Superd,
    error_of,
    make_plan,
)

MGMT = {"nic": "veth_0", "bridged": True, "ipaddr": "192.0.2.10", "prefix": 24,
        "gateway": "192.0.2.1", "defaultRoute": True}  # fmt: skip
STORAGE = {"nic": "veth_1", "bridged": False, "ipaddr": "198.51.100.7", "prefix": 24,
           "gateway": "198.51.100.1"}  # fmt: skip
STORAGE_TABLE = zlib.adler32(b"veth_1")  # bridgeless: the NIC is its top device
MGMT_TABLE = zlib.adler32(b"mgmt")


@pytest.fixture
def conn(superd: Superd) -> Iterator[Client]:
    client = superd.connect()
    yield client
    client.close()


def setup(conn: Client, networks: dict, **options: Any) -> None:
    conn.result("apply_plan", plan=make_plan(conn, networks, {**NO_CHECK, **options}))


def rules(ns: str) -> list[tuple[str, str, int]]:
    """Source-routing rules: (selector, table, priority), kernel order."""
    out = []
    for rule in ip_json(ns, "-4", "rule", "show"):
        if rule.get("src", "all") != "all":
            out.append((f"from {rule['src']}/{rule.get('srclen', 32)}", rule["table"],
                        rule["priority"]))  # fmt: skip
        elif rule.get("dst"):
            out.append((f"to {rule['dst']}/{rule.get('dstlen', 32)}", rule["table"],
                        rule["priority"]))  # fmt: skip
    return out


def table(ns: str, number: int) -> set[tuple]:
    """(dst, gateway, dev, prefsrc) of the table's routes; empty when the
    kernel never had the table."""
    try:
        routes = ip_json(ns, "-4", "route", "show", "table", str(number))
    except RuntimeError as error:
        if "does not exist" not in str(error):
            raise
        routes = []
    return {(r["dst"], r.get("gateway"), r["dev"], r.get("prefsrc")) for r in routes}


def main_defaults(ns: str) -> list[tuple[str, str]]:
    return [(r["gateway"], r["dev"]) for r in ip_json(ns, "-4", "route", "show", "default")]


def storage_routing(table_number: int = STORAGE_TABLE) -> tuple[list, set]:
    t = str(table_number)
    return (
        [("from 198.51.100.0/24", t, 3200), ("to 198.51.100.0/24", t, 3200)],
        {("default", "198.51.100.1", "veth_1", None),
         ("198.51.100.0/24", None, "veth_1", "198.51.100.7")},
    )  # fmt: skip


def kernel_state(superd: Superd) -> dict:
    """``Superd.kernel_state``'s before/after picture, with the rules,
    without the local table (it mirrors the addresses, an IPv6 one only
    once DAD is over)."""
    state = superd.kernel_state()
    routes = [r for r in state["routes"] if json.loads(r).get("table") != "local"]
    return {**state, "routes": routes, "rules": ip_json(superd.host.name, "-4", "rule", "show")}


def test_network_without_the_default_route_gets_its_own_table_and_rules(
    superd: Superd, conn: Client
) -> None:
    setup(conn, {"mgmt": MGMT, "storage": STORAGE})
    ns = superd.host.name
    want_rules, want_table = storage_routing()
    assert [r for r in rules(ns) if r[1] == str(STORAGE_TABLE)] == want_rules
    assert table(ns, STORAGE_TABLE) == want_table
    assert main_defaults(ns) == [("192.0.2.1", "mgmt")]


def test_capabilities_report_each_networks_gateway(superd: Superd, conn: Client) -> None:
    setup(conn, {"mgmt": MGMT, "storage": STORAGE})
    nets = conn.result("netinfo")["caps"]["networks"]
    assert (nets["storage"]["gateway"], nets["storage"]["ipv4defaultroute"]) == (
        "198.51.100.1", False
    )
    assert (nets["mgmt"]["gateway"], nets["mgmt"]["ipv4defaultroute"]) == ("192.0.2.1", True)


def test_moving_the_default_route_keeps_the_previous_holders_gateway(
    superd: Superd, conn: Client
) -> None:
    setup(conn, {"mgmt": MGMT, "storage": STORAGE})
    setup(conn, {"storage": {**STORAGE, "defaultRoute": True}})
    ns = superd.host.name
    assert main_defaults(ns) == [("198.51.100.1", "veth_1")]
    nets = conn.result("netinfo")["caps"]["networks"]
    assert (nets["mgmt"]["gateway"], nets["mgmt"]["ipv4defaultroute"]) == ("192.0.2.1", False)
    assert ("from 192.0.2.0/24", str(MGMT_TABLE), 3200) in rules(ns)
    assert ("default", "192.0.2.1", "mgmt", None) in table(ns, MGMT_TABLE)
    # the new holder's gateway is the main table's: its own table is gone
    assert [r for r in rules(ns) if r[1] == str(STORAGE_TABLE)] == []
    assert table(ns, STORAGE_TABLE) == set()


def test_removing_the_network_removes_its_table_and_rules(
    superd: Superd, conn: Client
) -> None:
    setup(conn, {"mgmt": MGMT, "storage": STORAGE})
    ns = superd.host.name
    assert len([r for r in rules(ns) if r[1] == str(STORAGE_TABLE)]) == 2
    setup(conn, {"storage": {"remove": True}})
    assert [r for r in rules(ns) if r[1] == str(STORAGE_TABLE)] == []
    assert table(ns, STORAGE_TABLE) == set()


def test_editing_the_address_moves_the_rules_to_the_new_subnet(
    superd: Superd, conn: Client
) -> None:
    setup(conn, {"storage": STORAGE})
    setup(conn, {"storage": {**STORAGE, "ipaddr": "203.0.113.7", "gateway": "203.0.113.1"}})
    t = str(STORAGE_TABLE)
    assert [r for r in rules(superd.host.name) if r[1] == t] == [
        ("from 203.0.113.0/24", t, 3200), ("to 203.0.113.0/24", t, 3200)
    ]
    assert conn.result("netinfo")["caps"]["networks"]["storage"]["gateway"] == "203.0.113.1"


def test_a_failed_edit_puts_the_old_table_and_rules_back(superd: Superd) -> None:
    conn = superd.connect()
    setup(conn, {"mgmt": MGMT, "storage": STORAGE})
    conn.close()
    superd.stop()
    superd.env[FAIL_AFTER_ENV] = "1"  # the edit's removal is done, its addition fails
    superd.start()
    before = kernel_state(superd)
    conn = superd.connect()
    try:
        edit = {"storage": {**STORAGE, "ipaddr": "203.0.113.7", "gateway": "203.0.113.1"}}
        code, message = error_of(conn.call("apply_plan", plan=make_plan(conn, edit, NO_CHECK)))
        assert code == 29 and "injected" in message
    finally:
        conn.close()
    assert kernel_state(superd) == before
    want_rules, want_table = storage_routing()
    assert [r for r in rules(superd.host.name) if r[1] == str(STORAGE_TABLE)] == want_rules
    assert table(superd.host.name, STORAGE_TABLE) == want_table


def test_restore_nets_after_reboot_rebuilds_the_source_routing(
    superd: Superd, make_ns: Callable[[], HostNs]
) -> None:
    conn = superd.connect()
    setup(conn, {"mgmt": MGMT, "storage": STORAGE})
    conn.result("set_safe_config")
    conn.close()
    assert superd.stop() == 0
    destroy_host_ns(superd.host)  # "reboot": a fresh namespace, /run wiped
    superd.host = make_ns()
    shutil.rmtree(superd.root / "run" / "netconf")
    superd.start()
    conn = superd.connect()
    try:
        assert conn.result("restore_nets")["code"] == 0
        want_rules, want_table = storage_routing()
        ns = superd.host.name
        assert [r for r in rules(ns) if r[1] == str(STORAGE_TABLE)] == want_rules
        assert table(ns, STORAGE_TABLE) == want_table
        assert conn.result("netinfo")["caps"]["networks"]["storage"]["gateway"] == "198.51.100.1"
    finally:
        conn.close()
