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
* :func:`demo.pki.make_pki` — a test CA, a host (server) and an engine
  (client) certificate, from the ``openssl`` CLI.
* :class:`demo.engine.Engine` — stomp.py playing the engine, in its own
  process inside the engine namespace.

Needs root, ``ip`` (iproute2), ``openssl`` and stomp.py (``.[test]``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from demo.engine import SOURCE_ROOT, WAIT, Engine
from demo.pki import make_pki

STOMP_PORT = 54321
HOST_CONTROL_IP = "192.0.2.10"
ENGINE_CONTROL_IP = "192.0.2.1"
CONTROL_PREFIX = 24
CONTROL_NIC = "veth_1"

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
    def _spawn(
        self,
        module: str,
        name: str,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ):
        """``module`` in the host namespace; ``prefix``: a command it runs
        under (e.g. ``setpriv`` with the capabilities its unit grants)."""
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.host_ns, *prefix, sys.executable, "-m", module,
                 "--config", str(self.config_path)],
                stdout=log, stderr=log, cwd=SOURCE_ROOT, env={**os.environ, **(env or {})},
            )  # fmt: skip

    def start_superd(
        self,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        """Start superd (``env`` added to its environment, run under
        ``prefix``) and wait for its READY=1 (sd_notify)."""
        assert self.superd is None, "superd already runs"
        notify_path = self.root / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self._notify.settimeout(0.2)
        self.superd = self._spawn(
            "superd.main", "superd", {**(env or {}), "NOTIFY_SOCKET": str(notify_path)}, prefix
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
