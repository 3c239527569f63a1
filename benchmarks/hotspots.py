"""Where setupNetworks spends its time: ``python -m benchmarks.hotspots``.

``python -m benchmarks.hotspots [--n 1000] [--tool cprofile|py-spy] [--top 25]``
(root) sets up the benchmark workload of N networks once over STOMP/TLS in a
fresh :class:`benchmarks.lab.BenchLab`, with the daemons profiled, then
re-applies it unchanged, and prints the top entries per thread:

* ``cprofile`` (default): superd and frontd run under
  :mod:`benchmarks.profiled`, one cProfile per thread; the tables list
  functions by cumulative time (wall clock, profiler overhead included: the
  setup itself runs slower than unprofiled).
* ``py-spy``: the daemons run normally, ``py-spy record`` samples them;
  the tables give each function's share of the samples, inclusive (like
  cumulative) and own. py-spy is optional: no install step (``make venv``
  included) installs it; ``.venv/bin/pip install py-spy`` does, and it is
  looked for next to this interpreter, then on PATH.

Everything runs in the lab's namespaces and is removed at the end.
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import workload
from benchmarks.lab import BenchLab, wait_kernel_idle

SOURCE = str(Path(__file__).resolve().parents[1]) + "/"


def short(path: str) -> str:
    for prefix in (SOURCE, sys.prefix + "/lib/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    marker = "site-packages/"
    return path[path.index(marker) + len(marker) :] if marker in path else path


def thread_group(filename: str) -> str:
    """``superd-net_0-3.prof`` → ``superd-net``; ``Thread-4__handle_-7`` → ``Thread``."""
    stem = Path(filename).stem.rsplit("-", 1)[0]
    for sep in ("_", " ", "("):
        stem = stem.split(sep)[0] if stem.startswith("Thread") else stem
    return stem.rsplit("_", 1)[0] if stem[-1:].isdigit() else stem


def cprofile_tables(folder: Path, top: int) -> str:
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for path in sorted(folder.glob("*.prof")):
        groups[thread_group(path.name)].append(str(path))
    out = []
    totals = []
    for group, files in groups.items():
        stats = pstats.Stats(*files)
        totals.append((stats.total_tt, group, stats, len(files)))
    for total, group, stats, count in sorted(totals, key=lambda t: t[0], reverse=True):
        if total < 0.05:
            continue
        entries = sorted(stats.stats.items(), key=lambda item: item[1][3], reverse=True)
        out.append(f"\n  thread group {group} ({count} thread(s), {total:.2f} s profiled)")
        out.append(f"  {'cumtime':>8} {'tottime':>8} {'calls':>9}  function")
        for (file, line, func), (_cc, nc, tt, ct, _callers) in entries[:top]:
            where = f"{short(file)}:{line}" if line else file
            out.append(f"  {ct:8.3f} {tt:8.3f} {nc:9d}  {func} ({where})")
    return "\n".join(out)


def pyspy_table(raw: Path, top: int) -> str:
    """Inclusive and own sample shares per function from py-spy's raw
    (collapsed-stack) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        # an idle thread waiting on a lock/select still samples: keep it, it is
        # what a wall-clock profile shows too
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    if not total:
        return "  (no samples)"
    out = [f"  {total} samples", f"  {'incl%':>6} {'own%':>6}  function"]
    for frame, count in inclusive.most_common(top):
        out.append(f"  {100 * count / total:6.1f} {100 * own[frame] / total:6.1f}  {frame}")
    return "\n".join(out)


def one_request(index: int, remove: bool = False) -> dict:
    name = workload.net_name(index)
    attrs = {"remove": True} if remove else workload.networks(index + 1)[name]
    return {"networks": {name: attrs}, "bondings": {}, "options": {"connectivityCheck": False}}


# py-spy is no dependency of netreload: said in --help and when it is missing.
PYSPY_INSTALL = (
    "py-spy is optional and installed by no install step (not by make venv): "
    ".venv/bin/pip install py-spy"
)


def find_pyspy() -> str | None:
    """py-spy next to this interpreter (the venv's), else on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotspots", epilog=PYSPY_INSTALL)
    parser.add_argument("--n", type=int, default=1000, help="networks (default 1000)")
    parser.add_argument("--rate", type=int, default=200,
                        help="py-spy: samples a second (default 200; a big request is a "
                             "few hundred ms: 2000 gives a few thousand samples)")  # fmt: skip
    parser.add_argument("--tool", choices=("cprofile", "py-spy"), default="cprofile",
                        help="profiler (default cprofile); py-spy: see below")  # fmt: skip
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the setup")
    parser.add_argument(
        "--one", type=int, default=0, metavar="K",
        help="py-spy: set up the N networks unprofiled, then profile K additions and removals "
        "of ONE network on that host (what the engine does to a big host)",
    )  # fmt: skip
    parser.add_argument("--gil", action="store_true",
                        help="py-spy: sample only the thread holding the GIL (Python's CPU; "
                        "a thread waiting for the GIL or the kernel is not counted)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="py-spy: copy its raw (collapsed-stack) samples there")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt))
    pyspy = find_pyspy() if args.tool == "py-spy" else None
    if args.tool == "py-spy" and pyspy is None:
        print(f"py-spy not found next to {sys.executable} nor on PATH. {PYSPY_INSTALL}",
              file=sys.stderr)  # fmt: skip
        return 2

    wait_kernel_idle()  # not while a namespace of a previous run is being dismantled
    lab = BenchLab()
    if args.tool == "cprofile":
        lab.profile_dir = lab.root / "profile"
        lab.profile_dir.mkdir()
        lab.profile_dir.chmod(0o755)
    samplers: dict[str, subprocess.Popen] = {}
    try:
        lab.fresh()
        engine = lab.bench_engine()
        pids = lab.daemon_pids()
        request = workload.setup_request(args.n)
        if args.one:
            if not pyspy:
                print("--one needs --tool py-spy", file=sys.stderr)
                return 2
            reply = engine.command(
                {"call": "Host.setupNetworks", "params": request, "timeout": args.timeout}
            )
            if "error" in reply:
                raise RuntimeError(f"setupNetworks: {reply['error']}")
            print(f"setup of N={args.n}: {reply['seconds']:.2f} s (not profiled)", flush=True)
        if pyspy:
            for name, pid in pids.items():
                samplers[name] = subprocess.Popen(
                    [pyspy, "record", "--pid", str(pid), "--rate", str(args.rate),
                     "--format", "raw",
                     "--nonblocking", "--output", str(lab.root / f"{name}.pyspy.txt"),
                     *(["--gil"] if args.gil else [])],
                    stdout=subprocess.DEVNULL, stderr=open(lab.logs / f"pyspy-{name}.log", "wb"),
                )  # fmt: skip
            time.sleep(1.0)
        cpu0 = lab.cpu_seconds()
        steps = [(w, request) for w in ("setup", "re-apply")]
        if args.one:
            steps = [(f"{w} one network", r) for _ in range(args.one) for w, r in (
                ("add", one_request(args.n)), ("remove", one_request(args.n, remove=True)))]
        for what, params in steps:
            reply = engine.command(
                {"call": "Host.setupNetworks", "params": params, "timeout": args.timeout}
            )
            if "error" in reply:
                raise RuntimeError(f"setupNetworks: {reply['error']}")
            cpu = {k: round(v - cpu0[k], 2) for k, v in lab.cpu_seconds().items()}
            cpu0 = lab.cpu_seconds()
            print(
                f"{what} of N={args.n} under {args.tool}: {reply['seconds']:.2f} s "
                f"(CPU superd {cpu['superd']} s, frontd {cpu['frontd']} s)",
                flush=True,
            )
        for proc in samplers.values():
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in samplers.values():
            proc.wait(60)
        lab.stop_frontd()
        lab.stop_superd()  # the profiled threads write their statistics on the way out
        notable = [
            line
            for line in lab.log("superd").splitlines()
            if any(word in line for word in ("resync", "ENOBUFS", "overrun", "WARNING", "ERROR"))
        ]
        if notable:
            print("\nsuperd log (resyncs, warnings):\n  " + "\n  ".join(notable[-20:]))
        for name in ("superd", "frontd"):
            print(f"\n=== {name} ===")
            if pyspy and args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(lab.root / f"{name}.pyspy.txt", args.keep / f"{name}.pyspy.txt")
            if pyspy:
                print(pyspy_table(lab.root / f"{name}.pyspy.txt", args.top))
            else:
                assert lab.profile_dir is not None
                print(cprofile_tables(lab.profile_dir / name, args.top))
    finally:
        for proc in samplers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        lab.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
