"""CPU of superd's heaviest read path inside and outside a malloc window
(``shared.allocator``), in one process, interleaved.

    sudo .venv/bin/python -m benchmarks.malloc_window [--n 1000] [--reps 15]
        [--prefix pymem-]

A scratch namespace with N bridges carrying an address; one child process
in it times ``superd.netstate.dump_state`` (netlink dumps decoded, the
state built: what the monitor does at start and on a full resync)
alternately with and without the window, ``time.thread_time`` per call,
and prints the medians. The bridges are deleted in batches before the
namespace (the kernel's hazard: see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.allocator_cpu import bridges_namespace
from benchmarks.lab import SOURCE_ROOT

CHILD = """
import gc, json, socket, statistics, sys, time
from netlink import query
from shared.allocator import malloc_window
from superd.netstate import dump_state
sock = query.strict(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
dump_state(sock, 1)
samples = {False: [], True: []}
for rep in range(int(sys.argv[1])):
    for window in (rep % 2 == 0, rep % 2 == 1):
        gc.collect()
        with malloc_window(window) as opened:
            assert opened == window
            started = time.thread_time()
            state = dump_state(sock, rep + 2)
            samples[window].append(time.thread_time() - started)
        del state
print(json.dumps({str(k): round(statistics.median(v) * 1000, 2) for k, v in samples.items()}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.malloc_window")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--prefix", default="nrb-")
    args = parser.parse_args(argv)
    ns = f"{args.prefix}window-{os.getpid()}"
    names = [f"nrw{i}" for i in range(args.n)]
    with bridges_namespace(ns, names):
        for _ in range(args.children):
            out = subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD, str(args.reps)],
                cwd=SOURCE_ROOT, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            medians = json.loads(out)
            print(f"dump_state of {args.n} bridges, CPU median of {args.reps}: "
                  f"pymalloc {medians['False']} ms, malloc window {medians['True']} ms",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
