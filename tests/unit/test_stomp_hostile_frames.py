"""Hostile input against frontd's STOMP frame parser and its connection limits.

The parser half is pure bytes → frames; the server half runs frontd's
``StompServer`` in-process on 127.0.0.1 (plain TCP: TLS and the handshake
cap are exercised by ``tests/functional/test_wire_hostile.py``), with
clients from 127.0.0.1 and 127.0.0.2 standing for two hosts.
"""

from __future__ import annotations

import asyncio
import socket
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

import pytest

import frontd.stomp_connection as connection_module
import frontd.stomp_limits as stomp_limits
from frontd.stomp import StompServer
from frontd.stomp_frames import MAX_HEAD, Frame, FrameParser, ProtocolError, parse_heartbeat
from frontd.stomp_limits import MAX_IN_FLIGHT
from tests.functional.wire_clients import send_frame

SEND = b"SEND\ndestination:jms.topic.vdsm_requests\n"


# -- the parser ---------------------------------------------------------------------

MALFORMED = {
    "no_command": b"\ndestination:x\n\n\0",
    "nul_command": b"\0\0\n\n\0",
    "unknown_command": b"FROB\n\n\0",
    "server_command": b"MESSAGE\n\n\0",
    "header_without_colon": SEND + b"no colon\n\n\0",
    "header_without_name": SEND + b":v\n\n\0",
    "undefined_escape": SEND + b"x:\\t\n\n\0",
    "escape_at_end": SEND + b"x:\\\n\n\0",
    "invalid_utf8": SEND + b"x:\xc3\x28\n\n\0",
    "content_length_not_a_number": SEND + b"content-length:1e3\n\n\0",
    "content_length_negative": SEND + b"content-length:-1\n\n\0",
    "content_length_signed": SEND + b"content-length:+1\n\n{\0",
    "content_length_over_the_limit": SEND + b"content-length:1025\n\n",
    "content_length_shorter": SEND + b"content-length:1\n\n{}\0",
    # a digit to str.isdigit, not to int()
    "content_length_superscript": SEND + "content-length:²\n\n{}\0".encode(),
}


def test_heartbeat_of_non_ascii_digits_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_heartbeat("²,0")


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_frame_is_a_protocol_error(name: str) -> None:
    with pytest.raises(ProtocolError):
        FrameParser(max_frame=1024).feed(MALFORMED[name])


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_frame_fed_a_byte_at_a_time_is_the_same_error(name: str) -> None:
    parser = FrameParser(max_frame=1024)
    with pytest.raises(ProtocolError):
        for byte in MALFORMED[name]:
            assert parser.feed(bytes([byte])) == []


def test_frames_split_anywhere_parse_the_same() -> None:
    stream = (
        b"\n\r\n"  # heart-beats
        + SEND
        + b"content-length:5\nreply-to:a\\cb\n\nx\0y\0z\0"
        + SEND
        + b"\n{}\0\n"
    )
    whole = FrameParser().feed(stream)
    parser = FrameParser()
    pieces = [frame for byte in stream for frame in parser.feed(bytes([byte]))]
    assert pieces == whole
    assert [frame.body for frame in whole] == [b"x\0y\0z", b"{}"]
    assert whole[0].headers["reply-to"] == "a:b"


def test_header_block_is_refused_just_past_its_limit() -> None:
    parser = FrameParser()
    assert parser.feed(SEND + b"x:" + b"a" * (MAX_HEAD - len(SEND) - 2)) == []
    with pytest.raises(ProtocolError, match="headers too large"):
        parser.feed(b"a")


def test_body_without_content_length_is_refused_just_past_the_limit() -> None:
    parser = FrameParser(max_frame=1024)
    assert parser.feed(SEND + b"\n" + b"x" * 1024) == []
    with pytest.raises(ProtocolError, match="larger than 1024"):
        parser.feed(b"x")


def test_content_length_over_the_limit_is_refused_before_the_body() -> None:
    with pytest.raises(ProtocolError, match="larger than 1024"):
        FrameParser(max_frame=1024).feed(SEND + b"content-length:1025\n\n")


def test_clear_gives_a_partial_frame_back_at_once() -> None:
    parser = FrameParser()
    tracemalloc.start()
    try:
        parser.feed(SEND + b"\n" + b"x" * (4 << 20))  # a 4 MiB body, no NUL yet
        held = tracemalloc.get_traced_memory()[0]
        parser.clear()
        released = held - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert released >= 4 << 20
    assert parser.feed(SEND + b"\n{}\0") == [
        Frame("SEND", {"destination": "jms.topic.vdsm_requests"}, b"{}")
    ]


# -- the server's limits (in-process, plain TCP) ---------------------------------------


class Pings:
    """A request sink answering every request with its own body."""

    def submit(self, body: bytes, reply: Callable[[bytes], None]) -> Future:
        reply(body)
        done: Future = Future()
        done.set_result(None)
        return done


def serving(scenario: Callable[[StompServer], Awaitable[None]]) -> None:
    """Run ``scenario`` against a fresh server capped at 3 connections."""

    async def main() -> None:
        server = StompServer(Pings(), None, max_connections=3)
        await server.start("127.0.0.1", 0)
        try:
            await asyncio.wait_for(scenario(server), 20.0)
        finally:
            await server.close()

    asyncio.run(main())


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.probes = 0

    @classmethod
    async def open(cls, port: int, source: str = "127.0.0.1", connect: bool = True) -> Client:
        sock = socket.socket()
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        client = cls(*await asyncio.open_connection(sock=sock))
        if connect:
            client.writer.write(b"CONNECT\naccept-version:1.2\n\n\0")
            assert (await client.frame()).startswith(b"CONNECTED\n")
        return client

    async def frame(self, timeout: float = 5.0) -> bytes:
        return (await asyncio.wait_for(self.reader.readuntil(b"\0"), timeout)).lstrip(b"\n")

    async def rest(self, timeout: float = 5.0) -> bytes:
        """All until the server closes."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    async def alive(self) -> bool:
        self.probes += 1  # a new subscription id each time: a repeated one is an error
        self.writer.write(b"SUBSCRIBE\nid:p%d\ndestination:x\nreceipt:r\n\n\0" % self.probes)
        try:
            return (await self.frame(2.0)).startswith(b"RECEIPT\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return False

    def close(self) -> None:
        self.writer.close()


def test_connect_deadline_counts_from_the_start_not_per_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection_module, "CONNECT_TIMEOUT", 0.6)

    async def scenario(server: StompServer) -> None:
        client = await Client.open(server.port, connect=False)
        started = time.monotonic()
        for byte in b"CONNECT\naccept-version:1.2\nx:" + b"y" * 20:
            if client.reader.at_eof() or client.reader._buffer:  # type: ignore[attr-defined]
                break  # the server spoke: its ERROR
            client.writer.write(bytes([byte]))
            await asyncio.sleep(0.1)  # a byte every 0.1 s: each read well in time
        reply = await client.rest()
        assert b"no CONNECT frame in time" in reply
        assert time.monotonic() - started < 1.5
        client.close()

    serving(scenario)


def test_newcomer_at_the_cap_pushes_out_the_busiest_peers_silent_connection() -> None:
    async def scenario(server: StompServer) -> None:
        engine = await Client.open(server.port, "127.0.0.1")
        flood = [await Client.open(server.port, "127.0.0.2") for _ in range(2)]
        await asyncio.sleep(0.05)
        assert await flood[1].alive()  # flood[0] is now the longest silent
        late = await Client.open(server.port, "127.0.0.2")
        assert b"too many connections" in await flood[0].rest()
        assert await engine.alive() and await flood[1].alive() and await late.alive()
        assert len(server.connections) == 3
        for client in (engine, *flood, late):
            client.close()

    serving(scenario)


def test_connection_that_never_sent_connect_goes_first() -> None:
    async def scenario(server: StompServer) -> None:
        engine = await Client.open(server.port, "127.0.0.1")
        idle = await Client.open(server.port, "127.0.0.2")
        mute = await Client.open(server.port, "127.0.0.2", connect=False)
        late = await Client.open(server.port, "127.0.0.2")
        assert b"too many connections" in await mute.rest()
        assert await idle.alive() and await engine.alive() and await late.alive()
        for client in (engine, idle, mute, late):
            client.close()

    serving(scenario)


class HeldRequests:
    """A request sink that answers only when told: what frontd submitted and
    has not had answered yet is what a slow superd would hold."""

    def __init__(self) -> None:
        self.waiting: list[tuple[bytes, Callable[[bytes], None], Future]] = []

    def submit(self, body: bytes, reply: Callable[[bytes], None]) -> Future:
        future: Future = Future()
        self.waiting.append((body, reply, future))
        return future

    def answer_one(self) -> None:
        body, reply, future = self.waiting.pop(0)
        reply(body)
        future.set_result(None)


def held_serving(scenario: Callable[[StompServer, HeldRequests], Awaitable[None]]) -> None:
    async def main() -> None:
        sink = HeldRequests()
        server = StompServer(sink, None)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        try:
            await asyncio.wait_for(scenario(server, sink), 20.0)
        finally:
            for _, _, future in sink.waiting:
                future.set_result(None)
            await server.close()

    asyncio.run(main())


def request(n: int) -> bytes:
    return send_frame(b'{"jsonrpc":"2.0","id":%d,"method":"Host.ping2"}' % n, "r")


async def settle(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_pipelined_requests_beyond_the_in_flight_cap_wait_unread() -> None:
    async def scenario(server: StompServer, sink: HeldRequests) -> None:
        pipeliner = await Client.open(server.port)
        pipeliner.writer.write(b"".join(request(n) for n in range(20)))
        await settle(lambda: len(sink.waiting) == MAX_IN_FLIGHT)
        await asyncio.sleep(0.2)
        assert len(sink.waiting) == MAX_IN_FLIGHT  # the other 16 are not read
        engine = await Client.open(server.port, "127.0.0.2")
        engine.writer.write(request(100))
        await settle(lambda: len(sink.waiting) == MAX_IN_FLIGHT + 1)  # not starved
        sink.answer_one()
        await settle(lambda: len(sink.waiting) == MAX_IN_FLIGHT + 1)  # the next one read
        assert b'"id":%d' % MAX_IN_FLIGHT in sink.waiting[-1][0]
        for client in (pipeliner, engine):
            client.close()

    held_serving(scenario)


def test_a_paused_client_is_not_dropped_for_missed_heart_beats() -> None:
    async def scenario(server: StompServer, sink: HeldRequests) -> None:
        client = await Client.open(server.port, connect=False)
        client.writer.write(b"CONNECT\naccept-version:1.2\nheart-beat:0,200\n\n\0")
        assert (await client.frame()).startswith(b"CONNECTED\n")
        client.writer.write(b"".join(request(n) for n in range(MAX_IN_FLIGHT + 2)))
        for _ in range(8):  # heart-beats sent, unread by the paused server: 0.8 s
            client.writer.write(b"\n")
            await asyncio.sleep(0.1)
        assert len(server.connections) == 1
        for _ in range(3):
            sink.answer_one()
        assert await client.alive()
        client.close()

    held_serving(scenario)


def test_a_client_that_never_reads_is_dropped_past_its_outbox_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stomp_limits, "OUTBOX_QUIET", 64 * 1024)
    monkeypatch.setattr(stomp_limits, "MAX_OUTBOX", 512 * 1024)

    async def scenario(server: StompServer) -> None:
        slow = await Client.open(server.port)
        slow.writer.write(b"SUBSCRIBE\nid:s\ndestination:r\n\n\0")
        padding = b" " * 60_000  # each answer (the echoed body) is 60 kB
        body = b'{"jsonrpc":"2.0","id":1,"method":"Host.ping2"}' + padding
        frame = send_frame(body, "r")
        engine = await Client.open(server.port, "127.0.0.2")
        try:
            for _ in range(200):  # 12 MB of answers, never read
                slow.writer.write(frame)
                await slow.writer.drain()
        except ConnectionResetError:
            pass  # dropped without a goodbye: what it was sent is never read
        await settle(lambda: len(server.connections) == 1)
        assert await engine.alive()
        slow.close()
        engine.close()

    serving(scenario)
