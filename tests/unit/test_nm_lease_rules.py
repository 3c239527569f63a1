"""The rules a DHCP lease gets under NetworkManager (pure logic of
configurators.nm_lease_rules; the kernel side is tests/functional/test_dhcp_routes.py)."""

from __future__ import annotations

from types import SimpleNamespace

from configurators.nm_lease_rules import IFA_F_PERMANENT, MainDefault, changes, lease_rules
from shared.source_routing import source_table

MAIN = MainDefault("192.0.2.1", "eth0", (("192.0.2.10", 24),))


def test_a_lease_gets_the_rules_from_and_to_its_subnet() -> None:
    assert lease_rules("eth1", [("10.66.0.105", 24)], MAIN) == {
        ("from", "10.66.0.0", 24), ("to", "10.66.0.0", 24)
    }  # fmt: skip


def test_a_lease_wider_than_a_slash_8_gets_no_rules() -> None:
    assert lease_rules("eth1", [("10.66.0.105", 1)], MAIN) == set()


def test_a_lease_overlapping_the_default_route_networks_subnet_gets_no_rules() -> None:
    main = MainDefault("10.66.200.1", "eth0", (("10.66.200.10", 24),))
    assert lease_rules("eth1", [("10.66.0.105", 16)], main) == set()


def test_the_default_route_device_itself_is_not_checked_against_itself() -> None:
    main = MainDefault("10.66.0.1", "eth1", (("10.66.0.105", 24),))
    assert len(lease_rules("eth1", [("10.66.0.105", 24)], main)) == 2


def state(addr_flags: int, rules: tuple = (), table_default: bool = True) -> SimpleNamespace:
    table = source_table("eth1")
    main = (4, 254, None, 0, 0, 0, 0)
    defaults = {main: None}
    routes = {main: {0: SimpleNamespace(route={"oif": 1, "gateway": "192.0.2.1"})}}
    by_oif: dict = {1: {main: frozenset()}}
    if table_default:
        ident = (4, table, None, 0, 0, 0, 0)
        defaults[ident] = None
        routes[ident] = {0: SimpleNamespace(route={"oif": 2, "gateway": "10.66.0.1"})}
        by_oif[2] = {ident: frozenset()}
    return SimpleNamespace(
        by_oif=by_oif,
        links={1: {"name": "eth0"}, 2: {"name": "eth1"}},
        addresses={
            1: ({"family": 4, "scope": 0, "address": "192.0.2.10", "prefixlen": 24,
                 "flags": IFA_F_PERMANENT},),
            2: ({"family": 4, "scope": 0, "address": "10.66.0.105", "prefixlen": 24,
                 "flags": addr_flags},),
        },  # fmt: skip
        defaults=defaults,
        routes=routes,
        rules=rules,
    )


def test_a_lease_routed_in_its_table_without_rules_gets_them() -> None:
    table = source_table("eth1")
    assert changes(state(0), set()) == {
        table: ([("from", "10.66.0.0", 24), ("to", "10.66.0.0", 24)], [])
    }


def test_a_static_address_in_a_table_is_networkmanagers_business() -> None:
    assert changes(state(IFA_F_PERMANENT), set()) == {}


def test_the_rules_given_go_when_the_lease_does() -> None:
    table = source_table("eth1")
    rule = {"src": "10.66.0.0", "src_len": 24, "dst": None, "dst_len": 0, "table": table,
            "priority": 3200}  # fmt: skip
    gone = state(0, rules=(rule,), table_default=False)
    assert changes(gone, {table}) == {table: ([], [("from", "10.66.0.0", 24)])}
    assert changes(gone, set()) == {}  # never seen routing a lease: left alone


def test_a_table_seen_routing_a_lease_is_remembered_with_its_rules_in_place() -> None:
    table = source_table("eth1")
    both = tuple(
        {"src": s, "src_len": 24, "dst": d, "dst_len": 24, "table": table, "priority": 3200}
        for s, d in (("10.66.0.0", None), (None, "10.66.0.0"))
    )
    mine: set[int] = set()
    assert changes(state(0, rules=both), mine) == {} and mine == {table}
