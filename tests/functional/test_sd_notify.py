"""Both daemons speak systemd's readiness protocol (their units are
``Type=notify``): READY=1 once every listener accepts, STOPPING=1 on
SIGTERM. systemd is played by a datagram socket the test binds and names in
``$NOTIFY_SOCKET``; the daemons are the real ones, in a Lab's host namespace
(frontd dropping to ``nobody`` before it notifies)."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.lab import SOURCE_ROOT, STOMP_PORT, Lab

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
WAIT = 30.0
SYS_TGKILL = 234  # x86_64


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


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """Send ``signum`` to one thread of ``pid`` (what the kernel may pick
    for a signal sent to the whole process)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_TGKILL, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="tgkill's number is x86_64's")
def test_superd_stops_when_sigterm_lands_on_another_of_its_threads(
    lab: Lab, notify: NotifySocket
) -> None:
    """The kernel delivers a process's SIGTERM to any thread not blocking
    it; the main thread, idle in select(), must still wake and stop."""
    lab.superd = spawn(lab, "superd.main", notify)
    notify.wait_for(b"READY=1", lab.superd)
    pid = lab.superd.pid  # ip netns exec execs python
    others = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
    assert others, "superd runs its netlink monitor in a thread of its own"
    _tgkill(pid, others[0], signal.SIGTERM)
    notify.wait_for(b"STOPPING=1", lab.superd, timeout=10.0)
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


# -- frontd as its unit starts it: its user from the start, no capability -------

NOBODY = 65534


def system_python() -> str | None:
    """An interpreter ``nobody`` may run (this one may live in root's home)
    of the same version, so that the venv's compiled modules load."""
    for candidate in (f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}",):
        if Path(candidate).exists():
            return candidate
    return None


def unprivileged_frontd(lab: Lab, notify: NotifySocket) -> subprocess.Popen:
    """frontd as ``User=`` starts it: uid/gid nobody, no capability, no new
    privileges. It reads its key through its group (0640 root:nogroup, as
    tmpfiles.d sets root:netreload) and owns its socket's folder."""
    python = system_python()
    if python is None:
        pytest.skip("no system python of this version for an unprivileged frontd")
    lab.pki.chmod(0o750)
    os.chown(lab.pki, 0, NOBODY)
    os.chown(lab.pki / "host.key", 0, NOBODY)
    (lab.pki / "host.key").chmod(0o640)
    folder = lab.run_dir / "frontd"
    folder.mkdir(mode=0o750)
    os.chown(folder, NOBODY, NOBODY)
    config = lab.config_path.read_text()
    old = f"unix_socket = {lab.run_dir / 'frontd.sock'}\n"
    assert old in config
    lab.config_path.write_text(config.replace(old, f"unix_socket = {folder / 'frontd.sock'}\n"))
    site = sorted(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": str(notify.path),
           "PYTHONPATH": os.pathsep.join([str(SOURCE_ROOT), *map(str, site)])}  # fmt: skip
    with (lab.logs / "frontd.log").open("ab") as log:
        return subprocess.Popen(
            ["ip", "netns", "exec", lab.host_ns,
             "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
             python, "-m", "frontd.main", "--config", str(lab.config_path)],
            stdout=log, stderr=log, cwd=SOURCE_ROOT, env=env,
        )  # fmt: skip


def test_frontd_started_as_its_user_without_capabilities_serves(
    lab: Lab, notify: NotifySocket
) -> None:
    lab.start_superd()
    lab.frontd = unprivileged_frontd(lab, notify)
    notify.wait_for(b"READY=1", lab.frontd)
    status = Path(f"/proc/{lab.frontd.pid}/status").read_text()
    assert f"Uid:\t{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}" in status
    assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status
    engine = lab.engine()
    assert "networks" in engine.result("Host.getNetworkCapabilities")
    cli = lab.cli("--json", "caps")
    assert cli.returncode == 0 and "networks" in json.loads(cli.stdout), cli.stderr
