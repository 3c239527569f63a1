"""A throw-away dnsmasq DHCP server inside a test's peer namespace.

Only ever started with ``ip netns exec <namespace the test created>``, bound
to one interface, DNS disabled (``--port=0``), no configuration file, every
file in the test's temporary folder; stopped (and waited for) by
:meth:`Dnsmasq.stop`, which is idempotent.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SBIN_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"


def dnsmasq_path() -> str | None:
    return shutil.which("dnsmasq", path=SBIN_PATH)


@dataclass
class Dnsmasq:
    netns: str
    interface: str
    workdir: Path
    # dhcp-range values, e.g. "10.77.0.100,10.77.0.150,255.255.255.0,2m"
    ranges: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)  # dhcp-option values
    enable_ra: bool = False
    proc: subprocess.Popen | None = None

    @property
    def pid_file(self) -> Path:
        return self.workdir / "dnsmasq.pid"

    @property
    def lease_file(self) -> Path:
        return self.workdir / "dnsmasq.leases"

    @property
    def log_file(self) -> Path:
        return self.workdir / "dnsmasq.log"

    def argv(self) -> list[str]:
        binary = dnsmasq_path()
        if binary is None:
            raise RuntimeError("dnsmasq is not installed")
        argv = [
            "ip",
            "netns",
            "exec",
            self.netns,
            binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--user=root",
            "--group=root",
            "--bind-interfaces",
            f"--interface={self.interface}",
            f"--pid-file={self.pid_file}",
            f"--dhcp-leasefile={self.lease_file}",
            f"--log-facility={self.log_file}",
            "--log-dhcp",
            # Without this dnsmasq pings every new address and waits 3 s for
            # an answer before offering it.
            "--no-ping",
        ]
        argv += [f"--dhcp-range={r}" for r in self.ranges]
        argv += [f"--dhcp-option={o}" for o in self.options]
        if self.enable_ra:
            argv.append("--enable-ra")
        return argv

    def start(self, ready_timeout: float = 10.0) -> Dnsmasq:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "dnsmasq.stderr", "wb") as err:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
        deadline = time.monotonic() + ready_timeout
        # Ready once it logged that its DHCP sockets are bound.
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.workdir / "dnsmasq.stderr").read_text(errors="replace")
                raise RuntimeError(f"dnsmasq exited ({self.proc.returncode}): {err}")
            if self.log_file.exists() and "DHCP" in self.log_file.read_text(errors="replace"):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("dnsmasq did not become ready")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def leases(self) -> str:
        try:
            return self.lease_file.read_text()
        except OSError:
            return ""

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


@contextmanager
def serving_the_peer(
    peer: str, workdir: Path, subnet: str, options: Iterable[str] = ()
) -> Iterator[Dnsmasq]:
    """dnsmasq on ``p_0`` (the far end of ``veth_0``) in namespace ``peer``:
    itself ``<subnet>.1/24`` and the router, leases ``.100`` to ``.150``."""
    subprocess.run(
        ["ip", "-n", peer, "addr", "add", f"{subnet}.1/24", "dev", "p_0"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = Dnsmasq(peer, "p_0", workdir, [f"{subnet}.100,{subnet}.150,255.255.255.0,2m"],
                     [f"option:router,{subnet}.1", *options])  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()
