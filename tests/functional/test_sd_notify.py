"""Both daemons speak systemd's readiness protocol (their units are
``Type=notify``): READY=1 once every listener accepts, STOPPING=1 on
SIGTERM. systemd is played by a datagram socket the test binds and names in
``$NOTIFY_SOCKET``; the daemons are the real ones, in a Lab's host namespace
(frontd dropping to ``nobody`` before it notifies)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontd.demo_support import STOMP_PORT, Lab

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
WAIT = 30.0


class NotifySocket:
    """What systemd listens on: datagrams from the service, in order."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        path.chmod(0o777)  # frontd sends as the user it dropped to
        self.sock.settimeout(0.2)

    def wait_for(self, message: bytes, proc: subprocess.Popen, timeout: float = WAIT) -> list:
        """Every datagram up to and including ``message``."""
        seen: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen.append(self.sock.recv(4096))
            except TimeoutError:
                if proc.poll() is not None:
                    break
                continue
            if seen[-1] == message:
                return seen
        raise AssertionError(f"no {message!r} (got {seen}, exit {proc.poll()})")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(prefix="nrn-") as the_lab:
        yield the_lab


@pytest.fixture
def notify(lab: Lab) -> Iterator[NotifySocket]:
    sock = NotifySocket(lab.root / "systemd-notify.sock")
    yield sock
    sock.close()


def connects_in(lab: Lab, *, tcp_port: int | None = None, unix: Path | None = None) -> bool:
    """A client in the host namespace can connect to each listener named."""
    code = "import socket,sys\n"
    if tcp_port is not None:
        code += f"socket.create_connection(('127.0.0.1', {tcp_port}), 2).close()\n"
    if unix is not None:
        code += f"s = socket.socket(socket.AF_UNIX); s.connect({str(unix)!r}); s.close()\n"
    proc = subprocess.run(
        ["ip", "netns", "exec", lab.host_ns, sys.executable, "-c", code],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    return proc.returncode == 0


def spawn(lab: Lab, module: str, notify: NotifySocket) -> subprocess.Popen:
    return lab._spawn(module, module.split(".")[0], {"NOTIFY_SOCKET": str(notify.path)})


def test_superd_is_ready_once_its_socket_accepts(lab: Lab, notify: NotifySocket) -> None:
    lab.superd = spawn(lab, "superd.main", notify)
    notify.wait_for(b"READY=1", lab.superd)
    assert connects_in(lab, unix=lab.run_dir / "superd.sock")


def test_superd_says_stopping_on_sigterm(lab: Lab, notify: NotifySocket) -> None:
    lab.superd = spawn(lab, "superd.main", notify)
    notify.wait_for(b"READY=1", lab.superd)
    lab.superd.send_signal(signal.SIGTERM)
    notify.wait_for(b"STOPPING=1", lab.superd)
    assert lab.superd.wait(WAIT) == 0


def test_frontd_is_ready_once_stomp_and_its_unix_socket_accept(
    lab: Lab, notify: NotifySocket
) -> None:
    lab.start_superd()
    lab.frontd = spawn(lab, "frontd.main", notify)
    messages = notify.wait_for(b"READY=1", lab.frontd)
    assert messages == [b"READY=1"]
    assert connects_in(lab, tcp_port=STOMP_PORT, unix=lab.run_dir / "frontd.sock")


def test_frontd_says_stopping_on_sigterm(lab: Lab, notify: NotifySocket) -> None:
    lab.start_superd()
    lab.frontd = spawn(lab, "frontd.main", notify)
    notify.wait_for(b"READY=1", lab.frontd)
    lab.frontd.send_signal(signal.SIGTERM)
    notify.wait_for(b"STOPPING=1", lab.frontd)
    assert lab.frontd.wait(WAIT) == 0
