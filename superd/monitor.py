"""Live netinfo: a netlink monitor keeping the kernel's network state in memory.

A background thread owns two netlink sockets of its own: an *event* socket
bound to the link, IPv4/IPv6 address and route groups (never used for
requests) and a *request* socket for dumps, both decoded by
:mod:`netlink.decode`. It starts
with one full dump (the plain dicts of :mod:`superd.netinfo`), then applies
RTM_NEW/DEL LINK/ADDR/ROUTE/RULE events. What it reads without blocking is
one batch, applied to a copy of the state and published by swapping a
reference: a reader never sees half of it. Routes of every table but the
local one, IPv4 rules (source routing), as the dump.

What the kernel changes without an event, and how each case is caught:
:mod:`superd.netstate`. ENOBUFS (an overrun), a truncated datagram, anything
not understood → what is queued is dropped (the event socket replaced:
:meth:`LiveNetinfo._renew`) and a full dump replaces the state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from types import MappingProxyType
from typing import Any

from pyroute2 import netns as p2netns

from netlink import decode, query
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.layered import Layered, plain
from superd.monitor_report import READ_OVS, ReportCache
from superd.netstate import Batch, NetState, dump_routes, dump_state

log = logging.getLogger("netreload.superd.monitor")
__all__ = ["READ_OVS", "LiveNetinfo"]

SO_RCVBUFFORCE = 33  # not in Python's socket module
# RTMGRP_LINK, IPV4_IFADDR/ROUTE/RULE, IPV6_IFADDR/ROUTE
GROUPS = 0x1 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400
MAX_DATAGRAM, BATCH_DATAGRAMS = 1 << 20, 256
# the host-sized maps of a state, kept layered (shared.layered): a batch's
# copy-on-write of them, and dropping the state before, cost the change
LAYERED = ("links", "addresses", "routes", "by_oif", "by_src")
# a resync replaces the event socket instead of reading its queue away
# (LiveNetinfo._renew); NETRELOAD_MONITOR_RENEW=0 reads it (for A/B runs)
RENEW = os.environ.get("NETRELOAD_MONITOR_RENEW", "1") != "0"
# entries above which a map (or the routes of one identity) is layered: a
# host of a few devices keeps dicts
BIG_MAP = 64


def _freeze(batch: Batch) -> NetState:
    """The batch as the next state, its host-sized maps layered. A map the
    batch made whole (a route family dumped again) becomes the base of a
    new one; the others are already layered copies (the state's proxies
    copy their Layered)."""
    maps = (batch.links, batch.addresses, batch.routes, batch.by_oif, batch.by_src)
    batch.links, batch.addresses = _layer(batch.links), _layer(batch.addresses)
    batch.routes, batch.by_oif = _layer(batch.routes), _layer(batch.by_oif)  # type: ignore[assignment]
    batch.by_src = _layer(batch.by_src)  # type: ignore[assignment]
    now = (batch.links, batch.addresses, batch.routes, batch.by_oif, batch.by_src)
    for name, before, after in zip(LAYERED, maps, now, strict=True):
        if after is not before:  # frozen behind a read-only proxy as the copies
            batch._mine.add(name)
    for ident in batch._idents:  # the routes of one identity the batch copied
        entries = batch.routes.get(ident)
        if entries is not None and type(entries) is not MappingProxyType:
            batch.routes[ident] = _layer_routes(entries)
    return batch.freeze(batch.base.version + 1)


def _layer_routes(entries: Mapping) -> Mapping:
    """The routes of one identity, layered behind a read-only proxy when
    many (every bridge's link-local route is fe80::/64 in the main table:
    one identity with 5,000 of them), so that the next batch's
    ``writable(proxy)`` copies the change; as they are when few."""
    if len(entries) <= BIG_MAP:
        return entries
    return MappingProxyType(Layered(entries) if type(entries) is dict else entries)


def _layer(value: Mapping) -> Mapping:
    """A dict (the batch's own, or a state's never written since: read-only
    either way) of more than BIG_MAP entries as the base of a Layered; a
    smaller one as it is (a dict's copy is cheaper than a Layered's, its
    reads too); a Layered as it is."""
    return Layered(value) if type(value) is dict and len(value) > BIG_MAP else value


def _folded(state: NetState) -> NetState:
    """``state`` with its links and addresses as dicts again (a block copy
    each), for a full dump that looks every device up in them: C-speed
    lookups instead of 5,000 ``Layered.get`` calls in Python."""
    return dataclasses.replace(
        state, links=MappingProxyType(plain(state.links.copy())),
        addresses=MappingProxyType(plain(state.addresses.copy())),
    )  # fmt: skip


def _layered_state(state: NetState) -> NetState:
    """A full dump's state with its host-sized maps layered (one block copy
    of each: a dump already walks the host; a small one stays a dict)."""
    def proxied(value: Mapping) -> Mapping:
        return MappingProxyType(_layer(plain(value.copy())))  # type: ignore[attr-defined]

    routes = plain(state.routes.copy())
    for ident, entries in routes.items():  # values replaced: the walk is safe
        routes[ident] = _layer_routes(entries)
    return dataclasses.replace(
        state, links=proxied(state.links), addresses=proxied(state.addresses),
        routes=proxied(routes), by_oif=proxied(state.by_oif), by_src=proxied(state.by_src),
    )  # fmt: skip


class LiveNetinfo(ReportCache):
    """The monitor: :meth:`start`, then :meth:`snapshot` / :meth:`capabilities`.

    ``netns``: watch that named namespace instead of the current one (pyroute2
    creates both sockets there; the process stays where it is).
    ``socket_factory``: the request socket (tests wrap it to count dumps).
    """

    def __init__(self, config: Config, netns: str | None = None, rcvbuf: int = 32 << 20,
                 resync_interval: float | None = 600.0,
                 socket_factory: Callable[[], Any] | None = None) -> None:  # fmt: skip
        self.config, self.netns, self.rcvbuf = config, netns, rcvbuf
        self.resync_interval = resync_interval
        self._socket_factory = socket_factory or self._dump_socket
        self._cond = threading.Condition()  # guards _state and _changed_at
        empty: Mapping = MappingProxyType({})
        self._state, self._changed_at = NetState(0, empty, empty, empty), time.monotonic()
        self._lock = threading.Lock()  # guards _requests, _reread and _holds
        self._requests: list[tuple[str, Future]] = []
        self._reread: set[str] = set()  # links "refresh" requests name (under _lock)
        self._holds = 0  # > 0: notifications wait in the socket (see held())
        self.epoch = secrets.token_hex(4)  # tells this run's versions from another's
        self._init_reports()
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
            why = self._error or f"first dump not done within {timeout:g} s"
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, f"netlink monitor: {why}")

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

    def resync(self, timeout: float = 600.0) -> NetState:
        return self._post("resync").result(timeout)

    def refresh(self, names: Iterable[str], timeout: float = 60.0) -> NetState:
        """Every queued event applied, then the links named ``names`` read
        again (what changes without an event: IPv6 sysctls): the state after
        a small change of superd's own, exact for those devices, without a
        full dump (whose cost grows with the host, not with the change)."""
        with self._lock:
            self._reread.update(names)
        return self._post("refresh").result(timeout)

    def current(self, timeout: float = 60.0) -> NetState | None:
        """The state once every event queued before this call is applied
        (as :meth:`sync`: a change acknowledged before the call, superd's
        or another process's, is in it; an overrun met on the way is a full
        dump made after the call). None when the monitor cannot vouch for
        it: not running, or out of sync (a resync failed, the next one is
        pending) — the caller reads the kernel instead."""
        if not self.alive:
            return None
        try:
            return self.refresh((), timeout)  # no link to read again: a strict sync
        except Exception as error:  # NetError (resyncing, stopped), a timeout
            log.info("live netinfo not current (%s)", error)
            return None

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

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Leave notifications queued in the socket meanwhile (a burst
        superd causes itself and reads back with a resync anyway: decoding
        it on the side would only compete for the CPU). They are applied
        after, or discarded by a resync; :meth:`sync` still drains."""
        with self._lock:
            self._holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full: the thread will wake up anyway
        except OSError:
            pass  # closed: the monitor stopped

    def _post(self, kind: str) -> Future:
        future: Future = Future()
        if not self.alive:
            future.set_exception(NetError(ErrorCode.RESOURCE_UNAVAILABLE, "monitor not running"))
            return future
        with self._lock:
            self._requests.append((kind, future))
        self._wake()
        return future

    def _publish(self, state: NetState) -> None:
        self._touched(state)
        with self._cond:
            self._state, self._changed_at = state, time.monotonic()
            self._cond.notify_all()
        for listener in self.listeners:
            try:
                listener(state)
            except Exception:  # a listener's bug must not stop the monitor
                log.exception("live netinfo listener failed")

    # -- the monitor thread -------------------------------------------------
    def _request_socket(self) -> socket.socket:
        return p2netns.create_socket(self.netns, socket.AF_NETLINK, socket.SOCK_RAW, 0, flags=0)

    def _dump_socket(self) -> socket.socket:
        """Strict: the kernel honours dump filters (by family)."""
        return query.strict(self._request_socket())

    def _event_socket(self) -> socket.socket:
        """A socket bound to the monitor's groups, with its receive buffer."""
        sock = self._request_socket()
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind((0, GROUPS))
        except BaseException:
            sock.close()
            raise
        return sock

    def _run(self) -> None:
        self._sock: socket.socket | None = None
        self._dumper: Any = None
        self._poll: Any = None  # the loop's select.poll, the event socket in it
        self._events = select.POLLIN  # the event socket's in the poll (0: held)
        try:
            self._sock = self._event_socket()  # before the first dump: nothing is missed
            self._dumper = self._socket_factory()
            self._publish(_layered_state(dump_state(self._dumper, 1)))
        except BaseException as error:  # reported by start()
            self._error = error
        self._started.set()
        try:
            if self._error is None:
                self._loop()
        finally:
            for handle in (self._sock, self._dumper):
                if handle is not None:
                    handle.close()
            with self._lock:
                pending, self._requests = self._requests, []
            for _, future in pending:
                future.set_exception(NetError(ErrorCode.RESOURCE_UNAVAILABLE, "monitor stopped"))

    def _loop(self) -> None:
        self._buf, self._must_resync = bytearray(MAX_DATAGRAM), False
        assert self._sock is not None
        self._poll = poll = select.poll()
        poll.register(self._sock, self._events)
        poll.register(self._wake_r, select.POLLIN)
        interval = self.resync_interval
        next_resync = time.monotonic() + interval if interval else float("inf")
        while True:
            listening = self._events != 0
            if listening != (self._holds == 0):
                self._events = 0 if listening else select.POLLIN
                poll.modify(self._sock, self._events)
            wake_at = min(next_resync, time.monotonic() + (1 if self._must_resync else 3600))
            poll.poll(max(0.0, wake_at - time.monotonic()) * 1000)
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
            with self._lock:  # taken before draining: see sync()
                requests, self._requests = self._requests, []
                reread, self._reread = self._reread, set()
                # held() since the poll began (the socket was still polled):
                # what woke it waits, not drained in the middle of the change
                drain = self._events != 0 and self._holds == 0
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
                elif drain or any(kind in ("sync", "refresh") for kind, _ in requests):
                    # a refresh's links read again in the drain's last batch:
                    # one state published per refresh, not two
                    if not self._drain(reread) and reread and not self._must_resync:
                        self._read_links(reread)  # the drain resynced
            except Exception as error:  # a bug: never leave a stale cache behind
                log.exception("netlink monitor: unexpected error, resyncing")
                self._must_resync = True
                for future in waiting:
                    if not future.done():
                        future.set_exception(error)
            for kind, future in requests:
                if kind == "sync" and not future.done():
                    future.set_result(self.version)
                elif kind == "refresh" and not future.done():
                    if self._must_resync:  # the drain failed and so did its resync
                        future.set_exception(
                            NetError(ErrorCode.RESOURCE_UNAVAILABLE, "netlink monitor: resyncing")
                        )
                    else:
                        future.set_result(self._state)

    def _drain(self, names: set[str] | frozenset[str] = frozenset()) -> bool:
        """Apply what is queued, one published batch per BATCH_DATAGRAMS;
        the links named ``names`` read again in the last one (see
        :meth:`refresh`). False when it resynced instead."""
        more = True
        while more:
            batch = Batch(self._state)
            try:
                for _ in range(BATCH_DATAGRAMS):
                    if (data := self._recv()) is None:
                        more = False
                        break
                    for msg in decode.messages(data):
                        self.stats["events"] += 1
                        batch.apply(msg)
                if not more:
                    self._get_links(batch, names)
                self._read_again(batch)
            except Exception as error:  # overrun, truncation, not understood: start again
                self.stats["overruns"] += getattr(error, "errno", None) == errno.ENOBUFS
                if not isinstance(error, OSError):
                    log.exception("netlink event not understood")
                self._resync(repr(error), [])
                return False
            self.stats["batches"] += 1
            if batch.changed:
                self._publish(_freeze(batch))
        return True

    def _get_links(self, batch: Batch, names: set[str] | frozenset[str]) -> None:
        for name in sorted(names):  # asked by name: no walk over the host's links
            link = query.get_link(self._dumper, name=name)
            if link is not None and link["index"] in batch.links:  # else: not known yet
                batch.set_link(link)

    def _read_links(self, names: set[str]) -> None:
        """Read the links named ``names`` again (see :meth:`refresh`)."""
        batch = Batch(self._state)
        try:
            self._get_links(batch, names)
            self._read_again(batch)
        except Exception as error:
            self.stats["overruns"] += getattr(error, "errno", None) == errno.ENOBUFS
            self._resync(repr(error), [])
            return
        if batch.changed:
            self._publish(_freeze(batch))

    def _read_again(self, batch: Batch) -> None:
        """What changed without an event. A request waits for the change
        being made (it holds RTNL) to end."""
        batch.settle()
        for index in sorted(batch.refresh):
            link = query.get_link(self._dumper, index)
            if link is not None:  # else gone: its DELLINK is queued
                batch.set_link(link)
        for family in sorted(batch.dirty):
            self.stats["route_dumps"] += 1
            batch.replace_routes(family, dump_routes(self._dumper, family))

    def _recv(self) -> bytes | None:
        try:
            assert self._sock is not None
            size = self._sock.recv_into(self._buf, 0, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
        except BlockingIOError:
            return None
        if size > len(self._buf):
            raise OSError(errno.EMSGSIZE, f"netlink datagram of {size} bytes truncated")
        return bytes(self._buf[:size])

    def _discard(self) -> None:
        """Drop what is queued, uncopied (a big change held back thousands
        of datagrams the dump that follows supersedes)."""
        assert self._sock is not None
        while True:
            try:
                self._sock.recv_into(self._buf, 0, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise

    def _renew(self) -> None:
        """A new event socket in place of the old, which is closed: what it
        queued (a big change's 8,000 held notifications at 1,000 networks)
        the kernel frees, instead of reading it away at ~2 µs a datagram.
        Called before the dump: a change after the new socket joined is in
        the dump or queued on it. No new socket: the old one is read empty."""
        assert self._sock is not None
        try:
            sock = self._event_socket()
        except OSError as error:
            log.warning("netlink monitor: no new event socket (%s): discarding instead", error)
            self._discard()
            return
        old, self._sock = self._sock, sock
        if self._poll is not None:  # else before the loop: it registers the new one
            self._poll.unregister(old)
            self._poll.register(sock, self._events)
        old.close()

    def _resync(self, reason: str, waiting: list[Future]) -> bool:
        """Drop what is queued (the dump supersedes it), dump, publish."""
        log.info("netlink monitor: full resync (%s)", reason)
        try:
            if RENEW:
                self._renew()
            else:
                self._discard()
            state = _layered_state(dump_state(self._dumper, self.version + 1, _folded(self._state)))
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
