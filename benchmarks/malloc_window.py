"""CPU of superd's heaviest read path inside and outside a malloc window
(``shared.allocator``), in one process, interleaved.

    sudo .venv/bin/python -m benchmarks.malloc_window [--n 1000] [--reps 15]
        [--prefix pymem-] [--work dump|verify]

A scratch namespace with N bridges carrying an address; one child process
in it times ``superd.netstate.dump_state`` (netlink dumps decoded, the
state built: what the monitor does at start and on a full resync)
alternately with and without the window, the thread's user CPU
(``RUSAGE_THREAD``) per call, and prints the medians. ``--work verify``
adds the rest of a big add's verification Python: the report built from
the state and encoded, and one running-configuration document encoded per
bridge. The bridges are deleted in batches before the
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
import gc, json, resource, socket, statistics, sys, time
import orjson
from netlink import query
from shared.allocator import malloc_window
from shared.netinfo_report import build_capabilities
from superd.netstate import dump_state
sock = query.strict(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
names = [link["name"] for link in dump_state(sock, 1).links.values() if link["name"] != "lo"]
running = {"networks": {name: {"bridged": True, "stp": False, "mtu": 1500, "bootproto": "none",
                               "ipaddr": "10.0.0.1", "netmask": "255.255.255.0",
                               "defaultRoute": False, "switch": "legacy"} for name in names},
           "bonds": {}}

def verify(version):
    # the verification's Python after a big add: the dump decoded into a state,
    # the report built from it and encoded, one running-configuration document
    # encoded per network (what ConfigStore writes)
    state = dump_state(sock, version)
    if sys.argv[2] == "dump":
        return state
    links, addresses, routes, rules = state.inputs()
    caps = build_capabilities(links, addresses, routes, running, [], lambda name: False, rules)
    encoded = [orjson.dumps(attrs) for attrs in running["networks"].values()]
    return state, caps, orjson.dumps(caps), encoded

verify(2)
samples = {False: [], True: []}
for rep in range(int(sys.argv[1])):
    for window in (rep % 2 == 0, rep % 2 == 1):
        gc.collect()
        with malloc_window(window) as opened:
            assert opened == window
            started = resource.getrusage(resource.RUSAGE_THREAD).ru_utime
            made = verify(rep + 3)
            samples[window].append(resource.getrusage(resource.RUSAGE_THREAD).ru_utime - started)
        del made
print(json.dumps({str(k): round(statistics.median(v) * 1000, 2) for k, v in samples.items()}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.malloc_window")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--children", type=int, default=3)
    parser.add_argument("--prefix", default="nrb-")
    parser.add_argument("--work", choices=("dump", "verify"), default="dump",
                        help="dump_state alone, or with the report built and encoded")  # fmt: skip
    args = parser.parse_args(argv)
    ns = f"{args.prefix}window-{os.getpid()}"
    names = [f"nrw{i}" for i in range(args.n)]
    with bridges_namespace(ns, names):
        for _ in range(args.children):
            out = subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD, str(args.reps),
                 args.work],
                cwd=SOURCE_ROOT, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            medians = json.loads(out)
            print(f"{args.work} of {args.n} bridges, user CPU median of {args.reps}: "
                  f"pymalloc {medians['False']} ms, malloc window {medians['True']} ms",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
