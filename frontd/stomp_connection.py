"""One engine's STOMP connection to frontd: frames in, frames out.

Reads frames and acts on them (CONNECT, SUBSCRIBE, SEND, …), sends MESSAGE,
RECEIPT and ERROR frames and heart-beats, and keeps the per-connection
limits of ``frontd.stomp_limits``: at most ``MAX_IN_FLIGHT`` of its requests
being answered (it is not read meanwhile; a SEND is one request, a JSON-RPC
batch in it included: the dispatcher answers a batch's requests in turn)
and its unsent messages reported to the server after each write.
``frontd.stomp.StompServer`` owns the connections, the delivery of messages
and the limits across them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frontd.stomp_frames import Frame, FrameParser, ProtocolError, parse_heartbeat
from frontd.stomp_limits import MAX_IN_FLIGHT

if TYPE_CHECKING:
    from frontd.stomp import StompServer

log = logging.getLogger("netreload.frontd.stomp")

REQUESTS = "jms.topic.vdsm_requests"
DEFAULT_REPLY_TO = "jms.topic.vdsm_responses"
EVENTS = "jms.queue.events"
# A client sends CONNECT right after its handshake; 10 s is ample, and bounds
# how long a socket that never speaks STOMP keeps its slot.
CONNECT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 10.0
HEARTBEAT = (1000, 1000)  # ms: fastest we send, fastest we want to hear
ACK_MODES = ("auto", "client", "client-individual")

# Destinations an answer may never go to: an answer sent to the events queue
# would be held and handed to the next engine as if it were a notification;
# the requests topic is the way in, never out.
RESERVED_REPLY_TO = (EVENTS, REQUESTS)


def reply_to_allowed(destination: str) -> bool:
    """A reply-to names a response destination (the engine's
    ``jms.topic.vdsm_responses``, a client's own UUID queue, …): neither a
    reserved destination nor one below it."""
    return not any(
        destination == reserved or destination.startswith(reserved + ".")
        for reserved in RESERVED_REPLY_TO
    )


@dataclass(frozen=True)
class Subscription:
    id: str
    destination: str
    ack: str


def peer_host(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


class Connection:
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
        self.peer_host = peer_host(writer)
        self.receipt: str | None = None  # of the frame being handled
        self.in_flight = 0  # its requests submitted and not answered yet
        self.paused = False  # not reading: MAX_IN_FLIGHT requests in flight
        self._slot_freed = asyncio.Event()

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
                    if frame.command == "SEND" and self.in_flight >= MAX_IN_FLIGHT:
                        await self._wait_for_a_slot()
                        if self.closed:
                            return
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

    async def _wait_for_a_slot(self) -> None:
        """Backpressure: the rest of what the client sent waits, unread, in
        its socket until one of its requests is answered, so one connection
        cannot take the request pool from the others."""
        self.paused = True
        try:
            while self.in_flight >= MAX_IN_FLIGHT and not self.closed:
                self._slot_freed.clear()
                await self._slot_freed.wait()
        finally:
            self.paused = False
            self.last_read = time.monotonic()  # the peer was not silent: we did not read

    def _request_done(self) -> None:
        self.in_flight -= 1
        self._slot_freed.set()

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
        if not reply_to_allowed(reply_to):
            raise ProtocolError(f"cannot reply to {reply_to[:80]!r}: not a response destination")
        self.in_flight += 1
        future = self.server.requests.submit(
            body, lambda answer: self.server._post(reply_to, answer)
        )
        future.add_done_callback(self._answered)

    def _answered(self, _: Future) -> None:
        """A request's worker is done (any thread)."""
        loop = self.server._loop
        try:
            if loop is not None:
                loop.call_soon_threadsafe(self._request_done)
        except RuntimeError:  # the loop is closed: we are shutting down
            pass

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
            if self.recv_ms and silent > 2 * self.recv_ms / 1000 and not self.paused:
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
        self.server._outbox_grew(self)

    def outbox(self) -> int:
        """Bytes written for the peer and not yet taken by it."""
        return self.writer.transport.get_write_buffer_size()

    def drop_unread(self) -> None:
        """Close without flushing: what it holds would never be read."""
        unsent = self.outbox()
        log.warning("%s does not read its messages (%d bytes unsent), dropped", self.peer, unsent)
        self.close()
        self.writer.transport.abort()

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
        self._slot_freed.set()
        self.parser.clear()  # up to MAX_FRAME of a partial frame
        self.subscriptions.clear()
        self.server.connections.discard(self)
        self.writer.close()
        self.server._closing_started(self)
