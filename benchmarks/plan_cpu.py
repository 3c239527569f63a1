"""The Python of a big request's plan, in process: ``python -m benchmarks.plan_cpu``.

``python -m benchmarks.plan_cpu [--n 1000] [--reps 15] [--children 6]
[--trees OLD,NEW]`` measures, for the benchmark workload of N networks on
an empty host, the thread CPU time (``time.thread_time``, so the machine's
load counts little) of the steps that run on the request's critical path
in Python:

* ``frontd_plan``: frontd's ``plan_setup_networks`` (canonicalize,
  validate, plan);
* ``superd_intake``: superd's ``plan_from_wire`` of the plan as it arrives
  (``to_dict(running=False)`` through JSON: ``Plan.from_dict``).

Each tree named in ``--trees`` (a source folder; ``.`` this one) is
measured in its own child process, ``--reps`` repetitions each, the
collector on as in the daemons; the trees alternate child after child
(``--children`` rounds) and the end prints each tree's median of the
children's medians per step, in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time
from benchmarks import workload
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from superd.plan_intake import plan_from_wire

n, reps = int(sys.argv[1]), int(sys.argv[2])
request = workload.setup_request(n)
netinfo = NetinfoSnapshot.from_caps({"nics": {}, "bondings": {}, "bridges": {}, "vlans": {},
                                     "networks": {}, "nameservers": []})
running = RunningConfig.from_dict({"networks": {}, "bonds": {}})
times = {"frontd_plan": [], "superd_intake": []}
for _ in range(reps):
    started = time.thread_time()
    plan = plan_setup_networks(request["networks"], request["bondings"], request["options"],
                               netinfo, running)
    times["frontd_plan"].append(time.thread_time() - started)
    wire = json.loads(json.dumps({"plan": plan.to_dict(running=False)}))
    started = time.thread_time()
    received = plan_from_wire(wire)
    times["superd_intake"].append(time.thread_time() - started)
    assert len(received.operations) == n
print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
"""


def measure(tree: Path, n: int, reps: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(reps)], cwd=tree, capture_output=True,
        text=True, check=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_cpu")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--children", type=int, default=6)
    parser.add_argument("--trees", default=".", help="source folders, ',' between")
    args = parser.parse_args(argv)
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    found: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    for _ in range(args.children):
        for tree in trees:
            found[tree].append(measure(tree, args.n, args.reps))
    for tree, children in found.items():
        line = ", ".join(
            f"{step} {1e3 * statistics.median(c[step] for c in children):.3f} ms "
            f"{[round(1e3 * c[step], 3) for c in children]}"
            for step in children[0]
        )  # fmt: skip
        print(f"{tree}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
