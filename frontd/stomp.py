"""STOMP 1.2 over mutual TLS: the transport the engine uses (asyncio).

A listener that knows nothing about networks: ``SEND`` frames to
``jms.topic.vdsm_requests`` go to a request sink (``JsonRpcDispatcher``);
its answers come back as ``MESSAGE`` frames on the request's ``reply-to``
destination (default ``jms.topic.vdsm_responses``), to every subscription of
every client on that destination, as the production agent does (an engine
that reconnected during a long setupNetworks still gets the answer).
``publish_event`` sends JSON-RPC notifications to ``jms.queue.events``; as
that name says it is a queue: notifications published while no client is
subscribed (a host that restarts and recovers before its engine reconnects)
wait for the first client that subscribes.

Supported: CONNECT/STOMP (version 1.2 only), heart-beats both ways,
SUBSCRIBE/UNSUBSCRIBE, SEND, ACK/NACK (accepted, nothing to redeliver),
DISCONNECT, ``receipt`` on any frame. Frames: header escapes (``\\\\ \\n \\r
\\c``, none in CONNECT/CONNECTED), ``content-length`` honoured, NUL-ended,
16 MiB at most. Any protocol error is answered by an ERROR frame and the
connection is closed. Other destinations and transactions are errors.

Each client is a ``frontd.stomp_connection.Connection``; this module owns
them all, delivers messages and keeps the limits across them, so that no
client (with or without a certificate) holds frontd's file descriptors,
request pool or memory for long: slots, requests in flight, unsent messages
and held events are capped as ``frontd.stomp_limits`` says. A handshake ends within
``HANDSHAKE_TIMEOUT``; CONNECT must follow within ``CONNECT_TIMEOUT`` in all
(not per read: a client trickling a byte at a time is dropped too). A closed
connection waits for the peer's TLS close at most ``HANDSHAKE_TIMEOUT``, and
at most ``MAX_CONNECTIONS`` of them wait at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

from frontd.stomp_connection import (
    EVENTS,
    HANDSHAKE_TIMEOUT,
    HEARTBEAT,
    Connection,
    Subscription,
    peer_host,
)
from frontd.stomp_frames import MAX_FRAME, Frame
from frontd.stomp_limits import (
    MAX_CONNECTIONS,
    MAX_HANDSHAKES,
    EventBacklog,
    oldest_of_busiest,
    outbox_to_drop,
)
from frontd.tls_clients import AllowedClients, describe
from shared.memory import release_memory

log = logging.getLogger("netreload.frontd.stomp")

# Also how many sockets asyncio accepts per wake-up, before _accept counts
# them: asyncio's 100 let a flood hold ~450 descriptors for a moment.
ACCEPT_BACKLOG = 32
DROP_WARNING_EVERY = 10.0  # s
COLLECT_AFTER = 1.0  # s after a socket ended, at most one collection per this


class RequestSink(Protocol):
    def submit(self, body: bytes, reply: Callable[[bytes], None]) -> Future: ...


def server_tls_context(cert: Path, key: Path, ca: Path, crl: Path | None = None) -> ssl.SSLContext:
    """TLS ≥ 1.2; a client must present a certificate signed by ``ca`` and,
    with ``crl`` (PEM, issued by ``ca``), not revoked by it. The CRL is read
    once: a restart reads a new one; past its next update every client
    is refused, as OpenSSL refuses an expired CRL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(cert), str(key))
    context.load_verify_locations(cafile=str(ca))
    if crl is not None:
        crls_before = context.cert_store_stats()["crl"]
        context.load_verify_locations(cafile=str(crl))
        if context.cert_store_stats()["crl"] == crls_before:
            raise ssl.SSLError(f"{crl}: no CRL in it")
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    context.options |= ssl.OP_NO_RENEGOTIATION
    return context


class StompServer:
    def __init__(
        self,
        requests: RequestSink,
        ssl_context: ssl.SSLContext | None,
        max_connections: int = MAX_CONNECTIONS,
        heartbeat: tuple[int, int] = HEARTBEAT,
        max_frame: int = MAX_FRAME,
        allowed_clients: AllowedClients | None = None,
    ) -> None:
        self.requests = requests
        self.ssl_context = ssl_context
        self.allowed_clients = allowed_clients  # None or empty: every CA-signed client
        self.max_connections = max_connections
        self.heartbeat = heartbeat
        self.max_frame = max_frame
        self.connections: set[Connection] = set()
        self._message_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self._handshakes: dict[asyncio.Task, str] = {}  # in start order, with their peer
        self._closing: dict[Connection, None] = {}  # closed, TLS close pending; oldest first
        self._pushed_out = _Tally()  # sockets pushed out to make room
        self._collect: asyncio.TimerHandle | None = None
        self._held_events = EventBacklog()  # for the next events subscriber
        # answers to a client that went away: hundreds, if it had pipelined requests
        self._unsubscribed = _Tally()

    async def start(
        self, host: str | None = None, port: int | None = None, sock: socket.socket | None = None
    ) -> None:
        self._loop = asyncio.get_running_loop()
        # Plain TCP first, TLS in _accept: asyncio's own ssl= would start the
        # handshake (and its buffers) before any code of ours can count it.
        self._server = await asyncio.start_server(
            self._accept, host, port, sock=sock, backlog=ACCEPT_BACKLOG
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._collect is not None:
            self._collect.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        await finish_handlers(self._handlers)
        if self._server is not None:
            await self._server.wait_closed()

    def publish_event(self, method: str, params: dict) -> None:
        """Thread-safe: a JSON-RPC notification to every events subscriber."""
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode()
        self._post(EVENTS, body)

    def _post(self, destination: str, body: bytes) -> None:
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, destination, body)
        except RuntimeError:  # the loop is closed: we are shutting down
            log.debug("dropping a message to %s after shutdown", destination)

    def _deliver(self, destination: str, body: bytes) -> None:
        delivered = False
        for connection in list(self.connections):
            for sub in list(connection.subscriptions.values()):
                if sub.destination == destination:
                    self._message(connection, sub, body)
                    delivered = True
        if delivered:
            return
        if destination == EVENTS:
            if self._held_events.hold(body):
                log.warning("no subscriber on %s: the oldest held notification dropped", EVENTS)
        elif dropped := self._unsubscribed.count():
            log.warning("no subscriber on %s: %d message(s) dropped", destination, dropped)

    def _message(self, connection: Connection, sub: Subscription, body: bytes) -> None:
        message_id = str(next(self._message_ids))
        headers = {
            "subscription": sub.id,
            "message-id": message_id,
            "destination": sub.destination,
            "content-type": "application/json",
            "content-length": str(len(body)),
        }
        if sub.ack != "auto":
            headers["ack"] = message_id
        connection.send(Frame("MESSAGE", headers, body))

    def _outbox_grew(self, connection: Connection) -> None:
        own = (connection.outbox(), connection)
        worst = outbox_to_drop(own, lambda: [(c.outbox(), c) for c in self.connections])
        if worst is not None:
            worst.drop_unread()

    def _subscribed(self, connection: Connection, sub: Subscription) -> None:
        """Queue semantics: the first events subscriber takes what waited."""
        if sub.destination == EVENTS:
            for body in self._held_events.take():
                self._message(connection, sub, body)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            if self.ssl_context is None or await self._handshake(handler, writer):
                await self._serve(Connection(self, reader, writer))
        finally:
            self._handlers.discard(handler)
            self._collect_soon()

    def _collect_soon(self) -> None:
        """Each ended socket leaves asyncio's task/protocol/transport cycles
        behind, a failed handshake its 256 KiB TLS buffer with them, until
        the cyclic collector runs: rarely, in a daemon that allocates little.
        After a flood that was ~80 MiB of VmRSS. Once collected, the memory
        is free but still mapped in glibc's heap (a median of 18.6 MiB, up to
        60 after 1,100 sockets): trimming gives it back (1.7 MiB left). One
        collection and trim a second after sockets end, at most one a second."""
        if self._collect is None and self._loop is not None and not self._loop.is_closed():
            self._collect = self._loop.call_later(COLLECT_AFTER, self._collected)

    def _collected(self) -> None:
        self._collect = None
        release_memory()

    async def _handshake(self, handler: asyncio.Task, writer: asyncio.StreamWriter) -> bool:
        """TLS on the accepted socket; False (socket aborted) if it failed,
        timed out, was pushed out by a newcomer or the client's certificate
        is not on the allow-list."""
        assert self.ssl_context is not None
        peer = peer_host(writer)
        if len(self._handshakes) >= MAX_HANDSHAKES:
            victim = oldest_of_busiest(self._handshakes.items())
            self._dropping(f"{MAX_HANDSHAKES} TLS handshakes in progress", self._handshakes[victim])
            self._handshakes.pop(victim)
            victim.cancel()
        self._handshakes[handler] = peer
        try:
            await writer.start_tls(self.ssl_context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
            tls = writer.get_extra_info("ssl_object")
            if not self.allowed_clients or self.allowed_clients.admits(tls):
                return True
            log.warning("%s: client certificate not allowed (%s)", peer, describe(tls))
        except (OSError, ssl.SSLError) as error:  # the handshake's timeout is an OSError
            log.debug("TLS handshake with %s failed: %s", peer, error)
        except asyncio.CancelledError:
            if handler in self._handshakes:  # cancelled by close(), not by a newcomer
                raise
        finally:
            self._handshakes.pop(handler, None)
        writer.transport.abort()
        return False

    async def _serve(self, connection: Connection) -> None:
        if len(self.connections) >= self.max_connections:
            victim = oldest_of_busiest(
                ((c, c.peer_host) for c in self.connections), key=Connection.eviction_key
            )
            self._dropping(f"{len(self.connections)} connections open", victim.peer_host)
            victim.fail("closed to make room: too many connections")
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    def _closing_started(self, connection: Connection) -> None:
        """A closed connection waits for the peer's TLS close (up to
        HANDSHAKE_TIMEOUT); past MAX_CONNECTIONS of them the oldest is cut
        short, so a peer that never answers cannot pile up sockets by getting
        itself closed again and again."""
        self._closing[connection] = None
        if len(self._closing) > self.max_connections:
            oldest = next(iter(self._closing))
            del self._closing[oldest]
            oldest.writer.transport.abort()

    def _dropping(self, why: str, host: str) -> None:
        if pushed_out := self._pushed_out.count():
            log.warning("%s: making room, last from %s (%d pushed out)", why, host, pushed_out)


class _Tally:
    """Occurrences worth a warning, told at most every DROP_WARNING_EVERY
    seconds: a flood must not flood the log too."""

    def __init__(self) -> None:
        self._count = 0
        self._told = -DROP_WARNING_EVERY

    def count(self) -> int:
        """One more; how many to warn about now (0: not yet)."""
        self._count += 1
        now = time.monotonic()
        if now - self._told < DROP_WARNING_EVERY:
            return 0
        count, self._count, self._told = self._count, 0, now
        return count


async def finish_handlers(tasks: set[asyncio.Task], timeout: float = 2.0) -> None:
    """Let connection handlers end on their own a moment, then cancel them."""
    pending = [task for task in tasks if not task.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
