"""Live netinfo: a netlink monitor keeping the kernel's network state in memory.

A background thread owns two netlink sockets of its own: an *event* socket
bound to the link, IPv4/IPv6 address and route groups (never used for
requests) and a *request* socket (pyroute2 ``IPRoute``) for dumps. It starts
with one full dump (the plain dicts of :mod:`superd.netinfo`), then applies
RTM_NEW/DEL LINK/ADDR/ROUTE events. What it reads without blocking is one
batch, applied to a copy of the state and published by swapping a reference:
a reader never sees half of it. Main-table routes only, as the dump.

What the kernel changes without an event (checked on 6.18):

* a link down or deleted flushes its IPv4 routes: emulated. AF_BRIDGE
  NEWLINK/DELLINK (bridge port notifications, a DELLINK when a port leaves)
  are ignored;
* removing an IPv4 address flushes the routes using it as ``src``; an event
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

ENOBUFS (an overrun), a truncated datagram, anything not understood → what is
queued is discarded and a full dump replaces the state.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import select
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from pyroute2 import IPRoute
from pyroute2 import netns as p2netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netinfo_report import IFA_F_SECONDARY, RT_TABLE_MAIN, build_capabilities
from superd.netinfo import addr_to_dict, link_to_dict, read_nameservers, route_to_dict

log = logging.getLogger("netreload.superd.monitor")

SO_RCVBUFFORCE = 33  # not in Python's socket module
GROUPS = 0x1 | 0x10 | 0x40 | 0x100 | 0x400  # RTMGRP_LINK, IPV4_IFADDR/ROUTE, IPV6_IFADDR/ROUTE
NEWLINK, DELLINK, NEWADDR, DELADDR, NEWROUTE, DELROUTE = 16, 17, 20, 21, 24, 25
NLM_F_REPLACE, RTM_F_CLONED, IFF_UP, IPV6_MIN_MTU = 0x100, 0x200, 0x1, 1280
MAX_DATAGRAM, BATCH_DATAGRAMS = 1 << 20, 256
Ident = tuple  # (family, table, dst, dst_len, tos, src_len, priority): a route's identity


class Route(NamedTuple):
    hops: tuple  # (type, oif, gateway, nexthops): tells apart routes appended to one Ident
    route: dict
    prefsrc: str | None


@dataclass(frozen=True)
class NetState:
    """One immutable picture of the kernel. Treat every value as read-only."""

    version: int
    links: Mapping[int, dict]  # ifindex → link
    addresses: Mapping[int, tuple[dict, ...]]  # ifindex → addresses, in the kernel's order
    routes: Mapping[Ident, tuple[Route, ...]]

    def inputs(self) -> tuple[list[dict], list[dict], list[dict]]:
        """(links, addresses, routes) as :func:`build_capabilities` takes them."""
        return (list(self.links.values()), [a for x in self.addresses.values() for a in x],
                [r.route for rs in self.routes.values() for r in rs])  # fmt: skip


def route_entry(msg: Any) -> tuple[Ident, Route] | None:
    """A route message as (identity, entry); None for what the dump leaves out."""
    r = route_to_dict(msg)
    if msg.get("flags", 0) & RTM_F_CLONED or r["table"] != RT_TABLE_MAIN:
        return None
    ident = (r["family"], r["table"], r["dst"], r["dst_len"], msg.get("tos", 0),
             msg.get("src_len", 0), r["priority"])  # fmt: skip
    hops = (
        r["type"],
        r["oif"],
        r["gateway"],
        tuple((h["oif"], h["gateway"]) for h in r["nexthops"]),
    )
    return ident, Route(hops, r, msg.get_attr("RTA_PREFSRC"))


def _oifs(entry: Route) -> set[int]:
    return {o for o in (entry.route["oif"], *(h[0] for h in entry.hops[3])) if o is not None}


def _via(entry: Route) -> bool:
    """Through a gateway (or several)."""
    return bool(entry.hops[2] or entry.hops[3])


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


class Batch:
    """A writable copy of a state: events applied, then frozen as the next one."""

    def __init__(self, state: NetState) -> None:
        self.base = state
        self.links, self.addresses = dict(state.links), dict(state.addresses)
        self.routes = dict(state.routes)
        self.changed = False
        self.dirty: set[int] = set()  # route families to dump again
        self.refresh: set[int] = set()  # links to read again

    def freeze(self, version: int) -> NetState:
        frozen = map(MappingProxyType, (self.links, self.addresses, self.routes))
        return NetState(version, *frozen)

    def apply(self, msg: Any) -> None:
        kind, error = msg["header"]["type"], msg["header"].get("error")
        if error is not None:
            raise ValueError(f"netlink message not understood: {error}")
        if kind in (NEWLINK, DELLINK) and msg["family"] == socket.AF_UNSPEC:
            if kind == DELLINK:
                self.del_link(msg["index"])
            else:
                self.set_link(link_to_dict(msg))
        elif kind in (NEWADDR, DELADDR):
            (self.set_addr if kind == NEWADDR else self.del_addr)(addr_to_dict(msg))
        elif kind in (NEWROUTE, DELROUTE) and (entry := route_entry(msg)) is not None:
            if kind == DELROUTE:
                self.del_route(*entry)
            else:
                self.set_route(*entry, bool(msg["header"]["flags"] & NLM_F_REPLACE))

    def set_link(self, link: dict) -> None:
        index, old = link["index"], self.links.get(link["index"])
        if old == link:
            return
        self.links[index], self.changed = link, True
        if old is not None and (old["mtu"] < IPV6_MIN_MTU) != (link["mtu"] < IPV6_MIN_MTU):
            self.refresh.add(index)
        if old is not None and old["flags"] & IFF_UP and not link["flags"] & IFF_UP:
            # fib_sync_down_dev + fib_flush: IPv4 routes all of whose nexthops are there
            self._drop_routes(lambda e: e.route["family"] == 4 and _oifs(e) == {index})

    def del_link(self, index: int) -> None:
        self.changed |= self.links.pop(index, None) is not None
        self.changed |= self.addresses.pop(index, None) is not None
        for ident, entries in self.routes.items():
            if any(e.hops[3] and index in _oifs(e) for e in entries):
                self.dirty.add(ident[0])  # multipath: let the kernel say what is left
        self._drop_routes(lambda e: e.route["oif"] == index and not e.hops[3])

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
        self.addresses[addr["index"]], self.changed = addrs, True

    def del_addr(self, addr: dict) -> None:
        addrs, key = self.addresses.get(addr["index"], ()), _addr_key(addr)
        kept = tuple(a for a in addrs if _addr_key(a) != key)
        if len(kept) != len(addrs):
            self.changed = True
            if kept:
                self.addresses[addr["index"]] = kept
            else:
                del self.addresses[addr["index"]]
        srcs = (e.prefsrc for es in self.routes.values() for e in es)
        if addr["family"] == 4 and addr["address"] in srcs:
            self.dirty.add(4)  # fib_sync_down_addr

    def set_route(self, ident: Ident, entry: Route, replace: bool) -> None:
        entries = self.routes.get(ident, ())
        others = tuple(e for e in entries if e.hops != entry.hops)
        if replace:
            if len(entries) > 1:
                self.dirty.add(ident[0])  # which of the appended ones was replaced?
            new: tuple[Route, ...] = (entry,)
        elif len(others) == len(entries):
            if ident[0] == 6 and _via(entry) and any(_via(e) for e in others):
                self.dirty.add(6)  # IPv6 gateway routes merge into one multipath route
            new = entries + (entry,)
        else:  # the same route again: it keeps its place
            new = tuple(entry if e.hops == entry.hops else e for e in entries)
        if new != entries:
            self.routes[ident], self.changed = new, True

    def del_route(self, ident: Ident, entry: Route) -> None:
        entries = self.routes.get(ident, ())
        if not any(e.hops == entry.hops for e in entries):
            if any(oif in self.links for oif in _oifs(entry)):  # else: its link is gone
                self.dirty.add(ident[0])
            return
        self._drop_routes(lambda e: e.hops == entry.hops, [ident])

    def _drop_routes(self, doomed: Callable[[Route], bool], idents: Iterable = ()) -> None:
        for ident in list(idents or self.routes):
            entries = self.routes[ident]
            kept = tuple(e for e in entries if not doomed(e))
            if len(kept) != len(entries):
                self.changed = True
                if kept:
                    self.routes[ident] = kept
                else:
                    del self.routes[ident]

    def replace_routes(self, family: int, found: Iterable[tuple[Ident, Route]]) -> None:
        routes = {i: es for i, es in self.routes.items() if i[0] != family}
        for ident, entry in found:
            routes[ident] = routes.get(ident, ()) + (entry,)
        if routes != self.routes:
            self.routes, self.changed = routes, True


def dump_routes(ipr: Any, family: int) -> list[tuple[Ident, Route]]:
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    found = (route_entry(m) for m in ipr.get_routes(family=af, table=RT_TABLE_MAIN))
    return [e for e in found if e is not None]


def dump_state(ipr: Any, version: int) -> NetState:
    """Four dumps (as superd.netinfo.read_kernel) as a state."""
    batch = Batch(NetState(0, {}, {}, {}))
    batch.links = {link["index"]: link for link in map(link_to_dict, ipr.get_links())}
    for addr in map(addr_to_dict, ipr.get_addr()):
        batch.addresses[addr["index"]] = batch.addresses.get(addr["index"], ()) + (addr,)
    for family in (4, 6):
        batch.replace_routes(family, dump_routes(ipr, family))
    return batch.freeze(version)


class LiveNetinfo:
    """The monitor: :meth:`start`, then :meth:`snapshot` / :meth:`capabilities`.

    ``netns``: watch that named namespace instead of the current one (pyroute2
    creates both sockets there; the process stays where it is).
    ``ipr_factory``: the request socket (tests wrap it).
    """

    def __init__(self, config: Config, netns: str | None = None, rcvbuf: int = 32 << 20,
                 resync_interval: float | None = 600.0,
                 ipr_factory: Callable[[], Any] | None = None) -> None:  # fmt: skip
        self.config, self.netns, self.rcvbuf = config, netns, rcvbuf
        self.resync_interval = resync_interval
        self._ipr_factory = ipr_factory
        self._cond = threading.Condition()  # guards _state and _changed_at
        empty: Mapping = MappingProxyType({})
        self._state, self._changed_at = NetState(0, empty, empty, empty), time.monotonic()
        self._lock = threading.Lock()  # guards _requests and _caps
        self._requests: list[tuple[str, Future]] = []
        self._caps: OrderedDict[tuple, dict] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # Called in the monitor thread with each state published: keep short.
        self.listeners: list[Callable[[NetState], None]] = []
        self.stats = dict.fromkeys(("events", "batches", "resyncs", "route_dumps", "overruns"), 0)

    def start(self, timeout: float = 300.0) -> None:
        self._thread = threading.Thread(target=self._run, name="superd-monitor", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout) or self._error is not None:
            self.close()
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, f"netlink monitor: {self._error}")

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        if self.alive:
            self._post("stop")
            self._thread.join(60)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    # -- readers (any thread) -----------------------------------------------
    def snapshot(self) -> NetState:
        return self._state

    @property
    def version(self) -> int:
        return self._state.version

    def capabilities(self, running: Mapping[str, Any], state: NetState | None = None) -> dict:
        """The report of ``state`` (default: the current one), built once per
        (version, running, nameservers). Shared between callers: read-only."""
        state = self._state if state is None else state
        nameservers = read_nameservers(self.config)
        key = (state.version, json.dumps(running, sort_keys=True, default=str), *nameservers)
        with self._lock:
            if (caps := self._caps.get(key)) is not None:
                self._caps.move_to_end(key)
                return caps
        caps = build_capabilities(*state.inputs(), running, nameservers, self.config.is_fake_nic)
        with self._lock:
            self._caps[key] = caps
            while len(self._caps) > 8:
                self._caps.popitem(last=False)
        return caps

    def fresh_capabilities(self, running: Mapping[str, Any], timeout: float = 600.0) -> dict:
        """From a full dump done now, which also becomes the cache."""
        return self.capabilities(running, self.resync(timeout))

    def resync(self, timeout: float = 600.0) -> NetState:
        return self._post("resync").result(timeout)

    def sync(self, timeout: float = 60.0) -> int:
        """Wait until every event queued before this call is applied — those
        of a change this process made included: the kernel queues a change's
        notifications before it acknowledges the change. The version."""
        return self._post("sync").result(timeout)

    def wait_quiet(self, timeout: float = 10.0, quiet: float = 0.2) -> bool:
        """:meth:`sync`, then ``quiet`` seconds without a change (the kernel's
        delayed events: carrier, DAD). False on timeout."""
        deadline = time.monotonic() + timeout
        self.sync(timeout)
        with self._cond:
            while (idle := time.monotonic() - self._changed_at) < quiet:
                if time.monotonic() + quiet - idle > deadline:
                    return False
                self._cond.wait(quiet - idle)
        return True

    def _post(self, kind: str) -> Future:
        future: Future = Future()
        if not self.alive:
            future.set_exception(NetError(ErrorCode.RESOURCE_UNAVAILABLE, "monitor not running"))
            return future
        with self._lock:
            self._requests.append((kind, future))
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full: the thread will wake up anyway
        return future

    def _publish(self, state: NetState) -> None:
        with self._cond:
            self._state, self._changed_at = state, time.monotonic()
            self._cond.notify_all()
        for listener in self.listeners:
            try:
                listener(state)
            except Exception:  # a listener's bug must not stop the monitor
                log.exception("live netinfo listener failed")

    # -- the monitor thread -------------------------------------------------
    def _run(self) -> None:
        self._sock: socket.socket | None = None
        self._ipr: Any = None
        self._marshal = MarshalRtnl()
        try:
            sock = p2netns.create_socket(self.netns, socket.AF_NETLINK, socket.SOCK_RAW, 0, flags=0)
            self._sock = sock
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind((0, GROUPS))  # before the first dump: nothing is missed
            if self._ipr_factory is not None:
                self._ipr = self._ipr_factory()
            else:  # strict_check: the kernel filters route dumps by table
                self._ipr = IPRoute(netns=self.netns, flags=0, strict_check=True)
            self._publish(dump_state(self._ipr, 1))
        except BaseException as error:  # reported by start()
            self._error = error
        self._started.set()
        try:
            if self._error is None:
                self._loop(sock)
        finally:
            for handle in (self._sock, self._ipr):
                if handle is not None:
                    handle.close()
            with self._lock:
                pending, self._requests = self._requests, []
            for _, future in pending:
                future.set_exception(NetError(ErrorCode.RESOURCE_UNAVAILABLE, "monitor stopped"))

    def _loop(self, sock: socket.socket) -> None:
        self._buf, self._must_resync = bytearray(MAX_DATAGRAM), False
        poll = select.poll()
        poll.register(sock, select.POLLIN)
        poll.register(self._wake_r, select.POLLIN)
        interval = self.resync_interval
        next_resync = time.monotonic() + interval if interval else float("inf")
        while True:
            wake_at = min(next_resync, time.monotonic() + (1 if self._must_resync else 3600))
            poll.poll(max(0.0, wake_at - time.monotonic()) * 1000)
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
            with self._lock:  # taken before draining: see sync()
                requests, self._requests = self._requests, []
            if any(kind == "stop" for kind, _ in requests):
                for _, future in requests:
                    future.set_exception(NetError(ErrorCode.RESOURCE_UNAVAILABLE, "stopping"))
                return
            waiting = [future for kind, future in requests if kind == "resync"]
            try:
                if waiting or self._must_resync or time.monotonic() >= next_resync:
                    reason = "asked" if waiting else "periodic or retry"
                    if self._resync(reason, waiting) and interval:
                        next_resync = time.monotonic() + interval
                else:
                    self._drain()
            except Exception as error:  # a bug: never leave a stale cache behind
                log.exception("netlink monitor: unexpected error, resyncing")
                self._must_resync = True
                for future in waiting:
                    if not future.done():
                        future.set_exception(error)
            for kind, future in requests:
                if kind == "sync" and not future.done():
                    future.set_result(self.version)

    def _drain(self) -> None:
        """Apply what is queued, one published batch per BATCH_DATAGRAMS."""
        more = True
        while more:
            batch = Batch(self._state)
            try:
                for _ in range(BATCH_DATAGRAMS):
                    if (data := self._recv()) is None:
                        more = False
                        break
                    for msg in self._marshal.parse(data):
                        self.stats["events"] += 1
                        batch.apply(msg)
                self._read_again(batch)
            except Exception as error:  # overrun, truncation, not understood: start again
                self.stats["overruns"] += getattr(error, "errno", None) == errno.ENOBUFS
                if not isinstance(error, OSError):
                    log.exception("netlink event not understood")
                self._resync(repr(error), [])
                return
            self.stats["batches"] += 1
            if batch.changed:
                self._publish(batch.freeze(batch.base.version + 1))

    def _read_again(self, batch: Batch) -> None:
        """What changed without an event. A request waits for the change
        being made (it holds RTNL) to end."""
        for index in sorted(batch.refresh):
            try:
                batch.set_link(link_to_dict(self._ipr.link("get", index=index)[0]))
            except NetlinkError as error:  # gone: its DELLINK is queued
                log.debug("link %s: %s", index, error)
        for family in sorted(batch.dirty):
            self.stats["route_dumps"] += 1
            batch.replace_routes(family, dump_routes(self._ipr, family))

    def _recv(self) -> bytes | None:
        try:
            assert self._sock is not None
            size = self._sock.recv_into(self._buf, 0, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
        except BlockingIOError:
            return None
        if size > len(self._buf):
            raise OSError(errno.EMSGSIZE, f"netlink datagram of {size} bytes truncated")
        return bytes(self._buf[:size])

    def _resync(self, reason: str, waiting: list[Future]) -> bool:
        """Discard what is queued (the dump supersedes it), dump, publish."""
        log.info("netlink monitor: full resync (%s)", reason)
        try:
            while True:
                try:
                    if self._recv() is None:
                        break
                except OSError as error:
                    if error.errno not in (errno.ENOBUFS, errno.EMSGSIZE):
                        raise
            state = dump_state(self._ipr, self.version + 1)
        except Exception as error:
            log.error("netlink monitor: resync failed, retrying in 1s: %s", error)
            self._must_resync = True
            for future in waiting:
                future.set_exception(error)
            return False
        self.stats["resyncs"] += 1
        self._must_resync = False
        self._publish(state)
        for future in waiting:
            future.set_result(state)
        return True
