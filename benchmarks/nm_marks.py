"""What netreload's kernel marks cost on the NetworkManager path.

    sudo .venv/bin/python -m benchmarks.nm_marks --n 300 [--tree PATH]

In a fresh namespace with a private NetworkManager (``tests.functional.nm_lab``),
a child process in the namespace runs the NetworkManager configurator of
``--tree`` (default: this one; another tree, e.g. ``git archive main``,
for an A/B) on the reference workload's N networks in one transaction,
as superd's apply_plan does (``begin``, ``add_network`` × N, ``commit``:
checkpoint, profiles, activations awaited, marks). It reports:

* ``marks`` / ``marks_up``: the kernel marks sent, and how many of them met
  an up device (``Kernel.mark`` wrapped; the flags of the device it read);
* ``mark_cpu_ms``: the thread CPU (``time.thread_time``: the kernel's work
  for our requests included) spent inside those marks; ``commit_cpu_s``:
  the whole commit's;
* then, the N bridges in place (``--ports``: each given an up veth port
  first, outside NetworkManager: a bridge with a port has carrier, so IPv6
  configures it): ``up_us`` / ``down_us``, one alias change
  on an up workload bridge against one on a down bridge (100 more made
  with ``ip -batch``), alternated ``--rounds`` times, medians of the thread
  CPU per mark; ``v6_routes``: the IPv6 routes of every table then (the
  walk a change of an up device makes in IPv6 is over those).

Only CPU times and counts: the machine is shared (wall times are the
load's). The namespace and NetworkManager are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import workload

SOURCE = Path(__file__).resolve().parents[1]
#: argv: the tree, this file, its options
CHILD = (
    "import runpy, sys; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def child(config_path: str, n: int, rounds: int, ports: bool) -> dict[str, Any]:
    """Run inside the namespace, with ``--tree`` first on sys.path."""
    from configurators import iproute2_netlink
    from configurators.iproute2_reads import IFF_UP
    from configurators.registry import Configurators
    from shared.config import load_config
    from shared.netmodel.network import build_network

    figures: dict[str, Any] = {"marks": 0, "marks_up": 0, "mark_cpu_ms": 0.0}
    original = iproute2_netlink.Kernel.mark

    def timed_mark(kernel: Any, dev: dict[str, Any]) -> None:
        figures["marks"] += 1
        figures["marks_up"] += bool(dev["flags"] & IFF_UP)
        started = time.thread_time()
        try:
            original(kernel, dev)
        finally:
            figures["mark_cpu_ms"] += (time.thread_time() - started) * 1e3

    iproute2_netlink.Kernel.mark = timed_mark
    configurators = Configurators(load_config(config_path))
    configurators.begin()
    for i in range(n):
        network = build_network(workload.net_name(i), workload.net_attrs(i))
        configurators.default.add_network(network, None, False)
    started = time.thread_time()
    configurators.commit()
    figures["commit_cpu_s"] = time.thread_time() - started
    configurators.close()
    figures.update(mark_cost(n, rounds, ports))
    return figures


def mark_cost(n: int, rounds: int, ports: bool, marks: int = 100) -> dict[str, Any]:
    """µs of thread CPU per alias change: up workload bridges against down
    bridges ``nmd0`` … made here, alternated; medians. ``ports``: each
    workload bridge first gets an up veth port whose peer is up too
    (carrier: IPv6 configures all three, link-local addresses and routes),
    outside NetworkManager."""
    from netlink import encode

    script = "".join(f"link add nmd{i} type bridge\n" for i in range(marks))
    if ports:
        script += "".join(
            f"link add nmp{i} master {workload.net_name(i)} up type veth peer name nmq{i}\n"
            f"link set nmq{i} up\n"
            for i in range(n)
        )
    subprocess.run(["ip", "-batch", "-"], input=script, text=True, check=True)
    if ports:
        time.sleep(5)  # the ports' carrier: IPv6 link-local addresses and routes settle
    groups = {
        "up": [socket.if_nametoindex(workload.net_name(i)) for i in range(min(n, marks))],
        "down": [socket.if_nametoindex(f"nmd{i}") for i in range(marks)],
    }
    spent: dict[str, list[float]] = {state: [] for state in groups}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as sock:
        for r in range(rounds):
            for state, indexes in groups.items():
                started = time.thread_time_ns()
                for index in indexes:  # a new alias each round: a real change
                    message = encode.encode("link", ("set",), {"index": index, "ifalias": f"m{r}"})
                    encode.transact(sock, message)
                spent[state].append((time.thread_time_ns() - started) / 1e3 / len(indexes))
    routes = subprocess.run(["ip", "-6", "route", "show", "table", "all"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    return {
        "up_us": statistics.median(spent["up"]),
        "down_us": statistics.median(spent["down"]),
        "v6_routes": len(routes.splitlines()),
    }


def run(n: int, tree: Path, rounds: int, ports: bool, prefix: str) -> dict[str, Any]:
    """One measurement in a fresh namespace (``<prefix>nmm-…``) and NetworkManager."""
    from benchmarks import lab as lab_module
    from benchmarks.lab import delete_namespace, make_namespace
    from tests.functional.nm_lab import NmLab

    lab_module.PREFIX = prefix  # beside other runs on the machine: names of its own
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}nmmarks-"))
    ns = make_namespace("nmm")
    try:
        for folder in ("run", "lib"):
            (root / folder).mkdir()
        with NmLab(ns, root / "nm") as lab:
            config = root / "netreload.conf"
            config.write_text(
                "[vars]\nnet_configurator = nm\n"
                f"[paths]\nrun_dir = {root / 'run'}\nlib_dir = {root / 'lib'}\n"
                f"resolv_conf = {root / 'resolv.conf'}\n"
                f"[nm]\nbus = {lab.address}\ntimeout = 600\n"
            )
            # this file run with the measured tree's modules (it may not have this file)
            cmd = ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD, str(tree), __file__,
                   "--child", str(config), "--n", str(n), "--rounds", str(rounds),
                   *(["--ports"] if ports else [])]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=tree)
            if out.returncode != 0:
                raise RuntimeError(f"nm_marks child: {out.stderr.strip()[-2000:]}")
            return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        delete_namespace(ns)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--ports", action="store_true", help="a veth port per bridge first")
    parser.add_argument("--tree", type=Path, default=SOURCE, help="the netreload tree measured")
    parser.add_argument("--prefix", default="nrb-", help="of the namespace and scratch folder")
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        figures = child(args.child, args.n, args.rounds, args.ports)
    else:
        figures = run(args.n, args.tree.resolve(), args.rounds, args.ports, args.prefix)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
