"""A throw-away lab for ``make demo`` and the end-to-end tests: netreload's
real daemons driven by a real STOMP client, never touching this machine's
own networking.

* :class:`Lab` — two network namespaces: a *host* with the NICs ``veth_0``
  and ``veth_1``, an *engine* holding their peers ``p_0`` and ``p_1``. The
  control path is ``veth_1`` (``192.0.2.10/24``, set out of band as an
  installer would) ↔ ``p_1`` (``192.0.2.1/24``). Everything netreload writes
  (configuration, PKI, run and lib dirs, sockets, logs) lives in one folder
  under /tmp. superd and frontd run in the host namespace, the engine in the
  engine namespace; :meth:`Lab.close` kills them and deletes both namespaces.
* :func:`make_pki` — a test CA, a host (server) and an engine (client)
  certificate, from the ``openssl`` CLI.
* :class:`Engine` — stomp.py (a client library nobody on this project wrote)
  playing the engine, in its own process inside the engine namespace
  (``python -m demo.lab engine …``), driven line by line with
  JSON over its stdin/stdout. :func:`connect_engine`, :class:`Collector` and
  :func:`send_request` are the stomp.py side of it, usable in-process too.

Needs root, ``ip`` (iproute2), ``openssl`` and stomp.py (``.[test]``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stomp

from frontd.stomp_connection import DEFAULT_REPLY_TO, EVENTS, REQUESTS

SOURCE_ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0
STOMP_PORT = 54321
HOST_CONTROL_IP = "192.0.2.10"
ENGINE_CONTROL_IP = "192.0.2.1"
CONTROL_PREFIX = 24
CONTROL_NIC = "veth_1"
KEY_IDS = "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"

# The management network both the demo and the end-to-end tests set up.
MGMT_NET = "ovirtmgmt"
MGMT_NET_ATTRS = {
    "nic": "veth_0",
    "bridged": True,
    "ipaddr": "198.51.100.10",
    "prefix": 24,
    "gateway": "198.51.100.1",
    "defaultRoute": True,
}


# -- certificates (openssl CLI) ------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(folder: Path, name: str, days: int = 2) -> None:
    """``name.crt``/``name.key``: a self-signed CA in ``folder``."""
    openssl(
        "req", "-x509", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.crt",
        "-days", str(days), "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def make_leaf(folder: Path, name: str, ca: str, extensions: str, days: int = 2) -> None:
    """``name.crt``/``name.key`` signed by the CA ``ca`` with ``extensions``."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl(
        "req", "-new", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
        "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", str(days),
        "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


def make_pki(
    folder: Path, host_ips: tuple[str, ...] = ("127.0.0.1",), host_names: tuple[str, ...] = ()
) -> Path:
    """``ca``, ``host`` (serverAuth, SAN ``host_ips``/``host_names``) and
    ``engine`` (clientAuth) in ``folder``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    make_ca(folder, "ca")
    san = ",".join([f"IP:{ip}" for ip in host_ips] + [f"DNS:{name}" for name in host_names])
    server = f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n"
    make_leaf(folder, "host", "ca", KEY_IDS + server)
    make_leaf(folder, "engine", "ca", KEY_IDS + "extendedKeyUsage=clientAuth\n")
    return folder


# -- the engine's STOMP client (stomp.py) ----------------------------------------


class Collector(stomp.ConnectionListener):
    """A stomp.py listener keeping every MESSAGE and RECEIPT, with waits on them."""

    def __init__(self) -> None:
        self.messages: list = []
        self.receipts: list[str] = []
        self.errors: list = []
        self.disconnected = threading.Event()
        self._changed = threading.Condition()

    def on_message(self, frame) -> None:
        with self._changed:
            self.messages.append(frame)
            self._changed.notify_all()

    def on_receipt(self, frame) -> None:
        with self._changed:
            self.receipts.append(frame.headers["receipt-id"])
            self._changed.notify_all()

    def on_error(self, frame) -> None:
        self.errors.append(frame)

    def on_disconnected(self) -> None:
        self.disconnected.set()

    def wait_for(self, predicate: Callable[[], object], timeout: float = WAIT) -> None:
        with self._changed:
            assert self._changed.wait_for(predicate, timeout), "timed out"

    def find(self, request_id: str) -> tuple[dict, object] | None:
        with self._changed:
            for frame in self.messages:
                body = json.loads(frame.body)
                if body.get("id") == request_id:
                    return body, frame
        return None

    def answer(self, request_id: str, timeout: float = WAIT) -> tuple[dict, object]:
        """The JSON-RPC response with ``request_id`` and its MESSAGE frame."""
        self.wait_for(lambda: self.find(request_id) is not None, timeout)
        return self.find(request_id)  # type: ignore[return-value]

    def events(self) -> list[dict]:
        with self._changed:
            return [
                json.loads(f.body) for f in self.messages if f.headers.get("destination") == EVENTS
            ]


def connect_engine(
    port: int, pki: Path, cert: str = "engine", host: str = "127.0.0.1", timeout: float = WAIT
):
    """A connected stomp.py ``Connection12`` (TLS with ``cert``) and its Collector."""
    conn = stomp.Connection12(
        [(host, port)], heartbeats=(1000, 1000), reconnect_attempts_max=1, timeout=timeout
    )
    conn.set_ssl(
        for_hosts=[(host, port)],
        key_file=str(pki / f"{cert}.key"),
        cert_file=str(pki / f"{cert}.crt"),
        ca_certs=str(pki / "ca.crt"),
    )
    collector = Collector()
    conn.set_listener("collector", collector)
    conn.connect(wait=True)
    return conn, collector


def send_request(conn, method: str, params: dict | None = None, **headers: str) -> str:
    """SEND a JSON-RPC request to the requests topic; its id."""
    request_id = str(uuid.uuid4())
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
    )
    conn.send(
        REQUESTS,
        body,
        content_type="application/json",
        headers={"reply-to": DEFAULT_REPLY_TO, **headers},
    )
    return request_id


# -- the engine process ------------------------------------------------------------


class EngineError(Exception):
    """A JSON-RPC error answer: the agent's code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"code {code}: {message}")
        self.code, self.message = code, message


class Engine:
    """stomp.py in its own process inside ``netns``, connected to frontd at
    ``host:port`` over mutual TLS and subscribed to the responses and the
    events. One STOMP connection for the Engine's whole life."""

    def __init__(self, netns: str, host: str, port: int, pki: Path, log: Path) -> None:
        self.log = log
        self._buffer = b""
        with log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable, "-m", "demo.lab",
                 "engine", "--connect", f"{host}:{port}", "--pki", str(pki)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=SOURCE_ROOT,
            )  # fmt: skip
        try:
            self._read(WAIT + 5)
        except BaseException:
            self.close()
            raise

    def call(
        self,
        method: str,
        params: dict | None = None,
        ping: float = 0.0,
        timeout: float = 60.0,
    ) -> dict:
        """The JSON-RPC response to ``method``. ``ping`` > 0: send
        ``Host.ping2`` every ``ping`` seconds until the answer comes, as the
        engine does during setupNetworks' connectivity check; the number sent
        is in the response's ``"pings"``."""
        command = {"call": method, "params": params or {}, "ping": ping, "timeout": timeout}
        return self._exchange(command, timeout + 5)

    def result(self, method: str, params: dict | None = None, **kwargs: Any) -> Any:
        """The ``result`` of ``method``; an error answer raises EngineError."""
        answer = self.call(method, params, **kwargs)
        if "error" in answer:
            raise EngineError(answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    def events(self) -> list[dict]:
        """Every notification received on ``jms.queue.events`` so far."""
        return self._exchange({"events": True}, WAIT)["events"]

    def connected(self) -> bool:
        return self._exchange({"connected": True}, WAIT)["connected"]

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # EOF: the engine disconnects and exits
            except OSError:
                pass
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _exchange(self, command: dict, timeout: float) -> dict:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(command).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise RuntimeError(f"the engine process is gone:\n{self._log()}") from None
        return self._read(timeout)

    def _read(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the engine did not answer in {timeout:g} s:\n{self._log()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"the engine process exited:\n{self._log()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply = json.loads(line)
        if "fault" in reply:
            raise RuntimeError(f"engine: {reply['fault']}\n{self._log()}")
        return reply

    def _log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def _engine_command(conn, got: Collector, command: dict) -> dict:
    if command.get("events"):
        return {"events": got.events()}
    if command.get("connected"):
        return {"connected": bool(conn.is_connected())}
    method, timeout = command["call"], float(command.get("timeout", 60))
    interval = float(command.get("ping") or 0)
    started = time.monotonic()
    request_id = send_request(conn, method, command.get("params") or {})
    pings = 0
    if interval > 0:
        deadline = started + timeout
        while (
            got.find(request_id) is None
            and not got.disconnected.is_set()
            and time.monotonic() < deadline
        ):
            send_request(conn, "Host.ping2")
            pings += 1
            time.sleep(interval)
    remaining = max(0.1, timeout - (time.monotonic() - started))
    got.wait_for(lambda: got.find(request_id) or got.disconnected.is_set(), remaining)
    found = got.find(request_id)
    if found is None:
        raise ConnectionError("frontd closed the STOMP connection before answering")
    return {**found[0], "pings": pings, "seconds": round(time.monotonic() - started, 2)}


def serve_engine(
    target: str, connect: Callable[[], tuple[Any, Any]], handle: Callable[[Any, Any, dict], dict]
) -> int:
    """An engine process's loop: connect, then one JSON command per stdin
    line, one JSON reply per stdout line (faults reported, never raised)."""

    def emit(reply: dict) -> None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    try:
        conn, got = connect()
    except Exception as error:  # the parent shows it with the log
        emit({"fault": f"cannot connect to {target}: {type(error).__name__}: {error}"})
        return 1
    emit({"ready": True})
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                emit(handle(conn, got, json.loads(line)))
            except Exception as error:
                emit({"fault": f"{type(error).__name__}: {error}"})
    finally:
        if conn.is_connected():
            conn.disconnect()
    return 0


def engine_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.lab engine")
    parser.add_argument("--connect", required=True, help="frontd's HOST:PORT")
    parser.add_argument("--pki", required=True, type=Path)
    args = parser.parse_args(argv)
    host, _, port = args.connect.rpartition(":")

    def connect() -> tuple[Any, Any]:
        conn, got = connect_engine(int(port), args.pki, host=host)
        conn.subscribe(DEFAULT_REPLY_TO, id="responses", receipt="responses")
        conn.subscribe(EVENTS, id="events", receipt="events")
        got.wait_for(lambda: {"responses", "events"} <= set(got.receipts))
        return conn, got

    return serve_engine(args.connect, connect, _engine_command)


# -- namespaces and daemons ------------------------------------------------------------


def run_ip(*args: str, input_text: str | None = None) -> str:
    proc = subprocess.run(
        ["ip", *args], input=input_text, capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def ip_json(netns: str, *args: str) -> Any:
    out = run_ip("-n", netns, "-j", *args)
    return json.loads(out) if out.strip() else []


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


class Lab:
    """The host and engine namespaces, netreload's files, its daemons and
    engine processes; :meth:`close` (or leaving the ``with`` block) removes
    all of it, whatever state it is in."""

    def __init__(
        self,
        prefix: str = "nre-",
        frontd_user: str = "nobody",
        nics: int = 2,
        extra_config: str = "",
        frontd_config: str = "",
    ) -> None:
        """``extra_config``: INI text appended to the configuration file;
        ``frontd_config``: lines added to its ``[frontd]`` section."""
        self.extra_config = extra_config
        self.frontd_config = frontd_config
        tag = f"{prefix}{secrets.token_hex(3)}"
        self.host_ns, self.engine_ns = f"{tag}-host", f"{tag}-engine"
        self.nics = [f"veth_{i}" for i in range(nics)]
        self.frontd_user = frontd_user
        self.root = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
        # frontd, once it dropped to frontd_user, reaches superd's socket in run/.
        self.root.chmod(0o755)
        self.config_path = self.root / "netreload.conf"
        self.run_dir, self.lib_dir = self.root / "run", self.root / "lib"
        self.pki = self.root / "pki"
        self.logs = self.root / "logs"
        self.superd: subprocess.Popen | None = None
        self.frontd: subprocess.Popen | None = None
        self.engines: list[Engine] = []
        self._notify: socket.socket | None = None

    # -- set-up ---------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def setup(self) -> None:
        """Namespaces, PKI, configuration (no daemon yet)."""
        self.logs.mkdir()
        self.lib_dir.mkdir(mode=0o700)
        self.run_dir.mkdir(mode=0o755)
        (self.root / "resolv.conf").write_text(f"nameserver {ENGINE_CONTROL_IP}\n")
        make_pki(self.pki, host_ips=(HOST_CONTROL_IP,))
        self.pki.chmod(0o700)  # frontd loads it as root, before dropping privileges
        self.config_path.write_text(
            "[vars]\nnet_configurator = iproute2\nnet_persistence = unified\n"
            "fake_nics = veth_*,dummy_*\n"
            f"[paths]\nrun_dir = {self.run_dir}\nlib_dir = {self.lib_dir}\n"
            f"resolv_conf = {self.root / 'resolv.conf'}\n"
            f"[superd]\nsocket = {self.run_dir / 'superd.sock'}\n"
            f"[frontd]\nuser = {self.frontd_user}\n"
            f"unix_socket = {self.run_dir / 'frontd.sock'}\n"
            f"stomp_listen = 0.0.0.0:{STOMP_PORT}\n"
            f"tls_cert = {self.pki / 'host.crt'}\ntls_key = {self.pki / 'host.key'}\n"
            f"tls_ca = {self.pki / 'ca.crt'}\n" + self.frontd_config.rstrip("\n") + "\n"
            + self.extra_config
        )
        run_ip("netns", "add", self.engine_ns)
        run_ip("-n", self.engine_ns, "link", "set", "lo", "up")
        self.create_host()

    def create_host(self) -> None:
        """The host namespace, its veth NICs (peers in the engine namespace)
        and the out-of-band control address on veth_1 — what the machine has
        before netreload runs."""
        run_ip("netns", "add", self.host_ns)
        commands = ["link set lo up"]
        for i, nic in enumerate(self.nics):
            commands += [f"link add {nic} type veth peer name p_{i} netns {self.engine_ns}",
                         f"link set {nic} up"]  # fmt: skip
        commands.append(f"addr add {HOST_CONTROL_IP}/{CONTROL_PREFIX} dev {CONTROL_NIC}")
        run_ip("-n", self.host_ns, "-batch", "-", input_text="\n".join(commands) + "\n")
        engine = [f"link set p_{i} up" for i in range(len(self.nics))]
        engine.append(f"addr replace {ENGINE_CONTROL_IP}/{CONTROL_PREFIX} dev p_1")
        run_ip("-n", self.engine_ns, "-batch", "-", input_text="\n".join(engine) + "\n")

    def destroy_host(self) -> None:
        """Delete the host namespace (its veths die with it, peers included)."""
        if _netns_exists(self.host_ns):
            run_ip("netns", "del", self.host_ns)
        # A netns' devices go away asynchronously: wait for the peers.
        deadline = time.monotonic() + WAIT
        while any(link["ifname"].startswith("p_") for link in ip_json(self.engine_ns, "link")):
            if time.monotonic() > deadline:
                raise RuntimeError("the veth peers did not go away with the host namespace")
            time.sleep(0.05)

    def reboot_host(self) -> None:
        """A simulated reboot: daemons stopped, the host namespace rebuilt
        with the same NICs and control address, the run dir wiped."""
        self.stop_frontd()
        self.stop_superd()
        self.destroy_host()
        shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(mode=0o755)
        self.create_host()

    # -- daemons --------------------------------------------------------
    def _spawn(self, module: str, name: str, env: dict[str, str] | None = None):
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.host_ns, sys.executable, "-m", module,
                 "--config", str(self.config_path)],
                stdout=log, stderr=log, cwd=SOURCE_ROOT, env={**os.environ, **(env or {})},
            )  # fmt: skip

    def start_superd(self, timeout: float = 30.0, env: dict[str, str] | None = None) -> None:
        """Start superd (``env`` added to its environment) and wait for its
        READY=1 (sd_notify)."""
        assert self.superd is None, "superd already runs"
        notify_path = self.root / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self._notify.settimeout(0.2)
        self.superd = self._spawn(
            "superd.main", "superd", {**(env or {}), "NOTIFY_SOCKET": str(notify_path)}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._notify.recv(256) == b"READY=1":
                    return
            except TimeoutError:
                if self.superd.poll() is not None:
                    break
        raise RuntimeError(f"superd did not become ready:\n{self.log('superd')}")

    def start_frontd(self, timeout: float = 30.0) -> None:
        """Start frontd (it drops to frontd_user) and wait until it serves."""
        assert self.frontd is None, "frontd already runs"
        log = self.logs / "frontd.log"
        start = log.stat().st_size if log.exists() else 0
        self.frontd = self._spawn("frontd.main", "frontd")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "serving STOMP" in log.read_text(errors="replace")[start:]:
                return
            if self.frontd.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"frontd did not start:\n{self.log('frontd')}")

    def stop_superd(self) -> int | None:
        code = _stop(self.superd)
        self.superd = None
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        return code

    def stop_frontd(self) -> int | None:
        code = _stop(self.frontd)
        self.frontd = None
        return code

    def start(self) -> None:
        self.start_superd()
        self.start_frontd()

    # -- clients --------------------------------------------------------
    def engine(self) -> Engine:
        """A new engine process connected to frontd over the control path."""
        n = len(self.engines)
        engine = Engine(
            self.engine_ns, HOST_CONTROL_IP, STOMP_PORT, self.pki, self.logs / f"engine{n}.log"
        )
        self.engines.append(engine)
        return engine

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """``netreload --config C ARGS`` as root in the host namespace."""
        return subprocess.run(
            ["ip", "netns", "exec", self.host_ns, *netreload_command(),
             "--config", str(self.config_path), *args],
            capture_output=True, text=True, timeout=timeout, cwd=SOURCE_ROOT,
        )  # fmt: skip

    def cli_popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            ["ip", "netns", "exec", self.host_ns, *netreload_command(),
             "--config", str(self.config_path), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=SOURCE_ROOT,
        )  # fmt: skip

    def ip(self, *args: str) -> str:
        return run_ip("-n", self.host_ns, *args)

    def ip_json(self, *args: str) -> Any:
        return ip_json(self.host_ns, *args)

    def running_config(self) -> dict:
        return _config_tree(self.run_dir / "netconf")

    def persistent_config(self) -> dict:
        return _config_tree(self.lib_dir / "persistence" / "netconf")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- tear-down ------------------------------------------------------
    def close(self) -> None:
        """Engines, daemons, namespaces, files: all gone, errors or not."""
        for engine in self.engines:
            try:
                engine.close()
            except Exception:  # a dead engine must not keep the rest
                engine.proc.kill()
        self.engines.clear()
        for stop in (self.stop_frontd, self.stop_superd):
            try:
                stop()
            except Exception:
                pass
        for name in (self.host_ns, self.engine_ns):
            if _netns_exists(name):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def netreload_command() -> list[str]:
    """The ``netreload`` CLI of this Python environment."""
    script = Path(sys.executable).parent / "netreload"
    return [str(script)] if script.exists() else [sys.executable, "-m", "frontd.cli"]


def _stop(proc: subprocess.Popen | None, timeout: float = 20.0) -> int | None:
    """SIGTERM, then SIGKILL if it does not go; its exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)


def _config_tree(folder: Path) -> dict:
    return {
        kind: {p.name: json.loads(p.read_text()) for p in sorted((folder / kind).glob("*"))}
        for kind in ("nets", "bonds")
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["engine"]:
        return engine_main(argv[1:])
    print("usage: python -m demo.lab engine --connect HOST:PORT --pki DIR",
          file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    sys.exit(main())
