"""superd as a daemon for the functional tests: ``python -m superd.main``
under ``ip netns exec``.

``Superd`` starts it in a test's ``nrs-*`` namespace with veth NICs
(configuration, run/lib dirs and resolv.conf under ``tmp_path``; the socket
under a world-traversable folder in /tmp so another uid can reach it), waits
for READY=1 on a NOTIFY_SOCKET; ``Client`` talks to it with ``shared.wire``
frames; the helpers build plans as frontd would and read the kernel back with
``ip -j``. The fixtures ``make_ns``, ``superd`` and ``client`` are conftest's.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from shared.wire import encode_frame, recv_frame
from tests.functional.agent import Agent
from tests.functional.conftest import HostNs, ip_json

REPO = Path(__file__).resolve().parents[2]
FRONTD_USER = "daemon"  # admitted besides root; tests connect as "nobody" to be refused
NO_CHECK = {"connectivityCheck": False}


class Client:
    """One connection to superd, speaking ``shared.wire`` frames."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.next_id = 1

    def call(self, verb: str, **args: Any) -> dict:
        request_id, self.next_id = self.next_id, self.next_id + 1
        self.sock.sendall(encode_frame({"id": request_id, "verb": verb, "args": args}))
        answer = recv_frame(self.sock)
        assert answer is not None and answer["id"] == request_id, answer
        return answer

    def result(self, verb: str, **args: Any) -> Any:
        answer = self.call(verb, **args)
        assert answer["ok"], answer
        return answer["result"]

    def close(self) -> None:
        self.sock.close()


class Superd:
    """A superd process in ``host``'s namespace, with its files under ``root``."""

    def __init__(
        self, host: HostNs, root: Path, sock_dir: Path, frontd_user: str = FRONTD_USER
    ) -> None:
        self.host, self.root = host, root
        self.socket = sock_dir / "sub" / "superd.sock"  # "sub" is superd's to create
        self.config = root / "netreload.conf"
        self.log = root / "superd.log"
        self.proc: subprocess.Popen | None = None
        self.notify: socket.socket | None = None  # our NOTIFY_SOCKET, open while it runs
        self.env: dict[str, str] = {}
        for folder in ("run", "lib"):
            (root / folder).mkdir(exist_ok=True)
        self.config.write_text(
            "[vars]\nnet_configurator = iproute2\nfake_nics = veth_*,dummy_*\n"
            f"[paths]\nrun_dir = {root / 'run'}\nlib_dir = {root / 'lib'}\n"
            f"resolv_conf = {root / 'resolv.conf'}\n"
            f"[superd]\nsocket = {self.socket}\n[frontd]\nuser = {frontd_user}\n"
        )

    def spawn(self, notify_path: Path | None = None) -> subprocess.Popen:
        # PYTHONFAULTHANDLER: a superd that will not stop is sent SIGABRT,
        # and its log then shows where each of its threads was.
        env = {**os.environ, **self.env, "NOTIFY_SOCKET": str(notify_path or ""),
               "PYTHONFAULTHANDLER": "1"}  # fmt: skip
        with self.log.open("a") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.host.name, sys.executable, "-m", "superd.main",
                 "--config", str(self.config)],
                cwd=REPO, stdout=log, stderr=log, env=env,
            )  # fmt: skip

    def start(self, timeout: float = 30.0) -> None:
        """Start superd and wait for its READY=1."""
        notify_path = self.root / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        self.proc = self.spawn(notify_path)
        if self.notified(b"READY=1", timeout):
            assert self.socket.exists()
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGABRT)  # its threads' stacks to the log
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        raise AssertionError(f"superd did not become ready; log:\n{self.log_text()[-20000:]}")

    def notified(self, state: bytes, timeout: float) -> bool:
        assert self.notify is not None
        self.notify.settimeout(0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.notify.recv(256) == state:
                    return True
            except TimeoutError:
                if self.proc is None or self.proc.poll() is not None:
                    return False
        return False

    def wait_for_the_connectivity_wait(self, timeout: float = 120) -> None:
        """Until superd logs that it waits for confirm_connectivity (the
        change applied, verified and committed): once per log."""
        deadline = time.monotonic() + timeout
        while "for confirm_connectivity" not in self.log_text():
            assert time.monotonic() < deadline, "superd did not get to the connectivity wait"
            assert self.proc is not None and self.proc.poll() is None, "superd is gone"
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM; superd's exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # its threads' stacks to the log
            self.proc.wait(timeout=30)
            self.proc = None
            raise AssertionError(f"superd did not stop; log:\n{self.log_text()[-20000:]}") from None
        self.proc = None
        return code

    def reap_killed(self, timeout: float = 60.0) -> None:
        """Wait for a superd that a kill switch SIGKILLed; anything else fails."""
        assert self.proc is not None
        self.proc.wait(timeout=timeout)
        assert self.proc.returncode == -9, self.log_text()[-3000:]
        self.proc = None

    def kill(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if it does not go."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    def __enter__(self) -> Self:
        """Starts superd; leaving the context ends it (``__exit__``), as
        does a start that fails."""
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def connect(self) -> Client:
        return Client(self.socket)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kernel_state(self) -> dict:
        return Agent(self.host, self.root).kernel_state()


def make_plan(
    conn: Client, networks: dict, options: dict | None = None, bondings: dict | None = None
) -> dict:
    """What frontd would send: a plan against the netinfo superd reports."""
    info = conn.result("netinfo")
    plan = plan_setup_networks(
        networks,
        bondings or {},
        options or {},
        NetinfoSnapshot.from_caps(info["caps"], *([info["owned"]] if "owned" in info else [])),
        RunningConfig.from_dict(info["running"]),
    )
    return plan.to_dict()


def apply_in_background(conn: Client, plan: dict) -> tuple[threading.Thread, list[dict]]:
    """``apply_plan`` of ``plan`` sent on ``conn`` from a started thread:
    the thread, and the list its answer is appended to."""
    answers: list[dict] = []
    thread = threading.Thread(target=lambda: answers.append(conn.call("apply_plan", plan=plan)))
    thread.start()
    return thread, answers


def net_a_held_in_its_connectivity_wait(
    superd: Superd, conn: Client, timeout: int
) -> tuple[threading.Thread, list[dict], dict]:
    """net_a, a bridge on veth_0, applied on ``conn`` from a thread under a
    connectivity check of ``timeout`` seconds; once superd waits for
    confirm_connectivity: the thread, the list its answer is appended to,
    and the plan."""
    plan = make_plan(
        conn,
        {"net_a": bridge_net("veth_0")},
        {"connectivityCheck": True, "connectivityTimeout": timeout},
    )
    applying, answers = apply_in_background(conn, plan)
    superd.wait_for_the_connectivity_wait()
    return applying, answers, plan


def bridge_net(nic: str, **attrs: Any) -> dict:
    return {"nic": nic, "bridged": True, **attrs}


def links(ns: str) -> dict[str, dict]:
    return {link["ifname"]: link for link in ip_json(ns, "-d", "link", "show")}


def is_bridge(ns: str, name: str) -> bool:
    link = links(ns).get(name)
    return link is not None and link.get("linkinfo", {}).get("info_kind") == "bridge"


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def error_of(answer: dict) -> tuple[int, str]:
    assert answer["ok"] is False, answer
    return answer["error"]["code"], answer["error"]["message"]


def save_net_a_then_apply_net_b(superd: Superd) -> None:
    """net_a on veth_0 saved as the safe configuration, then net_b on
    veth_1 applied, not saved; superd stopped: the host before a reboot."""
    conn = superd.connect()
    conn.result("apply_plan", plan=make_plan(conn, {"net_a": bridge_net("veth_0")}, NO_CHECK))
    conn.result("set_safe_config")
    conn.result("apply_plan", plan=make_plan(conn, {"net_b": bridge_net("veth_1")}, NO_CHECK))
    conn.close()
    assert superd.stop() == 0


def assert_restore_nets_rebuilds_net_a_alone(superd: Superd) -> None:
    """After :func:`save_net_a_then_apply_net_b` and a reboot: restore_nets
    brings the safe net_a back (veth_0 its port), not net_b."""
    ns = superd.host.name
    conn = superd.connect()
    try:
        assert conn.result("restore_nets")["code"] == 0
        assert is_bridge(ns, "net_a") and links(ns)["veth_0"]["master"] == "net_a"
        assert "net_b" not in links(ns)
        assert set(conn.result("netinfo")["running"]["networks"]) == {"net_a"}
    finally:
        conn.close()


def assert_closed(conn: Client) -> None:
    """The peer closed: end of stream, or a reset when it left our bytes unread."""
    try:
        assert recv_frame(conn.sock) is None
    except ConnectionResetError:
        pass


def send_as(path: Path, user: str, groups: list[str], frame: bytes) -> dict:
    """Fork, drop to ``user`` (supplementary ``groups``), send ``frame`` to
    superd; its answer and, after a refusal, what came next (None: closed)."""
    entry = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            os.setgroups([grp.getgrnam(g).gr_gid for g in groups])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            try:
                sock.connect(str(path))
            except OSError as error:
                os.write(write_end, json.dumps({"connect": type(error).__name__}).encode())
                os._exit(0)
            try:
                sock.sendall(frame)
            except OSError:
                pass  # already refused: the error frame is still there to read
            answer = recv_frame(sock)
            try:
                after = recv_frame(sock) if answer and not answer["ok"] else None
            except ConnectionResetError:
                after = None
            os.write(write_end, json.dumps({"answer": answer, "then": after}).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and data, "child failed"  # a failed child writes nothing
    return json.loads(data)


def connect_as(path: Path, user: str, groups: list[str]) -> dict:
    """Ping superd as ``user``; its answer."""
    return send_as(path, user, groups, encode_frame({"id": 1, "verb": "ping", "args": {}}))
