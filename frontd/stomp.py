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
wait, the newest ``HELD_EVENTS`` of them and at most ``HELD_EVENT_BYTES``,
for the first client that subscribes.

Supported: CONNECT/STOMP (version 1.2 only), heart-beats both ways,
SUBSCRIBE/UNSUBSCRIBE, SEND, ACK/NACK (accepted, nothing to redeliver),
DISCONNECT, ``receipt`` on any frame. Frames: header escapes (``\\\\ \\n \\r
\\c``, none in CONNECT/CONNECTED), ``content-length`` honoured, NUL-ended,
16 MiB at most. Any protocol error is answered by an ERROR frame and the
connection is closed. Other destinations and transactions are errors.

Limits, so that no client (with or without a certificate) holds frontd's
file descriptors or memory for long: at most ``MAX_HANDSHAKES`` TLS
handshakes in progress (each costs asyncio a 256 KiB buffer before the peer
proved anything) and ``MAX_CONNECTIONS`` connections past it. A newcomer over
either cap is not turned away: the peer address holding the most slots gives
up its oldest handshake, or its longest-silent connection (one that has not
sent CONNECT first), so a client flooding from one address pushes out its own
sockets, not the engine's. A handshake ends within ``HANDSHAKE_TIMEOUT``;
CONNECT must follow within ``CONNECT_TIMEOUT`` in all (not per read: a client
trickling a byte at a time is dropped too). A closed connection waits for the
peer's TLS close at most ``HANDSHAKE_TIMEOUT``, and at most
``MAX_CONNECTIONS`` of them wait at once.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from frontd.stomp_frames import MAX_FRAME, Frame, FrameParser, ProtocolError, parse_heartbeat

log = logging.getLogger("netreload.frontd.stomp")

REQUESTS = "jms.topic.vdsm_requests"
DEFAULT_REPLY_TO = "jms.topic.vdsm_responses"
EVENTS = "jms.queue.events"
MAX_CONNECTIONS = 64
MAX_HANDSHAKES = 64
# Also how many sockets asyncio accepts per wake-up, before _accept counts
# them: asyncio's 100 let a flood hold ~450 descriptors for a moment.
ACCEPT_BACKLOG = 32
MAX_OUTBOX = 64 * 1024 * 1024  # a client that stops reading is dropped
# A client sends CONNECT right after its handshake; 10 s is ample, and bounds
# how long a socket that never speaks STOMP keeps its slot.
CONNECT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0
DROP_WARNING_EVERY = 10.0  # s
COLLECT_AFTER = 1.0  # s after a socket ended, at most one collection per this
HELD_EVENTS = 64  # notifications kept for a late subscriber (the newest)
HELD_EVENT_BYTES = 4 * 1024 * 1024
HEARTBEAT = (1000, 1000)  # ms: fastest we send, fastest we want to hear
ACK_MODES = ("auto", "client", "client-individual")
T = TypeVar("T")


class RequestSink(Protocol):
    def submit(self, body: bytes, reply: Callable[[bytes], None]) -> Future: ...


def server_tls_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """TLS ≥ 1.2; a client must present a certificate signed by ``ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(cert), str(key))
    context.load_verify_locations(cafile=str(ca))
    context.options |= ssl.OP_NO_RENEGOTIATION
    return context


@dataclass(frozen=True)
class Subscription:
    id: str
    destination: str
    ack: str


class StompServer:
    def __init__(
        self,
        requests: RequestSink,
        ssl_context: ssl.SSLContext | None,
        max_connections: int = MAX_CONNECTIONS,
        heartbeat: tuple[int, int] = HEARTBEAT,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.requests = requests
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.heartbeat = heartbeat
        self.max_frame = max_frame
        self.connections: set[_Connection] = set()
        self._message_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self._handshakes: dict[asyncio.Task, str] = {}  # in start order, with their peer
        self._closing: dict[_Connection, None] = {}  # closed, TLS close pending; oldest first
        self._drops = 0  # sockets pushed out since the last warning
        self._collect: asyncio.TimerHandle | None = None
        self._drop_warned = -DROP_WARNING_EVERY
        self._held_events: deque[bytes] = deque()  # for the next events subscriber
        self._held_bytes = 0

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
            self._hold_event(body)
        else:
            log.warning("no subscriber on %s, message dropped", destination)

    def _message(self, connection: _Connection, sub: Subscription, body: bytes) -> None:
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

    def _hold_event(self, body: bytes) -> None:
        self._held_events.append(body)
        self._held_bytes += len(body)
        while len(self._held_events) > HELD_EVENTS or self._held_bytes > HELD_EVENT_BYTES:
            self._held_bytes -= len(self._held_events.popleft())
            log.warning("no subscriber on %s: the oldest held notification dropped", EVENTS)

    def _subscribed(self, connection: _Connection, sub: Subscription) -> None:
        """Queue semantics: the first events subscriber takes what waited."""
        if sub.destination != EVENTS:
            return
        while self._held_events and not connection.closed:
            body = self._held_events.popleft()
            self._held_bytes -= len(body)
            self._message(connection, sub, body)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            if self.ssl_context is None or await self._handshake(handler, writer):
                await self._serve(_Connection(self, reader, writer))
        finally:
            self._handlers.discard(handler)
            self._collect_soon()

    def _collect_soon(self) -> None:
        """Each ended socket leaves asyncio's task/protocol/transport cycles
        behind, a failed handshake its 256 KiB TLS buffer with them, until
        the cyclic collector runs: rarely, in a daemon that allocates little.
        After a flood that was ~80 MiB of VmRSS; one collection a second
        after sockets end (at most one a second) gives it back."""
        if self._collect is None and self._loop is not None and not self._loop.is_closed():
            self._collect = self._loop.call_later(COLLECT_AFTER, self._collected)

    def _collected(self) -> None:
        self._collect = None
        gc.collect()

    async def _handshake(self, handler: asyncio.Task, writer: asyncio.StreamWriter) -> bool:
        """TLS on the accepted socket; False (socket aborted) if it failed,
        timed out or was pushed out by a newcomer."""
        assert self.ssl_context is not None
        peer = _peer_host(writer)
        if len(self._handshakes) >= MAX_HANDSHAKES:
            victim = _oldest_of_busiest(self._handshakes.items())
            self._dropping(f"{MAX_HANDSHAKES} TLS handshakes in progress", self._handshakes[victim])
            self._handshakes.pop(victim)
            victim.cancel()
        self._handshakes[handler] = peer
        try:
            await writer.start_tls(self.ssl_context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
            return True
        except (OSError, ssl.SSLError) as error:  # the handshake's timeout is an OSError
            log.debug("TLS handshake with %s failed: %s", peer, error)
        except asyncio.CancelledError:
            if handler in self._handshakes:  # cancelled by close(), not by a newcomer
                raise
        finally:
            self._handshakes.pop(handler, None)
        writer.transport.abort()
        return False

    async def _serve(self, connection: _Connection) -> None:
        if len(self.connections) >= self.max_connections:
            victim = _oldest_of_busiest(
                ((c, c.peer_host) for c in self.connections), key=_Connection.eviction_key
            )
            self._dropping(f"{len(self.connections)} connections open", victim.peer_host)
            victim.fail("closed to make room: too many connections")
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)

    def _closing_started(self, connection: _Connection) -> None:
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
        """A warning at most every DROP_WARNING_EVERY seconds: a flood must
        not flood the log too."""
        self._drops += 1
        now = time.monotonic()
        if now - self._drop_warned >= DROP_WARNING_EVERY:
            log.warning("%s: making room, last from %s (%d pushed out)", why, host, self._drops)
            self._drops, self._drop_warned = 0, now


def _peer_host(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


def _oldest_of_busiest(items: Iterable[tuple[T, str]], key: Callable[[T], Any] | None = None) -> T:
    """What gives way when a cap is reached: among the items of the peer host
    holding the most, the first (``items`` are in start order) or the least
    by ``key``."""
    entries = list(items)
    counts = Counter(host for _, host in entries)
    busiest = max(counts, key=counts.__getitem__)
    mine = [item for item, host in entries if host == busiest]
    return min(mine, key=key) if key is not None else mine[0]


async def finish_handlers(tasks: set[asyncio.Task], timeout: float = 2.0) -> None:
    """Let connection handlers end on their own a moment, then cancel them."""
    pending = [task for task in tasks if not task.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


class _Connection:
    def __init__(
        self, server: StompServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server, self.reader, self.writer = server, reader, writer
        self.parser = FrameParser(server.max_frame)
        self.subscriptions: dict[str, Subscription] = {}
        self.connected = False
        self.closed = False
        self.send_ms = self.recv_ms = 0
        self.opened = self.last_read = self.last_write = time.monotonic()
        self.peer = writer.get_extra_info("peername")
        self.peer_host = _peer_host(writer)
        self.receipt: str | None = None  # of the frame being handled

    async def run(self) -> None:
        heartbeat: asyncio.Task | None = None
        try:
            while not self.closed:
                timeout = None
                if not self.connected:  # one deadline for the whole CONNECT frame
                    timeout = max(0.0, self.opened + CONNECT_TIMEOUT - time.monotonic())
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    break
                self.last_read = time.monotonic()
                for frame in self.parser.feed(data):
                    self.receipt = frame.headers.get("receipt")
                    if not self._handle(frame):
                        return
                    if heartbeat is None and (self.send_ms or self.recv_ms):
                        heartbeat = asyncio.create_task(self._heartbeat())
        except ProtocolError as error:
            log.info("STOMP protocol error from %s: %s", self.peer, error)
            self.fail(str(error))
        except TimeoutError:
            self.fail("no CONNECT frame in time")
        except (OSError, ssl.SSLError) as error:
            log.debug("connection from %s failed: %s", self.peer, error)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            self.close()
            await self._wait_closed()
            self.server._closing.pop(self, None)

    def eviction_key(self) -> tuple[bool, float]:
        """Lowest goes first: no CONNECT yet, then the longest silent."""
        return self.connected, self.last_read

    async def _wait_closed(self) -> None:
        try:
            await asyncio.wait_for(self.writer.wait_closed(), HANDSHAKE_TIMEOUT)
        except (TimeoutError, OSError, ssl.SSLError):
            self.writer.transport.abort()

    def _handle(self, frame: Frame) -> bool:
        """Act on one frame; False when the connection is to be closed."""
        command, headers = frame.command, frame.headers
        if command in ("CONNECT", "STOMP"):
            return self._connect(headers)
        if not self.connected:
            raise ProtocolError(f"expected CONNECT, got {command}")
        if command == "SUBSCRIBE":
            sub_id, destination = headers.get("id"), headers.get("destination")
            ack = headers.get("ack", "auto")
            if not sub_id or not destination:
                raise ProtocolError("SUBSCRIBE needs id and destination headers")
            if sub_id in self.subscriptions:
                raise ProtocolError(f"subscription id {sub_id[:40]!r} already in use")
            if ack not in ACK_MODES:
                raise ProtocolError(f"unknown ack mode {ack[:20]!r}")
            self.subscriptions[sub_id] = Subscription(sub_id, destination, ack)
        elif command == "UNSUBSCRIBE":
            if not headers.get("id"):
                raise ProtocolError("UNSUBSCRIBE needs an id header")
            self.subscriptions.pop(headers["id"], None)
        elif command == "SEND":
            self._send_request(headers, frame.body)
        elif command in ("ACK", "NACK"):
            if not headers.get("id"):
                raise ProtocolError(f"{command} needs an id header")
        elif command in ("BEGIN", "COMMIT", "ABORT"):
            raise ProtocolError("transactions are not supported")
        self._receipt(headers)
        sub = self.subscriptions.get(headers["id"]) if command == "SUBSCRIBE" else None
        if sub is not None:  # after its receipt: the notifications that waited for one
            self.server._subscribed(self, sub)
        return command != "DISCONNECT"

    def _connect(self, headers: dict[str, str]) -> bool:
        if self.connected:
            raise ProtocolError("already connected")
        versions = [v.strip() for v in headers.get("accept-version", "1.0").split(",")]
        if "1.2" not in versions:
            self.fail("Supported protocol versions are 1.2", {"version": "1.2"})
            return False
        cx, cy = parse_heartbeat(headers.get("heart-beat", "0,0"))
        sx, sy = self.server.heartbeat
        self.send_ms = max(sx, cy) if sx and cy else 0
        self.recv_ms = max(sy, cx) if sy and cx else 0
        self.connected = True
        self.send(
            Frame(
                "CONNECTED",
                {
                    "version": "1.2",
                    "heart-beat": f"{self.send_ms},{self.recv_ms}",
                    "server": "netreload-frontd",
                },
            )
        )
        return True

    def _send_request(self, headers: dict[str, str], body: bytes) -> None:
        destination = headers.get("destination")
        if not destination:
            raise ProtocolError("SEND needs a destination header")
        if destination != REQUESTS:
            raise ProtocolError(f"cannot SEND to {destination[:80]!r}")
        reply_to = headers.get("reply-to") or DEFAULT_REPLY_TO
        self.server.requests.submit(body, lambda answer: self.server._post(reply_to, answer))

    def _receipt(self, headers: dict[str, str]) -> None:
        if "receipt" in headers:
            self.send(Frame("RECEIPT", {"receipt-id": headers["receipt"]}))

    async def _heartbeat(self) -> None:
        intervals = [ms / 1000 for ms in (self.send_ms, self.recv_ms) if ms]
        tick = max(0.05, min(intervals) / 4)
        while not self.closed:
            await asyncio.sleep(tick)
            now = time.monotonic()
            silent = now - self.last_read
            if self.recv_ms and silent > 2 * self.recv_ms / 1000:
                log.info("no heart-beat from %s for %.1f s, closing", self.peer, silent)
                self.close()
                return
            if self.send_ms and now - self.last_write >= self.send_ms / 1000:
                self._write(b"\n")

    def send(self, frame: Frame) -> None:
        self._write(frame.encode())

    def _write(self, data: bytes) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(data)
        self.last_write = time.monotonic()
        if self.writer.transport.get_write_buffer_size() > MAX_OUTBOX:
            log.warning("%s does not read its messages, closing", self.peer)
            self.close()

    def fail(self, message: str, extra: dict[str, str] | None = None) -> None:
        """ERROR frame, then close (the transport flushes before closing)."""
        body = message.encode()
        headers = {
            "message": message[:200],
            "content-type": "text/plain",
            "content-length": str(len(body)),
            **(extra or {}),
        }
        if self.receipt is not None:
            headers["receipt-id"] = self.receipt
        self.send(Frame("ERROR", headers, body))
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.parser.clear()  # up to MAX_FRAME of a partial frame
        self.subscriptions.clear()
        self.server.connections.discard(self)
        self.writer.close()
        self.server._closing_started(self)
