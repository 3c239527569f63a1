"""Clients for ``test_wire_hostile``: the hostile one (raw sockets) and the
well-behaved engine (stomp.py), both inside a Lab's engine namespace, and
frontd's process as /proc shows it.

The engine namespace holds the engine's address 192.0.2.1 and, added by the
test, ``HOSTILE_IP``: frontd tells the two apart as it would two hosts.
Sockets are opened by threads that entered the namespace (``setns`` moves
only the calling thread), so the test process opens nothing in the root
namespace.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import stomp

from demo.engine import Collector, send_request
from demo.lab import HOST_CONTROL_IP, STOMP_PORT, Lab
from frontd.stomp_connection import DEFAULT_REPLY_TO, REQUESTS
from persistence.atomic import libc

HOSTILE_IP = "192.0.2.2"  # a second address of the engine namespace
ANSWER_WITHIN = 5.0  # s: the good client's Host.getCapabilities, connection included
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h: pick the port at connect, not at bind
CONNECT = b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0"


# -- sockets inside the engine namespace ---------------------------------------------

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def enter_netns(name: str) -> None:
    """Move the calling thread (only it) into network namespace ``name``."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc().setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")
    finally:
        os.close(fd)


def hostile_tcp(timeout: float) -> socket.socket | None:
    """A TCP socket from HOSTILE_IP to frontd (call it inside the namespace)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((HOSTILE_IP, 0))
        sock.connect((HOST_CONTROL_IP, STOMP_PORT))
    except OSError:
        sock.close()
        return None
    return sock


def _connect_many(count: int, window: int, timeout: float = 60.0) -> list[socket.socket]:
    """See Site.tcp_many (call it inside the namespace)."""
    pending: dict[int, socket.socket] = {}
    connected: list[socket.socket] = []
    poller = select.poll()
    started, deadline = 0, time.monotonic() + timeout
    while (started < count or pending) and time.monotonic() < deadline:
        while started < count and len(pending) < window:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((HOSTILE_IP, 0))
            sock.setblocking(False)
            sock.connect_ex((HOST_CONTROL_IP, STOMP_PORT))  # EINPROGRESS
            pending[sock.fileno()] = sock
            poller.register(sock, select.POLLOUT)
            started += 1
        for fd, _ in poller.poll(100):
            sock = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                sock.setblocking(True)
                connected.append(sock)
            else:
                sock.close()
    for sock in pending.values():
        sock.close()
    return connected


def stomp_py(pki: Path) -> tuple[Any, Collector]:
    """stomp.py as the engine uses it, subscribed to the responses (call it
    inside the namespace). Heart-beats every 5 s, frontd drops it after 10 s
    without: the engine's 1 s would let a loaded test machine, not frontd,
    cost the held connection its life."""
    target = [(HOST_CONTROL_IP, STOMP_PORT)]
    conn = stomp.Connection12(
        target, heartbeats=(5000, 5000), reconnect_attempts_max=1, timeout=ANSWER_WITHIN
    )
    conn.set_ssl(
        for_hosts=target,
        key_file=str(pki / "engine.key"),
        cert_file=str(pki / "engine.crt"),
        ca_certs=str(pki / "ca.crt"),
    )
    got = Collector()
    conn.set_listener("collector", got)
    conn.connect(wait=True)
    conn.subscribe(DEFAULT_REPLY_TO, id="responses", receipt="subscribed")
    got.wait_for(lambda: "subscribed" in got.receipts, ANSWER_WITHIN)
    return conn, got


class Site:
    """The lab, threads inside its engine namespace, and the two clients."""

    def __init__(self, lab: Lab, figures: list[str]) -> None:
        self.lab, self.figures = lab, figures
        self.pid = lab.frontd.pid  # type: ignore[union-attr]  # ip netns exec execs python
        self.pool = ThreadPoolExecutor(16, initializer=enter_netns, initargs=(lab.engine_ns,))
        self.context = ssl.create_default_context(cafile=str(lab.pki / "ca.crt"))
        self.context.load_cert_chain(str(lab.pki / "engine.crt"), str(lab.pki / "engine.key"))
        self.engine: Any = None  # stomp.py connection opened before any abuse
        self.engine_got: Any = None

    def run(self, function: Callable[..., T], *args: Any, timeout: float = 120.0) -> T:
        """``function(*args)`` in a thread of the engine namespace (a thread
        stuck past ``timeout`` is left behind: the test has failed anyway)."""
        return self.pool.submit(function, *args).result(timeout)

    # -- the hostile client (raw sockets from HOSTILE_IP) --------------------
    def tcp(self) -> socket.socket:
        sock = self.run(hostile_tcp, 5.0)
        assert sock is not None, "cannot reach frontd"
        return sock

    def tcp_many(self, count: int, window: int = 256) -> list[socket.socket]:
        """Up to ``count`` TCP sockets, ``window`` connects in flight at once
        (non-blocking: a SYN dropped on frontd's full accept queue waits its
        1 s retry without holding up the others)."""
        return self.run(_connect_many, count, window)

    def tls(self) -> ssl.SSLSocket:
        sock = self.tcp()
        try:
            return self.context.wrap_socket(sock, server_hostname=HOST_CONTROL_IP)
        except BaseException:
            sock.close()
            raise

    def stomp(self, connect: bytes = CONNECT) -> ssl.SSLSocket:
        """A raw TLS socket past CONNECTED."""
        raw = self.tls()
        try:
            raw.sendall(connect)
            assert read_frame(raw).startswith(b"CONNECTED\n")
        except BaseException:
            raw.close()
            raise
        return raw

    # -- the well-behaved engine (stomp.py from the engine's own address) ----
    def connect_engine(self) -> None:
        """The connection held through every abuse."""
        self.engine, self.engine_got = self.run(stomp_py, self.lab.pki)

    def fresh_answer_seconds(self) -> float:
        """A new stomp.py connection's Host.getCapabilities, connect to answer."""

        def call() -> float:
            started = time.monotonic()
            conn, got = stomp_py(self.lab.pki)
            try:
                answer, _ = got.answer(send_request(conn, "Host.getCapabilities"), ANSWER_WITHIN)
                assert "networks" in answer["result"], answer
                return time.monotonic() - started
            finally:
                conn.disconnect()

        # stomp.py waits for CONNECTED without a bound: this is the bound.
        return self.run(call, timeout=ANSWER_WITHIN + 5.0)

    def engine_answer_seconds(self) -> float:
        """The connection opened before the abuse: Host.getCapabilities."""
        started = time.monotonic()
        request_id = send_request(self.engine, "Host.getCapabilities")
        answer, _ = self.engine_got.answer(request_id, ANSWER_WITHIN)
        assert "networks" in answer["result"], answer
        return time.monotonic() - started

    def assert_responsive(self, label: str) -> float:
        """frontd runs and both good clients are answered within ANSWER_WITHIN;
        the slower of the two latencies."""
        assert self.lab.frontd is not None and self.lab.frontd.poll() is None, "frontd died"
        fresh = self.fresh_answer_seconds()
        held = self.engine_answer_seconds()
        worst = max(fresh, held)
        assert worst < ANSWER_WITHIN
        self.figures.append(
            f"{label}: good client answered in {fresh:.3f} s (new), {held:.3f} s (held)"
        )
        return worst

    # -- frontd's process ----------------------------------------------------
    def rss(self) -> int:
        """frontd's VmRSS in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def close(self) -> None:
        if self.engine is not None:
            try:
                self.run(self.engine.disconnect)
            except Exception:  # frontd may be gone: the lab's teardown tells
                pass
        self.pool.shutdown(wait=False, cancel_futures=True)


# -- raw frame helpers --------------------------------------------------------------


def read_frame(sock: ssl.SSLSocket, timeout: float = ANSWER_WITHIN) -> bytes:
    """One server frame (up to its NUL) from a connection without heart-beats."""
    sock.settimeout(timeout)
    data = b""
    while b"\0" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data[:200]!r}"
        data += chunk
    frame, _, rest = data.partition(b"\0")
    assert not rest.strip(b"\n"), "one frame at a time here"
    return frame.lstrip(b"\r\n")


def read_until_closed(sock: socket.socket, timeout: float = ANSWER_WITHIN) -> tuple[bytes, bool]:
    """What frontd sends until it closes; (data, True) once closed, or
    (data, False) if it still holds the connection after ``timeout``."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data, False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except (ssl.SSLError, ConnectionResetError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send what frontd lets us: it may close in the middle, that is its right."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
        pass


def is_error_frame(data: bytes) -> bool:
    head = data.lstrip(b"\r\n").partition(b"\n\n")[0]
    return head.startswith(b"ERROR\n") and b"\nmessage:" in head and data.endswith(b"\0")


def send_frame(body: bytes, reply_to: str) -> bytes:
    headers = f"destination:{REQUESTS}\nreply-to:{reply_to}\ncontent-length:{len(body)}\n"
    return b"SEND\n" + headers.encode() + b"\n" + body + b"\0"


def still_open(socks: list[Any]) -> list[Any]:
    """The sockets frontd has sent nothing to. To an idle client frontd sends
    nothing but its closing (ERROR frame, close_notify, FIN or reset), so a
    readable socket is one it closed or is closing."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    readable = {fd for fd, _ in poller.poll(0)}
    return [sock for sock in socks if sock.fileno() not in readable]
