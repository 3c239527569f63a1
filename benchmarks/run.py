"""``python -m benchmarks.run [--quick] [--sizes 10,100,1000]`` (root).

For each N: the ``ip -batch`` reference in fresh namespaces, then a fresh
lab (``benchmarks.lab.BenchLab``: host + engine namespaces, superd and frontd
started for real, a stomp.py engine) and, in order: setupNetworks over
STOMP/TLS (``--setup-runs`` times, each on a fresh host), then on the last
one the unchanged re-apply, getNetworkCapabilities, event latency,
the daemons' memory; then setupNetworks again through the ``netreload``
CLI on a fresh host when the time budget allows. Prints one table per
benchmark and a summary; writes everything (raw samples included) to
``benchmarks/results/<timestamp>.json``.

Everything runs in namespaces this run creates (``nrb-*``) and deletes at
the end, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

from benchmarks import measure, scale
from benchmarks.lab import (
    CREATED,
    BenchLab,
    delete_namespace,
    make_namespace,
    wait_kernel_idle,
)
from benchmarks.measure import Budget, BudgetExceeded
from benchmarks.report import Row, fmt, median, table, write_json
from demo.lab import SOURCE_ROOT

RESULTS = Path(__file__).resolve().parent / "results"
FULL_SIZES = (10, 100, 1000, 2000, 5000)
QUICK_SIZES = (10, 100)
MAX_SIZE = 5000
FULL_BUDGET = 2400.0  # s: `make bench` (5,000 bridges take the kernel minutes to delete)
QUICK_BUDGET = 110.0  # s: --quick within 2
BIG = 1000  # above this N: one setup run and two reference runs by default (2 cores, shared)
ORDER = ("setup", "one", "reapply", "caps", "capscli", "events", "memory", "ovs")
OVS_MIN_N = 100  # the OVS row runs for N = 100 and 1000 (and any larger size asked)
# NetworkManager activates ~2 bridges a second here: N = 2,000 would take the
# full run's budget (`python -m benchmarks.nm_bench --sizes 2000` runs it alone)
NM_MAX_N = 1000
# seconds the kernel takes to dismantle a namespace's bridge (until this run
# measures it: 21 ms idle, 2 cores, kernel 6.18) and superd to remove one
# network (~40 ms idle: synchronize_net per bridge)
TEARDOWN_GUESS = 0.025
REMOVAL_GUESS = 0.05
TITLES = {
    "setup": "1. setupNetworks, end to end (nic-less bridges, static IPv4, connectivityCheck "
    "off) vs ip -batch",
    "reapply": "4. re-apply of the unchanged request (kernel notifications from ip monitor)",
    "caps": "2. getNetworkCapabilities over STOMP/TLS vs a fresh full ip dump",
    "one": "7. ONE network added / removed on a host holding N vs the same on an empty host",
    "capscli": "8. netreload --json caps, the whole process, vs three ip -j dumps",
    "events": "3. event latency: change made with ip → visible in getNetworkCapabilities",
    "memory": "5. daemon memory (/proc/PID/status) vs the same daemon idle",
    "ovs": "6. N OVS VLAN networks (userspace OVS), plan + superd apply_plan vs one ovs-vsctl "
    "transaction + ip -batch",
}


def say(text: str = "") -> None:
    print(text, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.rstrip("\n")
    except (OSError, subprocess.TimeoutExpired):
        return ""


def environment() -> dict:
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ip": subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip(),
        "git_head": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": [line for line in _git("status", "--porcelain").splitlines() if line],
    }


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.budget = Budget(time.monotonic() + args.budget)
        self.rows: list[Row] = []
        self.raw: dict = {}
        self.lab: BenchLab | None = None
        self.setup_seconds: dict[int, float] = {}
        self.sentinel = ""
        self.empty_host: dict | None = None  # one network on the empty host (benchmark 7)
        self.teardown = TEARDOWN_GUESS  # s per bridge, kernel dismantling a namespace

    def removal_per_network(self) -> float:
        """Seconds superd takes to remove one network, for the budget: the
        empty host's one-network removal, or twice the namespace teardown
        per bridge (measured: 44 against 21 ms), whichever is larger."""
        one = (self.empty_host or {}).get("median", {}).get("remove STOMP") or REMOVAL_GUESS
        return max(one, 2 * self.teardown)

    def add(self, rows: list[Row] | Row) -> None:
        for row in rows if isinstance(rows, list) else [rows]:
            self.rows.append(row)
            value = "—" if row.value is None else f"{row.value:.4g} {row.unit}"
            ratio = "" if row.ratio is None else f" ({row.ratio:.2f}× reference)"
            why = f"  {row.note}" if row.value is None and row.note else ""
            say(f"  [N={row.n}] {row.what}: {value}{ratio}{why}")

    def skipped(self, benchmark: str, what: str, n: int, why: str) -> None:
        self.add(Row(benchmark, what, n, None, None, "s", note=why))

    def step(self, benchmark: str, what: str, n: int, function, *args):
        """Run one measurement; a failure becomes a FAILED row, not the end.
        A benchmark ``--skip`` names is not run (no row)."""
        if benchmark in self.args.skip:
            return None
        try:
            rows, raw = function(*args)
        except BudgetExceeded as why:
            self.skipped(benchmark, what, n, str(why))
            return None
        except Exception as error:
            traceback.print_exc()
            self.skipped(benchmark, what, n, f"FAILED: {type(error).__name__}: {error}"[:300])
            return None
        self.add(rows)
        self.raw.setdefault(benchmark, {})[str(n)] = raw
        return raw

    def estimate_setup(self, n: int) -> float:
        """Seconds the N setup may take, from the largest smaller N (linear
        growth, with margin), for budget decisions."""
        done = [m for m in self.setup_seconds if m < n]
        if not done:
            return 30.0
        m = max(done)
        return 1.5 * self.setup_seconds[m] * n / m + 10

    def run_size(self, n: int) -> None:
        assert self.lab is not None
        args, lab = self.args, self.lab
        say(f"\n== N = {n}  ({self.budget.remaining():.0f} s of budget left)")
        # setup, re-apply, caps, events: about 1.6 setups' worth of time; the
        # references' namespaces and this size's host to dismantle
        ref_runs = args.ref_runs if n <= BIG else min(args.ref_runs, 2)
        teardowns = (ref_runs + 1) * n * self.teardown
        try:
            self.budget.require(self.estimate_setup(n) * 1.6 + teardowns, f"N={n}")
        except BudgetExceeded as why:
            for bench, what in (("setup", "setupNetworks (STOMP/TLS)"), ("reapply", "re-apply"),
                                ("caps", "getNetworkCapabilities"), ("events", "event latency"),
                                ("memory", "memory")):  # fmt: skip
                self.skipped(bench, what, n, str(why))
            return
        wait_kernel_idle()  # not the clean-up of the previous size's namespaces
        ref = measure.reference_setup(n, ref_runs, self.sentinel, self.budget)
        self.raw.setdefault("setup_reference", {})[str(n)] = ref
        # (the wait for the kernel to be idle takes a second by itself)
        self.teardown = max((median(ref["teardown"]) - 1.0) / n, 0.001)
        say(f"  [N={n}] ip -batch reference: {ref['median'] * 1000:.1f} ms "
            f"(median of {len(ref['samples'])}; the kernel dismantled its namespace in "
            f"{median(ref['teardown']):.1f} s)")  # fmt: skip

        if "stomp" in args.transports:
            runs: list[Row] = []
            setup_runs = args.setup_runs if n <= BIG else min(args.setup_runs, args.big_runs)
            while len(runs) < setup_runs:
                if runs:  # another run only when the rest of this N still fits
                    took = max(r.value or 0.0 for r in runs)
                    if self.budget.remaining() < took * 3.5 + 25:
                        break
                lab.fresh()
                engine = lab.bench_engine()
                idle = lab.memory()
                row = measure.setup_stomp(lab, engine, n, ref, self.budget)
                if row.value is None:
                    self.add(row)
                    return
                runs.append(row)
            row = median_row(runs)
            if len(runs) < setup_runs:
                row.note = f"{len(runs)} of {setup_runs} runs (time budget); " + row.note
            self.add(row)
            self.setup_seconds[n] = row.value or 0.0
            self.raw.setdefault("setup", {})[f"stomp-{n}"] = {
                "samples": [r.value for r in runs],
                "runs": [r.detail for r in runs],
            }
            self.step("reapply", "re-apply", n, measure.reapply, lab, engine, n, ref, self.budget)
            if self.empty_host is not None:
                self.step("one", "one network", n, scale.one_network, lab, engine, n,
                          self.empty_host, args.one_runs)  # fmt: skip
            caps = self.step("caps", "getNetworkCapabilities", n, measure.capabilities, lab,
                             engine, n, args.calls, self.budget)  # fmt: skip
            self.step("capscli", "netreload caps", n, scale.caps_cli, lab, n)
            self.step("events", "event latency", n, measure.events, lab, engine, n,
                      args.events, self.budget)  # fmt: skip
            self.step("memory", "memory", n, measure.memory, lab, n, idle)
            if "removal" not in args.skip:
                self.step("memory", "memory after removal", n, measure.memory_after_removal,
                          lab, engine, n, idle, (caps or {}).get("answer_bytes", 0),
                          self.budget, self.removal_per_network())  # fmt: skip

        if "cli" in args.transports:
            estimate = self.setup_seconds.get(n) or self.estimate_setup(n)
            try:
                # and its N bridges to dismantle afterwards
                self.budget.require(estimate * 1.3 + 15 + n * self.teardown, "CLI setup")
            except BudgetExceeded as why:
                self.skipped("setup", "setupNetworks (CLI)", n, str(why))
                return
            lab.fresh()
            row = measure.setup_cli(lab, n, ref, self.budget)
            self.add(row)
            if row.value is not None:
                self.setup_seconds.setdefault(n, row.value)
                self.raw.setdefault("setup", {})[f"cli-{n}"] = {"seconds": row.value, **row.detail}

    def run_ovs(self, n: int) -> None:
        """Benchmark 6 (``benchmarks.ovs_bench``): its own namespaces and OVS."""
        from benchmarks import ovs_bench

        if n > ovs_bench.MAX_N:
            why = f"skipped: one VLAN tag per network, at most {ovs_bench.MAX_N}"
            self.skipped("ovs", "OVS VLAN networks", n, why)
            return
        why = ovs_bench.available()
        if why:
            self.skipped("ovs", "OVS VLAN networks", n, f"skipped: {why}")
            return
        try:  # measured: about 30 s for both at N = 1000 on 2 cores
            self.budget.require(0.04 * n + 10, f"OVS N={n}")
        except BudgetExceeded as why:
            self.skipped("ovs", "OVS VLAN networks", n, str(why))
            return
        say(f"\n== OVS, N = {n}")
        self.step("ovs", "OVS VLAN networks", n, ovs_bench.measure, n)

    def measure_empty_host(self) -> None:
        """Benchmark 7's reference: one network on the empty host, this run."""
        assert self.lab is not None
        self.lab.fresh()
        engine = self.lab.bench_engine()
        raw = self.step("one", "one network, empty host", 0, scale.empty_host, self.lab, engine,
                        self.args.one_runs)  # fmt: skip
        self.empty_host = raw

    def run_nm(self, n: int) -> None:
        """Benchmark 9 (``benchmarks.nm_bench``): its own namespaces and NetworkManager."""
        from benchmarks import nm_bench

        if n > NM_MAX_N:
            why = (f"skipped: above {NM_MAX_N} in the full run (python -m benchmarks.nm_bench "
                   f"--sizes {n})")  # fmt: skip
            self.skipped("nm", "bridges through NetworkManager", n, why)
            return
        why = nm_bench.available()
        if why:
            self.skipped("nm", "bridges through NetworkManager", n, f"skipped: {why}")
            return
        try:  # measured: about 2.3 s for both at N = 10 on 2 busy cores
            self.budget.require(0.5 * n + 20, f"NetworkManager N={n}")
        except BudgetExceeded as why:
            self.skipped("nm", "bridges through NetworkManager", n, str(why))
            return
        say(f"\n== NetworkManager, N = {n}")
        self.step("nm", "bridges through NetworkManager", n, nm_bench.measure, n)

    def run(self) -> None:
        self.lab = BenchLab(superd_env=superd_env(self.args.superd_malloc))
        try:
            self.sentinel = make_namespace("sentinel")
            if "stomp" in self.args.transports and "one" not in self.args.skip:
                self.measure_empty_host()
            for n in self.args.sizes:
                self.run_size(n)
            for n in self.args.sizes:
                if n >= OVS_MIN_N and "ovs" not in self.args.skip:
                    self.run_ovs(n)
            for n in self.args.sizes:
                if n >= OVS_MIN_N and "nm" not in self.args.skip:
                    self.run_nm(n)
        finally:
            # a second Ctrl-C or SIGTERM must not cut the clean-up short
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            self.lab.close()
            if self.sentinel:
                delete_namespace(self.sentinel)


def median_row(runs: list[Row]) -> Row:
    """The run of median time, its value the median of all runs."""
    ordered = sorted(runs, key=lambda r: r.value or 0.0)
    row = ordered[(len(ordered) - 1) // 2]
    if len(runs) > 1:
        row.value = median([r.value or 0.0 for r in runs])
        times = ", ".join(fmt(r.value, r.unit) for r in runs)
        row.note = f"median of {len(runs)} runs ({times}); " + row.note
    return row


def leftover_namespaces(lab: BenchLab | None) -> list[str]:
    """This run's namespaces that still exist (there should be none)."""
    mine = set(CREATED) | ({lab.host_ns, lab.engine_ns} if lab else set())
    return sorted(name for name in mine if Path("/run/netns", name).exists())


def summary(rows: list[Row]) -> str:
    lines = []
    for bench in ORDER:
        these = [r for r in rows if r.benchmark == bench]
        if not these:
            continue
        failed = [r for r in these if r.value is None and r.note.startswith("FAILED")]
        skipped = [r for r in these if r.value is None and r.note.startswith("skipped")]
        judged = [r for r in these if r.met is not None and r.value is not None]
        met = [r for r in judged if r.met]
        text = f"  {bench:8s} {len(these) - len(failed) - len(skipped)} measured"
        if judged:
            text += f", targets met {len(met)}/{len(judged)}"
            missed = [f"{r.what} N={r.n} ({r.ratio:.1f}×)" if r.ratio is not None
                      else f"{r.what} N={r.n} ({r.value:g} {r.unit})"
                      for r in judged if not r.met]  # fmt: skip
            if missed:
                text += " — missed: " + "; ".join(missed)
        if failed:
            text += f", FAILED {len(failed)}"
        if skipped:
            text += f", skipped {len(skipped)} (time budget)"
        lines.append(text)
    return "\n".join(lines)


def superd_env(allocator: str) -> dict[str, str]:
    """superd's added environment for ``--superd-malloc``."""
    return {} if allocator == "default" else {"PYTHONMALLOC": allocator}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="N = 10, 100 (under 2 minutes)")
    parser.add_argument("--sizes", help="comma-separated N (default 10,100,1000,2000,5000)")
    parser.add_argument(
        "--transport",
        choices=("stomp", "cli", "both"),
        default="both",
        help="setupNetworks path(s) (default both; CLI when time allows)",
    )
    parser.add_argument("--calls", type=int, default=50, help="getNetworkCapabilities calls")
    parser.add_argument("--events", type=int, default=10, help="event latency samples")
    parser.add_argument("--ref-runs", type=int, default=3, help="ip -batch reference runs")
    parser.add_argument("--one-runs", type=int, default=scale.ONE_RUNS,
                        help=f"benchmark 7: add/remove pairs per transport (default "
                        f"{scale.ONE_RUNS}; more on a busy machine)")  # fmt: skip
    parser.add_argument(
        "--setup-runs",
        type=int,
        default=3,
        help="setupNetworks runs over STOMP, each on a fresh host (fewer when time is short)",
    )
    parser.add_argument(
        "--big-runs",
        type=int,
        default=1,
        help=f"setupNetworks runs over STOMP for N > {BIG} (default 1: a shared 2-core machine)",
    )
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out "
                        "(one, reapply, caps, capscli, events, memory, removal, ovs, nm; "
                        "setup builds the host: never left out)")  # fmt: skip
    parser.add_argument("--budget", type=float, help="seconds for the whole run")
    parser.add_argument("--superd-malloc", choices=("default", "pymalloc", "malloc"),
                        default="default", help="superd's PYTHONMALLOC (default: what superd "
                        "chooses itself; an A/B of its allocator)")  # fmt: skip
    parser.add_argument("--no-json", action="store_true", help="do not write results/*.json")
    args = parser.parse_args(argv)  # fmt: skip
    if args.sizes:
        args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    else:
        args.sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    if any(not 1 <= n <= MAX_SIZE for n in args.sizes):
        parser.error(f"sizes must be between 1 and {MAX_SIZE}")
    args.skip = sorted({x.strip() for x in args.skip.split(",") if x.strip()})
    if args.budget is None:
        args.budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    args.transports = ("stomp", "cli") if args.transport == "both" else (args.transport,)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("benchmarks need root (network namespaces): sudo make bench", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    started = time.monotonic()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    env = environment()
    say(f"netreload benchmarks {stamp}: N = {', '.join(map(str, args.sizes))}, "
        f"budget {args.budget:.0f} s, {env['cpus']} CPUs, kernel {env['kernel']}, "
        f"git {env['git_head']}{' + uncommitted changes' if env['git_dirty'] else ''}")  # fmt: skip
    if env["git_dirty"]:
        say("  working tree: " + ", ".join(line[3:] for line in env["git_dirty"]))
    runner = Runner(args)
    status, interrupted = 0, None
    try:
        runner.run()
    except KeyboardInterrupt as why:
        interrupted = str(why) or "SIGINT"
        status = 130
    except Exception:
        traceback.print_exc()
        status = 1
    elapsed = time.monotonic() - started
    left = leftover_namespaces(runner.lab)

    for bench in ORDER:
        rows = [r for r in runner.rows if r.benchmark == bench]
        if rows:
            say(f"\n{TITLES[bench]}\n")
            say(table(rows))
    say("\nSummary")
    say(summary(runner.rows) or "  nothing measured")
    say(f"  run time {elapsed:.0f} s (budget {args.budget:.0f} s)"
        + (f"; INTERRUPTED ({interrupted})" if interrupted else ""))  # fmt: skip
    if left:
        say(f"  WARNING: namespaces left behind: {', '.join(left)}")
        status = status or 1
    if not args.no_json and runner.rows:
        path = RESULTS / f"{stamp}.json"
        write_json(path, {
            "started": stamp, "seconds": round(elapsed, 1), "args": {
                k: v for k, v in vars(args).items() if k != "transports"},
            "environment": env, "interrupted": interrupted,
            "rows": [r.to_dict() for r in runner.rows], "raw": runner.raw,
        })  # fmt: skip
        say(f"  results: {path.relative_to(SOURCE_ROOT)}")
    failed = any(r.note.startswith("FAILED") for r in runner.rows)
    return status or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
