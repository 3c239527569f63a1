"""The monitor's states layer the routes of one identity when many devices
share it (every bridge's link-local route is fe80::/64 in the main table):
a batch adding one copies that one, not the host's (``superd.monitor._freeze``)."""

from __future__ import annotations

from types import MappingProxyType

from superd.monitor import BIG_MAP, _freeze
from superd.netstate import Batch, NetState
from superd.netstate_routes import Route

LINK_LOCAL = (6, 254, "fe80::", 64, 0, 0, 256)


def _route(oif: int) -> Route:
    body = {"family": 6, "table": 254, "dst": "fe80::", "dst_len": 64, "priority": 256,
            "type": 1, "oif": oif, "gateway": None, "nexthops": []}  # fmt: skip
    return Route((1, oif, None, ()), body, None)


def _state_with(oifs: range) -> NetState:
    empty: MappingProxyType = MappingProxyType({})
    batch = Batch(NetState(0, empty, empty, empty))
    for oif in oifs:
        batch._add(LINK_LOCAL, _route(oif))
    return _freeze(batch)


def test_a_route_added_beside_many_of_its_identity_copies_only_the_change() -> None:
    first = _state_with(range(2, BIG_MAP + 12))
    batch = Batch(first)
    batch._add(LINK_LOCAL, _route(500))
    second = _freeze(batch)
    assert second.routes[LINK_LOCAL].copy().shares_base(first.routes[LINK_LOCAL].copy())
    assert set(second.routes[LINK_LOCAL]) == {*first.routes[LINK_LOCAL], (1, 500, None, ())}
    assert second.by_oif[500] == {LINK_LOCAL: frozenset({(1, 500, None, ())})}
    batch = Batch(second)
    batch._remove(LINK_LOCAL, (1, 500, None, ()))
    third = _freeze(batch)
    assert list(third.routes[LINK_LOCAL].items()) == list(first.routes[LINK_LOCAL].items())


def test_the_routes_of_an_identity_few_devices_share_stay_a_dict() -> None:
    state = _state_with(range(2, 6))
    assert type(state.routes[LINK_LOCAL]) is dict
