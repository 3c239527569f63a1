"""CPU of ``superd.admin_state.marked_down`` over a host's networks: the
kernel read (one RTM_GETLINK dump past 16 names) against the live monitor's
answer (``LiveNetinfo.current`` + its held-down set).

``python -m benchmarks.held_down_cpu [--n 5000] [--rounds 30] [--ns NS]``
builds a namespace of ``n`` marked bridges, all up but ``DOWN`` of them
(as ``ip -batch``), runs one child in it that starts a monitor as superd
does, then alternates the three ways of answering ``rounds`` times, each
measured with ``time.process_time`` (every thread of the process: the
monitor thread's drain counts, and a dump's kernel work is system time of
the reading process). Prints the medians. ``--ns`` reuses a namespace
already built (and leaves it), so that several runs share one: deleting
thousands of bridges keeps the kernel busy for a while.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.allocator_cpu import delete_namespace_of, ip_batch
from benchmarks.lab import SOURCE_ROOT

DOWN = 3  # bridges held down among them: what a crash leaves (a few)

CHILD = r"""
import json, statistics, sys, tempfile, time
from pathlib import Path
from superd.admin_state import marked_down, read_marked_down
from superd.monitor import LiveNetinfo
from tests.functional.monitor_lab import monitor_config

n, rounds = int(sys.argv[1]), int(sys.argv[2])
names = {f"nrh{i}" for i in range(n)}
scratch = tempfile.TemporaryDirectory(prefix="nrb-held-down-")
live = LiveNetinfo(monitor_config(Path(scratch.name)), resync_interval=None)
live.start()
live.wait_quiet(30)

def cpu(call):
    start = time.process_time()
    answer = call()
    return time.process_time() - start, answer

def walk():
    live._down_memo = None  # as after a full dump: every link looked at
    return marked_down(names, live)

ways = {"kernel": lambda: read_marked_down(names), "monitor": lambda: marked_down(names, live),
        "monitor_walk": walk}
samples = {way: [] for way in ways}
answers = {}
for _ in range(rounds):
    for way, call in ways.items():
        took, answers[way] = cpu(call)
        samples[way].append(took * 1000)
live.close()
scratch.cleanup()
assert len({frozenset(a) for a in answers.values()}) == 1, answers
print(json.dumps({"down": sorted(answers["kernel"]), "ms": {
    way: {"median": round(statistics.median(s), 3), "min": round(min(s), 3),
          "max": round(max(s), 3)} for way, s in samples.items()}}))
"""


def build(ns: str, n: int) -> None:
    """``ns`` with ``n`` marked bridges, up but the first ``DOWN``."""
    subprocess.run(["ip", "netns", "add", ns], check=True)
    names = [f"nrh{i}" for i in range(n)]
    ip_batch(ns, [f"link add {name} type bridge" for name in names]
             + [f"link set {name} alias netreload" for name in names]
             + [f"link set {name} up" for name in names[DOWN:]])  # fmt: skip


def destroy(ns: str, n: int) -> None:
    delete_namespace_of(ns, [f"nrh{i}" for i in range(n)])


def measure(ns: str, n: int, rounds: int) -> dict:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD, str(n), str(rounds)],
        cwd=SOURCE_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.held_down_cpu")
    parser.add_argument("--n", type=int, default=5000, help="bridges")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--ns", help="a namespace built before (kept)")
    parser.add_argument("--build-only", action="store_true", help="build --ns and keep it")
    args = parser.parse_args(argv)
    ns = args.ns or f"helddown2-bench-{os.getpid()}"
    if args.build_only:
        build(ns, args.n)
        return 0
    try:  # a build cut short leaves a namespace to delete too
        if args.ns is None:
            build(ns, args.n)
        result = measure(ns, args.n, args.rounds)
    finally:
        if args.ns is None:
            destroy(ns, args.n)
    print(json.dumps({"n": args.n, "rounds": args.rounds, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
