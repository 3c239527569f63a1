"""A local user cannot pass a process of theirs off as netreload's DHCP
client: on the real daemons (a Lab, superd as root), with a real dnsmasq
on the far end of veth_0.

The impostor runs as ``nobody`` in the host namespace, is named
``dhclient`` and has the client's predictable pid file in its arguments,
as a real client's command line would; it has a child of its own, and
records any SIGTERM it gets. superd must start a real client (the lease
comes) and never signal the impostor or its child.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.lab import Lab
from tests.functional.dnsmasq import dnsmasq_path, serving_the_peer

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
    pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]
NOBODY = "65534"
LEASE_WITHIN = 20.0
# The system interpreter: nobody may not be able to read the project's venv.
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"

IMPOSTOR = """
import signal, subprocess, sys, time
log = sys.argv[-1]
def note(signum, frame):
    with open(log, "a") as f:
        f.write(f"{signum}\\n")
signal.signal(signal.SIGTERM, note)
child = subprocess.Popen(["sleep", "600"])
with open(log + ".child", "w") as f:
    f.write(str(child.pid))
while True:
    time.sleep(1)
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(prefix="nri-") as the_lab:
        the_lab.start()
        yield the_lab


class Impostor:
    def __init__(self, lab: Lab, pid_file: Path) -> None:
        self.log = lab.root / "impostor" / "signals"
        self.log.parent.mkdir(mode=0o777)
        self.log.parent.chmod(0o777)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.host_ns,
             "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "bash", "-c", 'exec -a dhclient "$@"', "impostor",
             PYTHON, "-c", IMPOSTOR,
             "-4", "-nw", "-pf", str(pid_file), "veth_0", str(self.log)],
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.child_file.exists():
            assert time.monotonic() < deadline and self.proc.poll() is None, "impostor died"
            time.sleep(0.05)
        cmdline = Path(f"/proc/{self.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0] == b"dhclient" and str(pid_file).encode() in cmdline

    @property
    def child_file(self) -> Path:
        return Path(str(self.log) + ".child")

    def untouched(self) -> bool:
        child = int(self.child_file.read_text())
        return (
            self.proc.poll() is None
            and Path(f"/proc/{child}").exists()
            and not self.log.exists()  # no SIGTERM recorded
        )

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def real_clients(lab: Lab) -> list[int]:
    """Root's dhclient processes (the real binary) in the lab's run dir."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            exe = Path(entry, "exe").readlink()
            cmdline = Path(entry, "cmdline").read_bytes()
        except OSError:
            continue
        if exe.name == "dhclient" and str(lab.run_dir).encode() in cmdline:
            found.append(int(entry.name))
    return found


def dynamic_ipv4(lab: Lab, device: str) -> list[str]:
    entries = lab.ip_json("-4", "addr", "show", "dev", device)
    return [a["local"] for e in entries for a in e.get("addr_info", []) if a.get("dynamic")]


def test_a_users_process_named_like_the_client_is_neither_adopted_nor_signalled(
    lab: Lab, tmp_path: Path
) -> None:
    impostor = Impostor(lab, lab.run_dir / "dhcp" / "veth_0.v4.pid")
    engine = lab.engine()
    try:
        with serving_the_peer(lab.engine_ns, tmp_path / "dnsmasq", "10.67.0"):
            setup = {"networks": {"dyn": {"nic": "veth_0", "bridged": False,
                                          "bootproto": "dhcp"}},
                     "bondings": {}, "options": {"connectivityCheck": False}}  # fmt: skip
            assert engine.result("Host.setupNetworks", setup)["code"] == 0
            deadline = time.monotonic() + LEASE_WITHIN
            while not dynamic_ipv4(lab, "veth_0") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert dynamic_ipv4(lab, "veth_0"), "no lease: no real client runs"
            assert real_clients(lab)
            assert impostor.untouched()
            remove = {"networks": {"dyn": {"remove": True}}, "bondings": {},
                      "options": {"connectivityCheck": False}}  # fmt: skip
            assert engine.result("Host.setupNetworks", remove)["code"] == 0
            assert real_clients(lab) == []
            assert impostor.untouched()
    finally:
        impostor.stop()
