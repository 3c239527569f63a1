"""Where the wall clock of ONE big setupNetworks goes: ``python -m benchmarks.timeline``.

``python -m benchmarks.timeline [--n 1000] [--runs 1] [--prefix nrb-]
[--arms "NETRELOAD_MALLOC_WINDOW=0;"]`` (root) starts a fresh
:class:`benchmarks.lab.BenchLab` per run with both daemons under
:mod:`benchmarks.traced`, sends the benchmark workload of N networks over
STOMP/TLS and prints, in milliseconds from the engine's SEND, when
each timed step of frontd and superd started and ended (and the hotplug
thread's uevent handling, summed), then the answer's arrival; the daemons'
user / system CPU during the call. On a shared machine the kernel's steps
stretch with the load (RTNL waits): compare the Python steps, or run when
the machine is quiet.

``--gc``: the daemons' cyclic collections too (``benchmarks/gc_traced.py``):
the long ones listed, all of them counted and summed per daemon.

``--arms``: superd's extra environment per arm (``;`` between arms, ``,``
between ``K=V`` pairs, an empty arm is the default); the arms alternate
run by run (``--runs`` each) so that the machine's load falls on all of
them, and the end prints each arm's medians: wall time and each daemon's
user + system CPU during the call (``/proc/PID/stat``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import lab as lab_module
from benchmarks import workload
from demo.lab import SOURCE_ROOT

TRACED = str(Path(__file__).resolve().parent / "traced.py")
# the same, with the cyclic collector's runs (--gc)
GC_TRACED = str(Path(__file__).resolve().parent / "gc_traced.py")


class TracedLab(lab_module.BenchLab):
    """A BenchLab whose daemons run under benchmarks/traced.py."""

    def __init__(self, out: Path, tracer: str = TRACED) -> None:
        super().__init__()
        self.out = out
        self.tracer = tracer

    def _spawn(self, module, name, env=None, prefix=()):  # BenchLab's signature
        trace = {"TRACE_OUT": str(self.out / f"trace-{name}.txt"), "PYTHONPATH": SOURCE_ROOT}
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.host_ns, *prefix, sys.executable, self.tracer, module,
                 "--config", str(self.config_path)],
                stdout=log, stderr=log, cwd=SOURCE_ROOT,
                env={**os.environ, **(env or {}), **trace},
            )  # fmt: skip


def events(out: Path) -> list[tuple[float, float, str, str, str]]:
    """(start, end, daemon, step, thread) of every traced call, in time order."""
    found = []
    for path in out.glob("trace-*.txt"):
        for line in path.read_text().splitlines():
            step, start, end, thread = line.split(" ", 3)
            found.append((float(start), float(end), path.stem[len("trace-") :], step, thread))
    return sorted(found)


def show(t0: float, t1: float, found: list[tuple[float, float, str, str, str]]) -> None:
    hotplug = [(s, e) for s, e, _, step, _ in found if step.endswith("._dispatch")]
    collections = [(s, e, daemon, step) for s, e, daemon, step, _ in found
                   if step.startswith("gc.collect/") and t0 <= s <= t1]  # fmt: skip
    for start, end, daemon, step, thread in found:
        if step.startswith("gc.collect/") and end - start < 0.002:
            continue  # the young generations' many short runs: summed below
        if not step.endswith("._dispatch"):
            span = f"{1e3 * (start - t0):8.1f} → {1e3 * (end - t0):8.1f}"
            print(f"  {span} ({1e3 * (end - start):7.1f})  {daemon}: {step} [{thread}]")
    if hotplug:
        busy = sum(e - s for s, e in hotplug)
        span = f"{1e3 * (hotplug[0][0] - t0):8.1f} → {1e3 * (hotplug[-1][1] - t0):8.1f}"
        print(f"  {span}  superd: {len(hotplug)} uevents handed over, {1e3 * busy:.1f} ms in all")
    for daemon in sorted({c[2] for c in collections}):
        mine = [c for c in collections if c[2] == daemon]
        full = [c for c in mine if c[3] == "gc.collect/2"]
        spent = 1e3 * sum(e - s for s, e, _, _ in mine)
        print(f"  {daemon}: {len(mine)} cyclic collections before the answer "
              f"({len(full)} full), {spent:.1f} ms in all")  # fmt: skip
    print(f"  {1e3 * (t1 - t0):8.1f}  the answer at the engine")


def parse_arms(text: str) -> list[dict[str, str]]:
    """``"K=V,K2=V2;"`` → ``[{"K": "V", "K2": "V2"}, {}]``."""
    return [dict(pair.split("=", 1) for pair in arm.split(",") if pair)
            for arm in text.split(";")]  # fmt: skip


def arm_label(env: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in env.items()) or "(default)"


def summary(samples: dict[str, list[dict[str, float]]]) -> None:
    """Each arm's medians (and the samples) of wall time and CPU."""
    for label, runs in samples.items():
        line = ", ".join(f"{key} {1e3 * statistics.median(r[key] for r in runs):.0f} ms "
                         f"{[round(1e3 * r[key]) for r in runs]}"
                         for key in runs[0])  # fmt: skip
        print(f"{label}: {len(runs)} runs, medians: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timeline")
    parser.add_argument("--n", type=int, default=1000, help="networks (default 1000)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--prefix", default=lab_module.PREFIX, help="namespace name prefix")
    parser.add_argument("--arms", default="", help="superd's environment per arm, ';' between")
    parser.add_argument("--gc", action="store_true", help="the cyclic collector's runs too")
    args = parser.parse_args(argv)
    arms = parse_arms(args.arms)
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    lab_module.PREFIX = args.prefix  # the lab's namespaces and scratch folders
    out = Path(tempfile.mkdtemp(prefix=f"{args.prefix}trace-"))
    out.chmod(0o777)  # frontd writes its trace after dropping to its user
    lab = TracedLab(out, GC_TRACED if args.gc else TRACED)
    samples: dict[str, list[dict[str, float]]] = {}
    try:
        for run, env in ((r, env) for r in range(args.runs) for env in arms):
            for path in out.glob("trace-*.txt"):
                path.unlink()
            lab.superd_env = env
            lab.fresh()
            engine = lab.bench_engine()
            cpu0 = lab.cpu_split()
            request = workload.setup_request(args.n)
            reply = engine.command({"call": "Host.setupNetworks", "params": request,
                                    "timeout": max(120.0, args.n * 0.6)})  # fmt: skip
            cpu1 = lab.cpu_split()
            if "error" in reply:
                raise RuntimeError(f"setupNetworks: {reply['error']}")
            time.sleep(1.0)  # the uevents handled after the answer
            cpu = ", ".join(f"{name} {cpu1[name][0] - cpu0[name][0]:.2f} / "
                            f"{cpu1[name][1] - cpu0[name][1]:.2f} s" for name in cpu0)  # fmt: skip
            print(f"run {run} {arm_label(env)}: setupNetworks of {args.n} in "
                  f"{1e3 * reply['seconds']:.0f} ms (CPU user / system: {cpu})")  # fmt: skip
            show(reply["t0"], reply["t1"], events(out))
            samples.setdefault(arm_label(env), []).append({
                "wall": reply["seconds"],
                **{f"{name}_cpu": sum(cpu1[name]) - sum(cpu0[name]) for name in cpu0},
                "superd_user": cpu1["superd"][0] - cpu0["superd"][0]})  # fmt: skip
        summary(samples)
    finally:
        lab.close()
        for path in out.glob("trace-*.txt"):
            path.unlink()
        out.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
