"""The live netinfo's state — links, addresses, routes (of every table but
the local one) and IPv4 policy rules — and
how a batch of netlink notifications changes it (pure, but for the dumps).

A :class:`Batch` is a writable copy of a :class:`NetState`; frozen, it is the
next state, sharing with the previous one every value that did not change.
An event that does not apply cleanly marks what to read again rather than
guess.

What the kernel changes without an event (checked on 6.18):

* a link down or deleted flushes its IPv4 routes: emulated. AF_BRIDGE
  NEWLINK/DELLINK (bridge port notifications, a DELLINK when a port leaves)
  are ignored;
* removing an IPv4 address flushes the routes using it as ``src`` (6.18
  notifies it; older kernels did not: the routes are dumped again when one
  survives the batch) and, the device's last one gone, the IPv4 routes
  through the device (not notified: emulated, :meth:`Batch.settle`); an event
  that does not apply cleanly (an unknown deletion, IPv6 gateway routes
  merging into one multipath route, a replace among appended routes): that
  family's routes are dumped again;
* addrconf drops or restores a link's IPv6 after the MTU event crossing 1280:
  that link is read again;
* IPv6 sysctls (``autoconf``, ``accept_ra``, ``disable_ipv6``): no event at
  all. :meth:`LiveNetinfo.resync` (superd verifies each change with it) and
  the periodic resync catch them; so does the link's next event;
* tentative link-local addresses are announced after DAD only (not in the
  report).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from netlink import constants, query
from netlink.constants import NLMSG_ERROR
from netlink.decode import Message
from shared.netinfo_report import IFA_F_SECONDARY
from superd.netstate_routes import Hops, Ident, Route, RouteBatch, route_entry, writable

NEWLINK, DELLINK, NEWADDR, DELADDR, NEWROUTE, DELROUTE = 16, 17, 20, 21, 24, 25
NEWRULE, DELRULE = 32, 33
NLM_F_REPLACE, IFF_UP, IPV6_MIN_MTU = 0x100, 0x1, 1280
__all__ = ["Batch", "Ident", "NetState", "Route", "dump_routes", "dump_state"]


@dataclass(frozen=True)
class NetState:
    """One immutable picture of the kernel. Treat every value as read-only.

    ``routes``, ``by_oif``, ``by_src`` and ``defaults``: see
    :mod:`superd.netstate_routes`.
    """

    version: int
    links: Mapping[int, dict]  # ifindex → link
    addresses: Mapping[int, tuple[dict, ...]]  # ifindex → addresses, in the kernel's order
    routes: Mapping[Ident, Mapping[Hops, Route]]
    rules: tuple[dict, ...] = ()  # IPv4 policy rules (decode.decode_rule)
    by_oif: Mapping[int, Mapping[Ident, frozenset[Hops]]] = field(default_factory=dict)
    by_src: Mapping[str, Mapping[Ident, frozenset[Hops]]] = field(default_factory=dict)
    defaults: Mapping[Ident, None] = field(default_factory=dict)  # in the order of routes
    # the ifindexes whose link or addresses differ from the previous
    # version's (None: not known, a full dump)
    touched: frozenset[int] | None = None

    def route_list(self) -> list[dict]:
        return [r.route for rs in self.routes.values() for r in rs.values()]

    def default_routes(self) -> list[dict]:
        """The routes of destination length 0 (every table): all the report
        takes from the routes."""
        return [r.route for ident in self.defaults for r in self.routes[ident].values()]

    def inputs(self) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
        """(links, addresses, routes, rules) as :func:`build_capabilities` takes them."""
        return (list(self.links.values()), [a for x in self.addresses.values() for a in x],
                self.route_list(), list(self.rules))  # fmt: skip


def _v6_scope(address: str) -> int:
    """The kernel's ipv6_addr_src_scope: its address lists are sorted by it."""
    ip = ipaddress.IPv6Address(address)
    return 0x1 if ip.is_loopback else 0x2 if ip.is_link_local else 0x5 if ip.is_site_local else 0xE


def _insert_at(addrs: tuple[dict, ...], new: dict) -> int:
    """Where the kernel puts a new address in its device's list (IPv4 first)."""
    if new["family"] == 6:  # before the first one of the same or a narrower scope
        scope = _v6_scope(new["address"])
        later = (
            i for i, a in enumerate(addrs) if a["family"] == 6 and _v6_scope(a["address"]) <= scope
        )
        return next(later, len(addrs))
    at = 0  # a secondary last; a primary after the last primary of a scope as wide
    for i, a in enumerate(addrs):  # (__inet_insert_ifa)
        primary = not a["flags"] & IFA_F_SECONDARY and new["scope"] <= a["scope"]
        if a["family"] == 4 and (new["flags"] & IFA_F_SECONDARY or primary):
            at = i + 1
    return at


def _addr_key(a: Mapping) -> tuple:
    return (a["family"], a["address"], a["prefixlen"])


class Batch(RouteBatch):
    """A writable copy of a state: events applied, then frozen as the next
    one. Each mapping is copied before its first write only: a batch that
    changes no address copies no addresses (a copy is the size of the host)."""

    def __init__(self, state: NetState) -> None:
        self.base = state
        self.links: Mapping[int, dict] = state.links
        self.addresses: Mapping[int, tuple[dict, ...]] = state.addresses
        self._mine: set[str] = set()  # the mappings copied
        self._init_routes(state.routes, state.by_oif, state.by_src, state.defaults)
        self.rules = state.rules
        self.changed = False
        self.dirty: set[int] = set()  # route families to dump again
        self.refresh: set[int] = set()  # links to read again
        self.touched: set[int] = set()  # ifindexes whose link or addresses changed
        self.removed_sources: set[str] = set()  # IPv4 addresses deleted (see settle())
        # (ifindex, its IPv4 routes) when it lost its last IPv4 address (see settle())
        self.emptied: list[tuple[int, dict[Ident, dict[Hops, Route]]]] = []

    def freeze(self, version: int, touched_known: bool = True) -> NetState:
        def frozen(name: str, value: Mapping) -> Mapping:
            return MappingProxyType(value) if name in self._mine else value

        touched = frozenset(self.touched) if touched_known else None
        return NetState(version, frozen("links", self.links),
                        frozen("addresses", self.addresses), frozen("routes", self.routes),
                        self.rules, frozen("by_oif", self.by_oif),
                        frozen("by_src", self.by_src), frozen("defaults", self.defaults),
                        touched)  # fmt: skip

    def _links(self) -> dict[int, dict]:
        """``links``, writable."""
        if "links" not in self._mine:
            self.links, _ = writable(self.links), self._mine.add("links")
        return self.links  # type: ignore[return-value]

    def _addresses(self) -> dict[int, tuple[dict, ...]]:
        """``addresses``, writable."""
        if "addresses" not in self._mine:
            self.addresses, _ = writable(self.addresses), self._mine.add("addresses")
        return self.addresses  # type: ignore[return-value]

    def settle(self) -> None:
        """At the end of a batch, what deleting IPv4 addresses did without
        a notification, after those it sent (the subnet route's):

        * a device's last one gone, the kernel flushed the IPv4 routes all
          of whose nexthops are on it (fib_disable_ip): those it had then
          are dropped (a multipath one through it: the family dumped again);
        * routes using a deleted address as their source (fib_sync_down_addr;
          6.18 notifies their deletion, older kernels did not): the family
          is dumped again only if one of those is still known.
        """
        for _index, known in self.emptied:
            for ident, entries in known.items():
                if any(hops[3] for hops in entries):
                    self.dirty.add(4)
                    continue
                for hops, entry in entries.items():
                    if self.entry(ident, hops) is entry:  # not one added since
                        self._remove(ident, hops)
        if any(self.by_src.get(address) for address in self.removed_sources):
            self.dirty.add(4)
        self.emptied.clear()
        self.removed_sources.clear()

    def apply(self, msg: Message) -> None:
        kind = msg.type
        if kind == NLMSG_ERROR:
            raise ValueError(f"netlink error notification: {msg.body}")
        if kind in (NEWLINK, DELLINK) and msg.family == socket.AF_UNSPEC:
            if kind == DELLINK:
                self.del_link(msg.body["index"])
            else:
                self.set_link(msg.body)
        elif kind in (NEWADDR, DELADDR):
            (self.set_addr if kind == NEWADDR else self.del_addr)(msg.body)
        elif kind in (NEWROUTE, DELROUTE) and (entry := route_entry(msg.body)) is not None:
            if kind == DELROUTE:
                self.del_route(*entry)
            else:
                self.set_route(*entry, bool(msg.flags & NLM_F_REPLACE))
        elif kind in (NEWRULE, DELRULE) and msg.family == socket.AF_INET:
            (self.add_rule if kind == NEWRULE else self.del_rule)(msg.body)

    def add_rule(self, rule: dict) -> None:
        """Where the kernel puts it: after the rules of its priority or lower."""
        at = next((i for i, r in enumerate(self.rules) if r["priority"] > rule["priority"]),
                  len(self.rules))  # fmt: skip
        self.rules, self.changed = self.rules[:at] + (rule,) + self.rules[at:], True

    def del_rule(self, rule: dict) -> None:
        at = next((i for i, r in enumerate(self.rules) if r == rule), None)
        if at is not None:
            self.rules, self.changed = self.rules[:at] + self.rules[at + 1 :], True

    def set_link(self, link: dict) -> None:
        index, old = link["index"], self.links.get(link["index"])
        if old == link:
            return
        self._links()[index], self.changed = link, True
        self.touched.add(index)
        if old is not None and (old["mtu"] < IPV6_MIN_MTU) != (link["mtu"] < IPV6_MIN_MTU):
            self.refresh.add(index)
        if old is not None and old["flags"] & IFF_UP and not link["flags"] & IFF_UP:
            self.drop_down(index)

    def del_link(self, index: int) -> None:
        if index in self.links:
            self.changed |= self._links().pop(index, None) is not None
        if index in self.addresses:
            self.changed |= self._addresses().pop(index, None) is not None
        self.touched.add(index)
        self.drop_through(index)

    def set_addr(self, addr: dict) -> None:
        addrs, key = self.addresses.get(addr["index"], ()), _addr_key(addr)
        at = next((i for i, a in enumerate(addrs) if _addr_key(a) == key), None)
        if at is not None:
            if addrs[at] == addr:
                return
            promoted = (addrs[at]["flags"] ^ addr["flags"]) & IFA_F_SECONDARY
            addrs = addrs[:at] + (() if promoted else (addr,)) + addrs[at + 1 :]
            at = None if promoted else at  # a promoted secondary moves
        if at is None:
            at = _insert_at(addrs, addr)
            addrs = addrs[:at] + (addr,) + addrs[at:]
        self._addresses()[addr["index"]], self.changed = addrs, True
        self.touched.add(addr["index"])

    def del_addr(self, addr: dict) -> None:
        addrs, key = self.addresses.get(addr["index"], ()), _addr_key(addr)
        kept = tuple(a for a in addrs if _addr_key(a) != key)
        if len(kept) != len(addrs):
            self.changed = True
            self.touched.add(addr["index"])
            if kept:
                self._addresses()[addr["index"]] = kept
            else:
                del self._addresses()[addr["index"]]
        if addr["family"] == 4:  # see settle()
            self.removed_sources.add(addr["address"])
            if len(kept) != len(addrs) and not any(a["family"] == 4 for a in kept):
                known = {ident: {h: self.routes[ident][h] for h in hopses}
                         for ident, hopses in self.through(addr["index"], 4)}  # fmt: skip
                self.emptied.append((addr["index"], known))


def dump_routes(sock: socket.socket, family: int) -> list[tuple[Ident, Route]]:
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    dumped = query.dump(sock, constants.RTM_GETROUTE, af)  # every table (the local one skipped)
    found = (route_entry(m.body) for m in dumped)
    return [e for e in found if e is not None]


def dump_state(sock: socket.socket, version: int, previous: NetState | None = None) -> NetState:
    """Five dumps (as superd.netinfo.read_kernel) as a state. What equals
    ``previous`` is taken from it, the same objects: readers that key on
    identity (the report builder) see what really changed. A device that
    is new (a big change's thousand bridges) is not compared with anything."""
    old_links = previous.links if previous is not None else {}
    old_addrs = previous.addresses if previous is not None else {}
    links: dict[int, dict] = {}
    touched: set[int] = set()
    for msg in query.dump(sock, constants.RTM_GETLINK):
        if msg.family == socket.AF_UNSPEC:
            link, index = msg.body, msg.body["index"]
            kept = old_links.get(index)
            if kept is not None and kept == link:
                links[index] = kept
            else:
                links[index], _ = link, touched.add(index)
    found: dict[int, list[dict]] = {}
    for msg in query.dump(sock, constants.RTM_GETADDR):
        addr = msg.body
        if (same := found.get(addr["index"])) is not None:
            same.append(addr)
        else:
            found[addr["index"]] = [addr]
    addresses: dict[int, tuple[dict, ...]] = {}
    for index, listed in found.items():
        addrs, kept_addrs = tuple(listed), old_addrs.get(index)
        if kept_addrs is not None and kept_addrs == addrs:
            addresses[index] = kept_addrs
        else:
            addresses[index], _ = addrs, touched.add(index)
    touched |= (old_links.keys() - links.keys()) | (old_addrs.keys() - addresses.keys())
    batch = Batch(NetState(0, {}, {}, {}))
    batch.links, batch.addresses, batch.touched = links, addresses, touched
    batch._mine.update(("links", "addresses"))
    # both families at once: the routes indexed once (by device, by source)
    batch.replace_routes((4, 6), dump_routes(sock, 4) + dump_routes(sock, 6))
    rules = tuple(m.body for m in query.dump(sock, constants.RTM_GETRULE, socket.AF_INET))
    batch.rules = previous.rules if previous is not None and previous.rules == rules else rules
    return batch.freeze(version, touched_known=previous is not None)
