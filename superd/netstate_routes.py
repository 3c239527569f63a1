"""The live netinfo's routes (:mod:`superd.netstate`): stored and indexed so
that a change costs the routes it touches, not the host's.

Routes of one identity (:data:`Ident`: family, table, destination, tos,
source length, priority) are a mapping of their nexthops (:data:`Hops`) to
the route, in the kernel's order (a route appended goes last, a route
re-announced keeps its place): every bridge's ``fe80::/64`` shares one
identity, and adding or removing one of them must not copy thousands.
``by_oif`` and ``by_src`` name, per device and per preferred source
address, the identities and nexthops of the routes through it or using it;
``defaults`` the identities of destination length 0 (what the report
reads), in the order of ``routes``.

A state's mappings are shared with the next state where they did not
change: :class:`RouteBatch` copies one before its first write (copy on
write), never changes a state's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from netlink import constants
from netlink.decode import RouteMsg

RTM_F_CLONED = 0x200
Ident = tuple  # (family, table, dst, dst_len, tos, src_len, priority): a route's identity
Hops = tuple  # (type, oif, gateway, ((oif, gateway), …)): tells apart routes of one Ident
Index = dict  # key → {Ident: frozenset[Hops]}


class Route(NamedTuple):
    hops: Hops
    route: dict
    prefsrc: str | None


def route_entry(msg: RouteMsg) -> tuple[Ident, Route] | None:
    """A route message as (identity, entry); None for what the dump leaves out."""
    r = msg.route
    if msg.rtm_flags & RTM_F_CLONED or r["table"] == constants.RT_TABLE_LOCAL:
        return None
    ident = (r["family"], r["table"], r["dst"], r["dst_len"], msg.tos, msg.src_len,
             r["priority"])  # fmt: skip
    hops = (
        r["type"],
        r["oif"],
        r["gateway"],
        tuple((h["oif"], h["gateway"]) for h in r["nexthops"]),
    )
    return ident, Route(hops, r, msg.prefsrc)


def writable(mapping: Mapping) -> dict:
    """A writable copy of a state's mapping. A frozen state's are read-only
    proxies of dicts: ``dict(proxy)`` walks it key by key (80 µs for 2,000
    entries), the proxy's ``copy()`` copies the dict underneath (10 µs)."""
    return mapping.copy() if type(mapping) in (dict, MappingProxyType) else dict(mapping)  # type: ignore[attr-defined]


def oifs(entry: Route) -> set[int]:
    if not entry.hops[3]:  # one nexthop: the usual case
        return set() if entry.hops[1] is None else {entry.hops[1]}
    return {o for o in (entry.route["oif"], *(h[0] for h in entry.hops[3])) if o is not None}


def via(entry: Route) -> bool:
    """Through a gateway (or several)."""
    return bool(entry.hops[2] or entry.hops[3])


class RouteBatch:
    """The route half of :class:`superd.netstate.Batch` (which provides
    ``links``, ``changed`` and ``dirty``, the route families to dump again)."""

    links: Mapping[int, dict]
    changed: bool
    dirty: set[int]
    _mine: set[str]  # the mappings this batch copied (the Batch's)

    def _init_routes(
        self,
        routes: Mapping[Ident, Mapping[Hops, Route]],
        by_oif: Mapping[int, Mapping],
        by_src: Mapping[str, Mapping],
        defaults: Mapping[Ident, None],
    ) -> None:
        # the state's own until the first write (see _own_routes)
        self.routes: dict[Ident, Mapping[Hops, Route]] = routes  # type: ignore[assignment]
        self.by_oif: Index = by_oif  # type: ignore[assignment]
        self.by_src: Index = by_src  # type: ignore[assignment]
        self.defaults: dict[Ident, None] = defaults  # type: ignore[assignment]
        self._idents: set[Ident] = set()  # identities whose mapping this batch copied

    def _own_routes(self) -> None:
        """The route mappings copied before the batch's first route change."""
        if "routes" not in self._mine:
            self._mine.update(("routes", "by_oif", "by_src", "defaults"))
            self.routes, self.by_oif = writable(self.routes), writable(self.by_oif)
            self.by_src, self.defaults = writable(self.by_src), writable(self.defaults)

    def through(self, index: int, family: int | None = None) -> list[tuple[Ident, frozenset]]:
        """(identity, nexthops) of the routes through device ``index``."""
        found = self.by_oif.get(index, {}).items()
        return [(i, hops) for i, hops in found if family is None or i[0] == family]

    def entry(self, ident: Ident, hops: Hops) -> Route | None:
        return self.routes.get(ident, {}).get(hops)

    def set_route(self, ident: Ident, entry: Route, replace: bool) -> None:
        entries = self.routes.get(ident, {})
        if replace:
            if len(entries) > 1:
                self.dirty.add(ident[0])  # which of the appended ones was replaced?
            if entries.get(entry.hops) != entry:
                self._add(ident, entry)
            for hops in [h for h in entries if h != entry.hops]:
                self._remove(ident, hops)
        elif entry.hops not in entries:
            if ident[0] == 6 and via(entry) and any(via(e) for e in entries.values()):
                self.dirty.add(6)  # IPv6 gateway routes merge into one multipath route
            self._add(ident, entry)
        elif entries[entry.hops] != entry:  # the same route again: it keeps its place
            self._add(ident, entry)

    def del_route(self, ident: Ident, entry: Route) -> None:
        if entry.hops not in self.routes.get(ident, {}):
            if any(oif in self.links for oif in oifs(entry)):  # else: its link is gone
                self.dirty.add(ident[0])
            return
        self._remove(ident, entry.hops)

    def drop_through(self, index: int) -> None:
        """A link deleted: its routes go (a multipath one through it: the
        kernel says what is left of it, dumped again)."""
        through = self.through(index)
        for ident, hopses in through:
            if any(h[3] for h in hopses):
                self.dirty.add(ident[0])
        for ident, hopses in through:
            for hops in hopses:
                if not hops[3] and hops[1] == index:
                    self._remove(ident, hops)

    def drop_down(self, index: int) -> None:
        """A link down (fib_sync_down_dev + fib_flush): the IPv4 routes all
        of whose nexthops are on it."""
        for ident, hopses in self.through(index, 4):
            for hops in hopses:
                entry = self.entry(ident, hops)
                if entry is not None and oifs(entry) == {index}:
                    self._remove(ident, hops)

    def replace_routes(
        self, family: int | tuple[int, ...], found: Iterable[tuple[Ident, Route]]
    ) -> None:
        """The routes of ``family`` (or of each of several) are ``found``."""
        families = (family,) if isinstance(family, int) else family
        routes: dict[Ident, Mapping[Hops, Route]] = {
            i: es for i, es in self.routes.items() if i[0] not in families
        }
        fresh: dict[Ident, dict[Hops, Route]] = {}
        for ident, entry in found:
            if ident not in routes:
                routes[ident] = fresh[ident] = {}
            fresh[ident][entry.hops] = entry
        if routes != self.routes:
            self.routes, self.changed = routes, True
            self._idents = {i for i in self._idents if i[0] not in families} | set(fresh)
            self.by_oif, self.by_src, self.defaults = index_routes(routes)
            self._mine.update(("routes", "by_oif", "by_src", "defaults"))

    def _entries(self, ident: Ident) -> dict[Hops, Route]:
        """The routes of ``ident``, writable (copied once per batch)."""
        self._own_routes()
        if ident not in self._idents:
            self.routes[ident] = writable(self.routes.get(ident, {}))
            self._idents.add(ident)
        return self.routes[ident]  # type: ignore[return-value]

    def _add(self, ident: Ident, entry: Route) -> None:
        entries = self._entries(ident)
        old = entries.get(entry.hops)
        entries[entry.hops] = entry
        self.changed = True
        if old is not None:
            self._unindex(ident, old)
        for oif in oifs(entry):
            _index_add(self.by_oif, oif, ident, entry.hops)
        if entry.prefsrc is not None:
            _index_add(self.by_src, entry.prefsrc, ident, entry.hops)
        if ident[3] == 0:
            self.defaults.setdefault(ident)

    def _remove(self, ident: Ident, hops: Hops) -> None:
        entries = self._entries(ident)
        old = entries.pop(hops, None)
        if old is None:
            return
        self.changed = True
        self._unindex(ident, old)
        if not entries:
            del self.routes[ident]
            self._idents.discard(ident)
            self.defaults.pop(ident, None)

    def _unindex(self, ident: Ident, entry: Route) -> None:
        for oif in oifs(entry):
            _index_remove(self.by_oif, oif, ident, entry.hops)
        if entry.prefsrc is not None:
            _index_remove(self.by_src, entry.prefsrc, ident, entry.hops)


def _index_add(index: Index, key: object, ident: Ident, hops: Hops) -> None:
    inner = dict(index.get(key, {}))  # a state's mapping is never changed
    inner[ident] = inner.get(ident, frozenset()) | {hops}
    index[key] = inner


def _index_remove(index: Index, key: object, ident: Ident, hops: Hops) -> None:
    inner = dict(index.get(key, {}))
    left = inner.get(ident, frozenset()) - {hops}
    if left:
        inner[ident] = left
    else:
        inner.pop(ident, None)
    if inner:
        index[key] = inner
    else:
        index.pop(key, None)


def index_routes(routes: Mapping[Ident, Mapping[Hops, Route]]) -> tuple[Index, Index, dict]:
    """(by_oif, by_src, defaults) of ``routes``, from scratch."""
    by_oif: dict = {}
    by_src: dict = {}
    for ident, entries in routes.items():
        for hops, entry in entries.items():
            for oif in oifs(entry):
                by_oif.setdefault(oif, {}).setdefault(ident, set()).add(hops)
            if entry.prefsrc is not None:
                by_src.setdefault(entry.prefsrc, {}).setdefault(ident, set()).add(hops)
    frozen = [
        {key: {i: frozenset(h) for i, h in inner.items()} for key, inner in index.items()}
        for index in (by_oif, by_src)
    ]
    defaults = {ident: None for ident in routes if ident[3] == 0}
    return frozen[0], frozen[1], defaults
