"""The benchmarks' lab: ``demo.lab.Lab`` plus what measuring needs.

* :class:`BenchLab` — the demo's lab (a host namespace with the veth NICs
  ``veth_0``/``veth_1``, an engine namespace with their peers, PKI, superd
  and frontd started for real) under the ``nrb-`` prefix, with
  :meth:`BenchLab.fresh` to start over from an empty host (daemons stopped,
  host namespace re-created, run and lib dirs emptied, daemons started), a
  benchmark engine (:mod:`benchmarks.engine`) and /proc readings of the
  daemons. With ``profile_dir`` the daemons run under
  :mod:`benchmarks.profiled` (cProfile in every thread).
* :func:`scratch_namespace` — a fresh, empty namespace for a reference tool,
  deleted on the way out whatever happens (and waited for).
* :class:`KernelWrites` — ``ip -n NS -o monitor link address route``
  counting the kernel's notifications (one line each) over a window.
* :func:`uninterrupted` — a clean-up that Ctrl-C or SIGTERM cannot cut short.

Nothing here touches the machine's own namespace: every ``ip`` command names
a namespace this module created.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.engine import BenchEngine
from demo.lab import HOST_CONTROL_IP, SOURCE_ROOT, STOMP_PORT, Lab, run_ip

PREFIX = "nrb-"
RUN_TMPFS = "/dev/shm"
CREATED: set[str] = set()  # scratch namespaces of this process, for the leftover check
CLK_TCK = os.sysconf("SC_CLK_TCK")
# After a namespace holding thousands of bridges is deleted the kernel
# dismantles it for minutes, and `ip netns add` blocks meanwhile: every wait
# for that is this patient.
KERNEL_PATIENCE = 900.0


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, VmSize of ``pid`` in KiB (``/proc/PID/status``)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "VmSize", "Threads"):
            out[key] = int(value.split()[0])
    return out


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` (all its threads), in seconds: its own code
    (Python) apart from the kernel's work on its behalf (netlink requests)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


class BenchLab(Lab):
    """The demo's Lab, restartable from an empty host, with measurement hooks."""

    def __init__(
        self, profile_dir: Path | None = None, superd_env: dict[str, str] | None = None
    ) -> None:
        super().__init__(prefix=PREFIX)
        self.profile_dir = profile_dir
        self.superd_env = superd_env or {}  # e.g. PYTHONMALLOC for an A/B
        self._set_up = False
        # The run dir on a tmpfs, as /run is in production (the lib dir, the
        # persistent configuration, stays on disk).
        self.shm_root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}run-", dir=RUN_TMPFS))
        self.shm_root.chmod(0o755)
        self.run_dir = self.shm_root / "run"

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self.shm_root, ignore_errors=True)

    def _spawn(
        self,
        module: str,
        name: str,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ):
        if self.profile_dir is None:
            return super()._spawn(module, name, env, prefix)
        out = self.profile_dir / name
        out.mkdir(parents=True, exist_ok=True)
        out.chmod(0o777)  # frontd writes it after dropping to nobody
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.host_ns, *prefix, sys.executable, "-m",
                 "benchmarks.profiled",
                 "--out", str(out), module, "--config", str(self.config_path)],
                stdout=log, stderr=log, cwd=SOURCE_ROOT, env={**os.environ, **(env or {})},
            )  # fmt: skip

    def fresh(self) -> None:
        """An empty host (only the NICs and the control address) and freshly
        started daemons with empty run and lib dirs."""
        if not self._set_up:
            self.setup()
            self._set_up = True
        else:
            for engine in self.engines:
                engine.close()
            self.engines.clear()
            self.stop_frontd()
            self.stop_superd()
            self.destroy_host()
            for folder, mode in ((self.run_dir, 0o755), (self.lib_dir, 0o700)):
                shutil.rmtree(folder)
                folder.mkdir(mode=mode)
            wait_for_kernel()
            wait_kernel_idle()
            self.create_host()
        self.start()

    def start_superd(
        self,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        super().start_superd(timeout, {**self.superd_env, **(env or {})}, prefix)

    def stop_superd(self) -> int | None:
        """Lab.stop_superd, waiting as long as the kernel keeps a superd
        busy in the middle of thousands of deletions (even a SIGKILL waits
        for the request under way)."""
        proc = self.superd
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(KERNEL_PATIENCE)
        return super().stop_superd()

    def destroy_host(self) -> None:
        """Lab.destroy_host with more patience: a namespace holding a
        thousand bridges takes the kernel a while to dismantle."""
        if _namespace_exists(self.host_ns):
            run_ip("netns", "del", self.host_ns)
        deadline = time.monotonic() + KERNEL_PATIENCE
        while any(link["ifname"].startswith("p_") for link in patient_links(self.engine_ns)):
            if time.monotonic() > deadline:
                raise RuntimeError("the veth peers did not go away with the host namespace")
            time.sleep(0.1)

    def bench_engine(self) -> BenchEngine:
        n = len(self.engines)
        engine = BenchEngine(
            self.engine_ns, HOST_CONTROL_IP, STOMP_PORT, self.pki, self.logs / f"bench{n}.log"
        )
        self.engines.append(engine)
        return engine

    def daemon_pids(self) -> dict[str, int]:
        """superd's and frontd's Python process ids (``ip netns exec`` execs
        the interpreter in place, so the Popen pid is the daemon's)."""
        pids = {}
        for name, proc in (("superd", self.superd), ("frontd", self.frontd)):
            if proc is None or proc.poll() is not None:
                raise RuntimeError(f"{name} is not running:\n{self.log(name)[-3000:]}")
            if not any("python" in part for part in proc_cmdline(proc.pid)[:1]):
                raise RuntimeError(f"{name}: pid {proc.pid} is not the Python daemon")
            pids[name] = proc.pid
        return pids

    def memory(self) -> dict[str, dict[str, int]]:
        return {name: proc_status(pid) for name, pid in self.daemon_pids().items()}

    def cpu_seconds(self) -> dict[str, float]:
        return {name: proc_cpu_seconds(pid) for name, pid in self.daemon_pids().items()}

    def cpu_split(self) -> dict[str, tuple[float, float]]:
        """{daemon: (user, system) CPU seconds}."""
        return {name: proc_cpu_split(pid) for name, pid in self.daemon_pids().items()}

    def running_network_count(self) -> int:
        folder = self.run_dir / "netconf" / "nets"
        return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


def _namespace_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _add_namespace(name: str) -> float:
    """``ip netns add NAME``, however long the kernel makes it wait (it
    blocks while a deleted namespace's devices are being dismantled); the
    seconds it took."""
    started = time.monotonic()
    proc = subprocess.run(
        ["ip", "netns", "add", name], capture_output=True, text=True, timeout=KERNEL_PATIENCE
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ip netns add {name}: {proc.stderr.strip()}")
    waited = time.monotonic() - started
    if waited > 5:
        print(f"  (the kernel was busy dismantling a namespace: `ip netns add` waited "
              f"{waited:.0f} s)", flush=True)  # fmt: skip
    return waited


def _netns_workers_busy() -> bool:
    """Whether a kernel worker is dismantling a namespace now (its name
    carries the work queue it runs: ``kworker/u8:2+netns``)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if "+netns" in comm.read_text():
                return True
        except OSError:
            continue
    return False


def wait_kernel_idle(timeout: float = KERNEL_PATIENCE) -> float:
    """Wait until no namespace is being dismantled (seen idle twice, half a
    second apart): a measurement started meanwhile would time the kernel's
    clean-up (RTNL held for seconds at a time). The seconds waited."""
    started = time.monotonic()
    idle = 0
    while idle < 2 and time.monotonic() - started < timeout:
        idle = 0 if _netns_workers_busy() else idle + 1
        time.sleep(0.5)
    waited = time.monotonic() - started
    if waited > 5:
        print(f"  (waited {waited:.0f} s for the kernel to finish dismantling a namespace)",
              flush=True)  # fmt: skip
    return waited


def wait_for_kernel() -> float:
    """Wait until a namespace can be created again (a deleted one with
    thousands of devices is gone); the seconds waited."""
    name = f"{PREFIX}probe-{secrets.token_hex(3)}"
    CREATED.add(name)
    try:
        return _add_namespace(name)
    finally:
        delete_namespace(name)


def make_namespace(tag: str) -> str:
    """A new namespace ``nrb-<tag>-<hex>`` with lo up (remember to delete it)."""
    name = f"{PREFIX}{tag}-{secrets.token_hex(3)}"
    CREATED.add(name)
    try:  # an interrupt during `ip netns add` may come after the kernel made it
        _add_namespace(name)
        run_ip("-n", name, "link", "set", "lo", "up")
    except BaseException:
        with uninterrupted():
            delete_namespace(name)
        raise
    return name


_CLEAN_UP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back until the block is done: a
    clean-up cut short by them left namespaces and daemons behind (a
    SIGTERM while the OVS host waited for ovs-vswitchd to exit). A signal
    that came meanwhile is delivered on the way out, so the run still stops.
    Children started inside inherit the mask: only short clean-up commands
    belong here."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _CLEAN_UP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def delete_namespace(name: str) -> None:
    if _namespace_exists(name):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=KERNEL_PATIENCE)


def patient_links(netns: str) -> list[dict]:
    """``ip -n NETNS -j link``, however long the kernel makes it wait (a
    link dump waits for the namespace being dismantled to release RTNL)."""
    proc = subprocess.run(["ip", "-n", netns, "-j", "link"], capture_output=True, text=True,
                          timeout=KERNEL_PATIENCE)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"ip -n {netns} link: {proc.stderr.strip()}")
    return json.loads(proc.stdout or "[]")


def wait_gone(netns: str, device: str, timeout: float = KERNEL_PATIENCE) -> None:
    """Wait until ``device`` left ``netns``."""
    deadline = time.monotonic() + timeout
    while any(link.get("ifname") == device for link in patient_links(netns)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{device} is still in {netns} after {timeout:g} s")
        time.sleep(0.05)


def _default_disable_ipv6(ns: str, value: str | None = None) -> str:
    """The namespace's ``conf/default/disable_ipv6`` (written first if
    ``value``): what a device created there starts with."""
    path = "/proc/sys/net/ipv6/conf/default/disable_ipv6"
    script = f"echo {int(value)} > {path}; cat {path}" if value is not None else f"cat {path}"
    proc = subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", script],
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    return proc.stdout.strip()


@contextlib.contextmanager
def bridges_without_ipv6(ns: str) -> Iterator[None]:
    """Devices ``ip`` creates in ``ns`` meanwhile have IPv6 off, as
    netreload's bridges of networks without IPv6 (the production agent's
    rule): the reference does the same kernel work, with one sysctl write
    less per bridge than netreload (no ``ip`` command sets it per device)."""
    before = _default_disable_ipv6(ns)
    _default_disable_ipv6(ns, "1")
    try:
        yield
    finally:
        _default_disable_ipv6(ns, before)


@contextlib.contextmanager
def scratch_namespace(tag: str, sentinel: str) -> Iterator[str]:
    """A fresh namespace ``nrb-<tag>-<hex>`` with lo up, deleted afterwards.

    The kernel dismantles a deleted namespace in the background, holding the
    RTNL lock while it unregisters the devices: a measurement started then
    would wait for it (seconds, for a thousand bridges). So the namespace
    gets a veth whose peer lives in ``sentinel`` (a namespace made with
    :func:`make_namespace` for the purpose), and leaving waits until that
    peer is gone, i.e. until the devices were unregistered.
    """
    name = make_namespace(tag)
    peer = f"s{name[-6:]}"
    try:
        run_ip("-n", name, "link", "add", f"w{name[-6:]}", "type", "veth",
               "peer", "name", peer, "netns", sentinel)  # fmt: skip
        yield name
    finally:
        delete_namespace(name)
        wait_gone(sentinel, peer)
        wait_kernel_idle()


class KernelWrites:
    """``ip -n NS -o monitor link address route`` into a file; the lines
    (one per kernel notification) that arrive between :meth:`mark` and
    :meth:`count`."""

    def __init__(self, netns: str, folder: Path) -> None:
        self.path = folder / f"monitor-{secrets.token_hex(3)}.txt"
        self._file = self.path.open("wb")
        self.proc = subprocess.Popen(
            ["ip", "-n", netns, "-o", "monitor", "link", "address", "route"],
            stdout=self._file, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._offset = 0

    def __enter__(self) -> KernelWrites:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_quiet(self, quiet: float = 1.0, timeout: float = 15.0) -> int:
        """Wait until no notification came for ``quiet`` seconds (late IPv6
        DAD of a previous change, …); how many came meanwhile."""
        time.sleep(0.3)  # the monitor's socket is bound by now
        deadline = time.monotonic() + timeout
        size, since = self._size(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self._size()
            if now != size:
                size, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return len(self._lines(0))

    def mark(self) -> None:
        self._file.flush()
        self._offset = self._size()

    def count(self, settle: float = 0.5) -> list[str]:
        """The notifications since :meth:`mark` (after ``settle`` seconds)."""
        time.sleep(settle)
        return self._lines(self._offset)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._file.close()
        self.path.unlink(missing_ok=True)

    def _size(self) -> int:
        return self.path.stat().st_size

    def _lines(self, offset: int) -> list[str]:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
        return [line for line in text.splitlines() if line.strip()]
