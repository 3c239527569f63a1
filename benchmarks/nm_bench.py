"""Benchmark 9: the reference workload through NetworkManager, end to end,
against NetworkManager doing the same work over D-Bus directly.

Workload: the reference workload (``benchmarks.workload``): N nic-less
bridged networks ``bn0 … bn{N-1}``, each with one static address,
connectivityCheck off.

netreload: a private NetworkManager (``tests.functional.nm_lab``: its own
dbus-daemon, NetworkManager in a fresh namespace) and superd with
``net_configurator = nm`` on its bus; then, timed, what frontd does for a
setupNetworks — superd's ``netinfo``, the plan — and superd's
``apply_plan`` over its socket: a checkpoint, N in-memory profiles added
and activated, the activations awaited, the bridges marked, the
verification (kernel dump), the running configuration written, the
checkpoint destroyed, the answer back.

Reference, in the same run, on a fresh namespace and NetworkManager: one
script with dbus-python sending the same N ``AddConnection2`` (in memory,
autoconnect blocked), then the N ``ActivateConnection`` calls (the order
netreload sends them in), then polling each active connection until it is
activated. Everything is removed afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import paired, workload
from benchmarks.lab import delete_namespace, make_namespace, uninterrupted
from benchmarks.ovs_bench import SuperdClient
from benchmarks.paired import check_addresses, paired_row
from benchmarks.report import Row
from demo.lab import SOURCE_ROOT
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from tests.functional.nm_lab import NmLab, why_no_nm


class NmHost:
    """A namespace with its own NetworkManager on its own bus."""

    def __init__(self) -> None:
        self.ns = make_namespace("nm")
        self.root: Path | None = None
        self.lab: NmLab | None = None
        try:
            self.root = Path(tempfile.mkdtemp(prefix="nrb-nm-"))
            self.lab = NmLab(self.ns, self.root / "nm")
            self.lab.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Whatever of the host exists, also when interrupted meanwhile."""
        with uninterrupted():
            try:
                if self.lab is not None:
                    self.lab.stop()
            finally:
                delete_namespace(self.ns)
                if self.root is not None:
                    subprocess.run(["rm", "-rf", str(self.root)], check=False)

    def __enter__(self) -> NmHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_superd(host: NmHost) -> tuple[subprocess.Popen, SuperdClient]:
    for folder in ("run", "lib"):
        (host.root / folder).mkdir()
    config, sock = host.root / "netreload.conf", host.root / "run" / "superd.sock"
    config.write_text(
        "[vars]\nnet_configurator = nm\n"
        f"[paths]\nrun_dir = {host.root / 'run'}\nlib_dir = {host.root / 'lib'}\n"
        f"resolv_conf = {host.root / 'resolv.conf'}\n"
        f"[superd]\nsocket = {sock}\n[frontd]\nuser = root\n"
        f"[nm]\nbus = {host.lab.address}\ntimeout = 600\n"
    )
    log = (host.root / "superd.log").open("w")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.ns, sys.executable, "-m", "superd.main",
         "--config", str(config)], cwd=SOURCE_ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"superd exited: {(host.root / 'superd.log').read_text()[-500:]}")
        try:
            client = SuperdClient(sock)
            client.call("ping")
            return proc, client
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("superd did not start")


def netreload_setup(n: int) -> float:
    with NmHost() as host:
        proc, client = start_superd(host)
        try:
            work = workload.setup_request(n)
            started = time.perf_counter()
            info = client.call("netinfo")
            plan = plan_setup_networks(
                work["networks"], work["bondings"], work["options"],
                NetinfoSnapshot.from_caps(info["caps"]), RunningConfig.from_dict(info["running"]),
            )  # fmt: skip
            client.call("apply_plan", plan=plan.to_dict())
            seconds = time.perf_counter() - started
            _check(host, n)
        finally:
            client.close()
            proc.terminate()
            proc.wait(60)
        return seconds


#: the reference: dbus-python only (not netreload's client), run in the
#: namespace (argv: bus address, N); prints the seconds it took
REFERENCE_SCRIPT = r"""
import sys, time, uuid, dbus
address, n = sys.argv[1], int(sys.argv[2])
bus = dbus.bus.BusConnection(address)
NM, PATH = "org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager"
settings = dbus.Interface(bus.get_object(NM, PATH + "/Settings"), NM + ".Settings")
manager = dbus.Interface(bus.get_object(NM, PATH), NM)
started = time.perf_counter()
paths = []
for i in range(n):
    name = f"bn{i}"
    profile = dbus.Dictionary({
        "connection": dbus.Dictionary({"id": name, "uuid": str(uuid.uuid4()),
                                       "type": "bridge", "interface-name": name,
                                       "autoconnect": False}, signature="sv"),
        "bridge": dbus.Dictionary({"stp": False}, signature="sv"),
        "ipv4": dbus.Dictionary({"method": "manual", "address-data": dbus.Array([dbus.Dictionary(
            {"address": f"10.{i // 256}.{i % 256}.1", "prefix": dbus.UInt32(24)}, signature="sv")],
            signature="a{sv}")}, signature="sv"),
        "ipv6": dbus.Dictionary({"method": "link-local"}, signature="sv"),
    }, signature="sa{sv}")
    path, _ = settings.AddConnection2(profile, dbus.UInt32(0x2 | 0x20),
                                      dbus.Dictionary({}, signature="sv"))
    paths.append(path)
active = [manager.ActivateConnection(path, "/", "/") for path in paths]
props, state = "org.freedesktop.DBus.Properties", (NM + ".Connection.Active", "State")
for path in active:
    while int(bus.call_blocking(NM, path, props, "Get", "ss", state)) != 2:
        time.sleep(0.005)
print(time.perf_counter() - started)
"""


def reference_setup(n: int) -> float:
    with NmHost() as host:
        proc = subprocess.run(
            ["ip", "netns", "exec", host.ns, sys.executable, "-c", REFERENCE_SCRIPT,
             host.lab.address, str(n)],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"reference script: {proc.stderr.strip()[-500:]}")
        _check(host, n)
        return float(proc.stdout.strip())


def _check(host: NmHost, n: int) -> None:
    check_addresses(host.ns, [workload.net_name(i) for i in range(n)])


def measure(n: int, runs: int = 1) -> tuple[list[Row], dict]:
    """One row: netreload over NetworkManager against NetworkManager alone."""
    refs = [reference_setup(n) for _ in range(runs)]
    ours = [netreload_setup(n) for _ in range(runs)]
    what = "bridges through NetworkManager (plan + superd apply_plan)"
    reference = "AddConnection2 + ActivateConnection over D-Bus"
    row = paired_row("nm", what, n, ours, refs, reference)
    return [row], {"netreload": ours, "reference": refs}


def available() -> str | None:
    return why_no_nm()


def main(argv: list[str] | None = None) -> int:
    return paired.main("nm_bench", available, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
