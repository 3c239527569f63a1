"""superd's CPU for the big add and the big removal, and its memory after
the removal, with arms side by side: ``python -m benchmarks.window_ab``.

    sudo .venv/bin/python -m benchmarks.window_ab --n 1000 --cycles 3 \\
        --arms '/tmp/old@NETRELOAD_MALLOC_WINDOW=0,/tmp/old,.' [--prefix P]

One superd per arm (``TREE@K=V@…``: a checkout and superd's extra
environment, as :mod:`benchmarks.arenas` takes them), each in its own
namespace, all started at once; then ``--cycles`` times, arm after arm:
apply the workload's N networks, then one plan removing them all. Each
request's superd CPU (``/proc/PID/stat`` utime and stime, before the
request and once its answer is in) and wall time; after each removal the
pymalloc arenas and VmRSS (``NETRELOAD_TRACEMALLOC``'s dump, after
``release_memory``). The arms' requests alternate, so a loaded machine's
noise falls on all of them alike; the same superd serves every cycle of its
arm (its heap's history is the same in each arm).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import workload
from benchmarks.arenas import TreeSuperd, dump, parse_arms, parse_dump
from benchmarks.lab import proc_cpu_split
from tests.functional.conftest import create_host_ns, destroy_host_ns, socket_folder
from tests.functional.superd_daemon import NO_CHECK, make_plan


def timed(conn, pid: int, plan: dict) -> dict[str, float]:
    """Wall, user and system seconds of superd for one apply_plan."""
    wall, (user, system) = time.monotonic(), proc_cpu_split(pid)
    conn.result("apply_plan", plan=plan)
    after = proc_cpu_split(pid)
    return {"wall": time.monotonic() - wall, "user": after[0] - user, "sys": after[1] - system}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.window_ab")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--arms", default=".@NETRELOAD_MALLOC_WINDOW=0,.")
    parser.add_argument("--prefix", default="nrb-wab-")
    parser.add_argument("--out", type=Path, help="append each sample (JSON lines)")
    args = parser.parse_args(argv)
    arms = parse_arms(args.arms)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the cleanup runs on SIGTERM too
    samples: dict[str, list[dict]] = {}
    with contextlib.ExitStack() as stack:
        running = []
        for index, (tree, env) in enumerate(arms):
            host = create_host_ns(2, prefix=f"{args.prefix}{index}-")
            stack.callback(destroy_host_ns, host)
            root = Path(tempfile.mkdtemp(prefix=f"{args.prefix}run-", dir="/tmp"))
            stack.callback(shutil.rmtree, root, True)
            sock_dir = stack.enter_context(socket_folder(prefix=f"{args.prefix}sock-"))
            daemon = TreeSuperd(host, root, sock_dir)
            daemon.tree = tree
            daemon.env.update({"NETRELOAD_TRACEMALLOC": str(root / "dumps.txt"),
                               "NETRELOAD_TRACEMALLOC_FRAMES": "0", **env})  # fmt: skip
            stack.enter_context(daemon)
            conn = daemon.connect()
            conn.sock.settimeout(3600)
            stack.callback(conn.close)
            conn.result("netinfo")
            label = f"{index}:{tree.name or tree}" + "".join(f"@{k}={v}" for k, v in env.items())
            idle = parse_dump(dump(daemon, root / "dumps.txt"))
            print(f"{label}: idle {idle}", flush=True)
            running.append((label, daemon, conn, root))
        nets = workload.networks(args.n)
        removal = {name: {"remove": True} for name in nets}
        for cycle in range(args.cycles):
            for label, daemon, conn, root in running:
                pid = daemon.proc.pid
                add = timed(conn, pid, make_plan(conn, nets, NO_CHECK))
                remove = timed(conn, pid, make_plan(conn, removal, NO_CHECK))
                after = parse_dump(dump(daemon, root / "dumps.txt"))
                sample = {"arm": label, "cycle": cycle, "add": add, "remove": remove,
                          "after": after}  # fmt: skip
                print(json.dumps(sample), flush=True)
                samples.setdefault(label, []).append(sample)
                if args.out:
                    with args.out.open("a") as out:
                        out.write(json.dumps(sample) + "\n")
    for label, runs in samples.items():
        figures = {f"{step}_{key}": round(1e3 * statistics.median(r[step][key] for r in runs))
                   for step in ("add", "remove") for key in ("user", "sys", "wall")}  # fmt: skip
        arenas = [r["after"].get("arenas") for r in runs]
        rss = [r["after"]["vmrss_mib"] for r in runs]
        print(f"{label}: medians (ms) {figures}; after the removal: arenas {arenas}, "
              f"VmRSS {rss} MiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
