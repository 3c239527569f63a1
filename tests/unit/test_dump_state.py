"""The state a full dump gives (the monitor's resync, which a big change is
verified on): what equals the previous state is the previous state's
objects, what differs is named in ``touched``, and the routes are indexed
as the same routes arriving one event at a time index them.

The dumps are plain decoded messages served in place of the kernel's.
"""

from __future__ import annotations

import socket

import pytest

import superd.netstate as netstate
import superd.netstate_routes as netstate_routes
from netlink.decode import Message, RouteMsg
from superd.netstate import NEWROUTE, Batch, NetState, dump_state
from tests.unit.test_netinfo_report import LO, addr, link

GETLINK, GETADDR, GETROUTE, GETRULE = 18, 22, 26, 34
RULES = [{"family": 4, "priority": 0, "table": 255}, {"family": 4, "priority": 32766,
                                                     "table": 254}]  # fmt: skip


def route(oif, dst=None, dst_len=0, family=4, gateway=None, prefsrc=None, priority=0,
          nexthops=()):  # fmt: skip
    body = {"family": family, "table": 254, "type": 1, "dst": dst, "dst_len": dst_len,
            "gateway": gateway, "oif": oif, "priority": priority,
            "nexthops": [{"oif": o, "gateway": g} for o, g in nexthops]}  # fmt: skip
    return RouteMsg(body, 0, 0, 0, prefsrc)


def host(bridges: int, changed: int | None = None) -> dict[str, list]:
    """Fresh dicts each time, as each dump decodes new ones; bridge
    ``changed`` with another MTU and address."""
    links, addrs, v4, v6 = [dict(LO)], [addr(1, "127.0.0.1", 8, scope=254)], [], []
    for i in range(bridges):
        index = i + 2
        links.append(link(f"bn{i}", index, kind="bridge", mtu=9000 if i == changed else 1500,
                          info={"br_stp_state": 0}))  # fmt: skip
        addrs.append(addr(index, f"10.0.{i}.{2 if i == changed else 1}", 24))
        addrs.append(addr(index, f"fe80::{i + 1:x}", 64, scope=253))
        v4.append(route(index, f"10.0.{i}.0", 24, prefsrc=f"10.0.{i}.1"))
        v6.append(route(index, "fe80::", 64, family=6, priority=256))
    v4.append(route(2, gateway="10.0.0.254"))  # a default route
    v4.append(route(None, "192.0.2.0", 24, nexthops=((2, "10.0.0.253"), (3, "10.0.1.253"))))
    return {"links": links, "addrs": addrs, "v4": v4, "v6": v6}


@pytest.fixture
def serve(monkeypatch):
    """serve(host): the next dumps are that host's."""
    served: dict[str, list] = {}

    def dump(sock, kind, family=socket.AF_UNSPEC, **_):
        if kind == GETROUTE:
            bodies = served["v4" if family == socket.AF_INET else "v6"]
        else:
            bodies = {GETLINK: served["links"], GETADDR: served["addrs"], GETRULE: RULES}[kind]
        return iter([Message(kind - 2, 0, 1, 0, body) for body in bodies])

    monkeypatch.setattr(netstate.query, "dump", dump)
    return lambda h: served.update(h)


def test_what_did_not_change_is_the_previous_states_own_objects(serve) -> None:
    serve(host(20))
    before = dump_state(None, 1)
    dumped = host(21, changed=5)  # bn5 changed, bn20 new, nothing gone
    dumped["links"] = [x for x in dumped["links"] if x["name"] != "bn7"]  # bn7 gone
    dumped["addrs"] = [a for a in dumped["addrs"] if a["index"] != 9]
    serve(dumped)
    after = dump_state(None, 2, before)
    assert after.touched == {7, 9, 22}
    for index in after.links:
        same = index not in after.touched
        assert (after.links[index] is before.links.get(index)) == same
        assert (after.addresses[index] is before.addresses.get(index)) == same
    assert after.links[7]["mtu"] == 9000 and after.addresses[7][0]["address"] == "10.0.5.2"
    assert 9 not in after.links and 9 not in after.addresses
    assert after.rules is before.rules


def test_a_first_dump_knows_nothing_it_changed(serve) -> None:
    serve(host(3))
    assert dump_state(None, 1).touched is None


def test_addresses_keep_the_kernels_order_per_device(serve) -> None:
    dumped = host(3)
    dumped["addrs"] = list(reversed(dumped["addrs"]))  # fe80 before the IPv4 one
    serve(dumped)
    state = dump_state(None, 1)
    assert [a["address"] for a in state.addresses[3]] == ["fe80::2", "10.0.1.1"]
    assert list(state.addresses) == [4, 3, 2, 1]


def test_routes_are_indexed_as_events_index_them(serve) -> None:
    dumped = host(30)
    serve(dumped)
    state = dump_state(None, 1)
    batch = Batch(NetState(0, {}, {}, {}))  # the same routes, one notification each
    for body in dumped["v4"] + dumped["v6"]:
        batch.apply(Message(NEWROUTE, 0, 0, body.route["family"], body))
    events = batch.freeze(1)
    assert state.routes == events.routes and list(state.routes) == list(events.routes)
    assert state.by_oif == events.by_oif and state.by_src == events.by_src
    assert list(state.defaults) == list(events.defaults)
    assert state.default_routes() == events.default_routes() != []


def test_a_full_dump_indexes_its_routes_once(serve, monkeypatch) -> None:
    """Not once per family: the second pass walked the first family's again."""
    calls = []
    index_routes = netstate_routes.index_routes
    monkeypatch.setattr(netstate_routes, "index_routes",
                        lambda routes: calls.append(1) or index_routes(routes))  # fmt: skip
    serve(host(5))
    dump_state(None, 1)
    assert len(calls) == 1
