"""superd's pymalloc arenas and VmRSS at idle, with N networks and after one
request removing them all (benchmark 5b's question, without its lab).

    sudo .venv/bin/python -m benchmarks.arenas --n 1000 [--runs 2]
        [--trees /tmp/old-tree,.] [--frames 0|8] [--out FILE.json]

One namespace (``arenas-*``) is made and reused by every run, then deleted.
Each run starts superd from one of ``--trees`` (a checkout: superd is run
with that folder as its working directory, so its modules are imported from
there), with ``NETRELOAD_TRACEMALLOC``, and sends ``SIGUSR2`` at idle, with
the N networks (the workload's: nic-less bridged networks ``bnI`` with
``10.(I//256).(I%256).1/24``) and after their removal. Each dump is taken
after ``release_memory`` (the hook runs it), so it shows what a big change
leaves once superd has done what it does after one. Trees alternate run by
run (old, new, old, new...) so that a machine's load falls on both.

Each step's figures: VmRSS before the dump's own ``release_memory``
(``vmrss_before``: what benchmark 5b reads) and after it, and superd's
resident memory by kind of mapping (``*_split``: glibc's heap, pymalloc's
arenas, other anonymous mappings, stacks, files; after the removal both
1 s after its answer and after the dump).

``--frames 0`` (default) reads pymalloc's statistics (arenas, bytes in
allocated blocks); ``--frames 8`` traces allocations instead, and the last
dump lists, by traceback, what was allocated since idle and still lives
(the survivors): slow, a diagnosis only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks import workload
from benchmarks.lab import proc_cpu_seconds
from tests.functional.conftest import create_host_ns, destroy_host_ns, socket_folder
from tests.functional.superd_daemon import NO_CHECK, Superd, make_plan

PREFIX = "arenas-"
STEPS = ("idle", "with", "after")


class TreeSuperd(Superd):
    """superd run from another checkout (its working directory comes first
    on ``sys.path`` with ``-m``)."""

    tree: Path = Path.cwd()

    def spawn(self, notify_path: Path | None = None) -> subprocess.Popen:
        env = {**os.environ, **self.env, "NOTIFY_SOCKET": str(notify_path or "")}
        with self.log.open("a") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.host.name, sys.executable, "-m", "superd.main",
                 "--config", str(self.config)],
                cwd=self.tree, stdout=log, stderr=log, env=env,
            )  # fmt: skip


def parse_dump(text: str) -> dict[str, float]:
    """The figures of one dump (after ``release_memory``; ``vmrss_before``:
    VmRSS before the dump's own release, what benchmark 5b reads)."""
    before, after = text.split("after release_memory:", 1)
    out = {"vmrss_mib": float(re.search(r"VmRSS ([\d.]+) MiB", after)[1])}
    found = re.search(r"VmRSS ([\d.]+) MiB", before)
    if found:
        out["vmrss_before"] = float(found[1])
    for key, label in (("arenas", "arenas allocated current"),
                       ("blocks_mb", "bytes in allocated blocks")):  # fmt: skip
        found = re.search(rf"# {label}\s*=\s*([\d,]+)", after)
        if found:
            value = int(found[1].replace(",", ""))
            out[key] = value if key == "arenas" else round(value / 1e6, 2)
    return out


def dump(daemon: TreeSuperd, out: Path, timeout: float = 600.0) -> str:
    """``SIGUSR2`` to superd; the dump it appends to ``out``."""
    # a tree from before the dump's end marker: its statistics end it
    old = "=== end" not in (Path(daemon.tree) / "shared" / "memory.py").read_text()
    before = out.read_text() if out.exists() else ""
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGUSR2)  # `ip netns exec` execs python: the same pid
    deadline = time.monotonic() + timeout
    while True:
        text = out.read_text()[len(before) :] if out.exists() else ""
        if text.endswith("=== end\n") or (old and _complete_before_end_marker(text)):
            return text
        assert time.monotonic() < deadline, "no dump from superd"
        time.sleep(0.2)


def anonymous_rss(pid: int, top: int = 8) -> list[tuple[int, int]]:
    """The ``top`` anonymous mappings of ``pid`` by resident size: (size
    KiB, resident KiB); pymalloc's arenas are 1 MiB mappings (merged when
    adjacent), glibc's thread heaps parts of 64 MiB reservations."""
    found, header = [], None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if not line[:1].isupper():
            fields = line.split()
            header = fields if len(fields) == 5 or fields[5:] == ["[heap]"] else None
            size = 0
        elif header is not None and line.startswith("Size:"):
            size = int(line.split()[1])
        elif header is not None and line.startswith("Rss:"):
            found.append((size, int(line.split()[1])))
    return sorted(found, key=lambda item: -item[1])[:top]


def rss_split(pid: int) -> dict[str, int]:
    """Resident KiB of ``pid`` by kind of mapping (``/proc/PID/smaps``):
    glibc's main heap (``[heap]``), anonymous mappings of exactly 1 MiB or
    multiples (pymalloc's arenas, merged when adjacent; a large block
    mmapped by glibc may fall here too), other anonymous mappings (glibc's
    mmapped blocks, thread heaps), thread stacks are anonymous too, the
    main stack, and files (libraries, extension modules)."""
    split = dict.fromkeys(("heap", "anon_1mib", "anon_other", "stack", "files"), 0)
    kind = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if not line[:1].isupper():
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if len(fields) == 5:
                kind = "anon_1mib" if (end - start) % 2**20 == 0 else "anon_other"
            elif fields[5] == "[heap]":
                kind = "heap"
            elif fields[5] == "[stack]":
                kind = "stack"
            elif fields[5].startswith("["):
                kind = None
            else:
                kind = "files"
        elif kind is not None and line.startswith("Rss:"):
            split[kind] += int(line.split()[1])
    return split


def _complete_before_end_marker(text: str) -> bool:
    """A whole dump of a tree whose hook wrote no ``=== end`` (before
    this branch): CPython's statistics end with its free lists' last line."""
    lines = text.splitlines()
    return bool(lines) and text.endswith("\n") and "free 20-sized PyTupleObjects" in lines[-1]


def one_run(host, tree: Path, n: int, frames: int, keep: Path | None, holders: int = 0,
            env: dict[str, str] | None = None, one: int = 0) -> dict:  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}run-", dir="/tmp"))
    try:
        figures = _measured(host, tree, n, root, {
            "NETRELOAD_TRACEMALLOC": str(root / "dumps.txt"),
            "NETRELOAD_TRACEMALLOC_FRAMES": str(frames),
            "NETRELOAD_TRACEMALLOC_HOLDERS": str(holders), **(env or {})}, one)  # fmt: skip
        if keep is not None:
            keep.write_text((root / "dumps.txt").read_text())
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def one_network_cpu(conn, pid: int, n: int, pairs: int) -> float:
    """superd's CPU (ms, /proc: utime + stime) per one-network add + remove
    on the host of ``n`` networks, the median of ``pairs`` pairs (plans made
    before the clock starts)."""
    samples = []
    name = workload.net_name(n)
    for _ in range(pairs):
        cpu = 0.0
        for attrs in (workload.net_attrs(n), {"remove": True}):
            cpu += timed_apply(conn, pid, make_plan(conn, {name: attrs}, NO_CHECK))[1]
        samples.append(cpu * 1000)
    return round(statistics.median(samples), 1)


def timed_apply(conn, pid: int, plan: dict) -> tuple[float, float]:
    """(wall seconds, superd's CPU seconds from /proc) of one apply_plan."""
    started, cpu = time.monotonic(), proc_cpu_seconds(pid)
    conn.result("apply_plan", plan=plan)
    return time.monotonic() - started, proc_cpu_seconds(pid) - cpu


def _measured(host, tree: Path, n: int, root: Path, env: dict[str, str], one: int = 0) -> dict:
    out = Path(env["NETRELOAD_TRACEMALLOC"])
    extra = {k: v for k, v in env.items() if not k.startswith("NETRELOAD_TRACEMALLOC")}
    figures: dict = {"tree": str(tree), "env": extra, "n": n}
    with socket_folder(prefix=f"{PREFIX}sock-") as sock_dir:
        daemon = TreeSuperd(host, root, sock_dir)
        daemon.tree = tree
        daemon.env.update(env)
        with daemon:
            conn = daemon.connect()
            conn.sock.settimeout(3600)
            conn.result("netinfo")
            assert daemon.proc is not None
            pid = daemon.proc.pid
            figures["idle"] = parse_dump(dump(daemon, out))
            figures["idle_split"] = rss_split(pid)
            nets = workload.networks(n)
            seconds, cpu = timed_apply(conn, pid, make_plan(conn, nets, NO_CHECK))
            figures["add_s"], figures["add_cpu"] = round(seconds, 1), round(cpu, 2)
            figures["with"] = parse_dump(dump(daemon, out))
            figures["with_split"] = rss_split(pid)
            # the size of the report at N (benchmark 5b's allowance: idle x 1.1 + it)
            figures["report_kib"] = len(orjson.dumps(conn.result("netinfo")["caps"])) // 1024
            if one:
                figures["one_cpu_ms"] = one_network_cpu(conn, pid, n, one)
            removal = {name: {"remove": True} for name in nets}
            seconds, cpu = timed_apply(conn, pid, make_plan(conn, removal, NO_CHECK))
            figures["remove_s"], figures["remove_cpu"] = round(seconds, 1), round(cpu, 2)
            time.sleep(1.0)  # as benchmark 5b: the monitor's last notifications
            figures["after_split_before"] = rss_split(pid)
            figures["after"] = parse_dump(dump(daemon, out))
            figures["after_split"] = rss_split(pid)
            figures["after_anon"] = anonymous_rss(pid)
            conn.close()
    return figures


def parse_arms(text: str) -> list[tuple[Path, dict[str, str]]]:
    """``TREE,TREE@K=V@K=V``: each arm's checkout and superd's extra
    environment for it."""
    return [(Path(t.split("@")[0]).resolve(), dict(kv.split("=", 1) for kv in t.split("@")[1:]))
            for t in text.split(",")]  # fmt: skip


def main() -> None:
    global PREFIX
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1, help="runs per tree")
    parser.add_argument("--trees", default=".", help="comma-separated checkouts")
    parser.add_argument("--frames", type=int, default=0)
    parser.add_argument("--holders", type=int, default=0,
                        help="with --frames: what holds the top K survivors")
    parser.add_argument("--one", type=int, default=0,
                        help="one-network add + remove pairs timed (CPU) on the big host")
    parser.add_argument("--out", type=Path, help="append each run's figures (JSON lines)")
    parser.add_argument("--keep", type=Path, help="folder for each run's raw dumps")
    parser.add_argument("--prefix", default=PREFIX,
                        help="namespace and /tmp folder prefix (one per user of the machine)")
    args = parser.parse_args()
    PREFIX = args.prefix
    arms = parse_arms(args.trees)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs on SIGTERM too
    host = create_host_ns(2, prefix=PREFIX)
    try:
        for run in range(args.runs):
            for index, (tree, env) in enumerate(arms):
                keep = args.keep / f"run{run}-tree{index}.txt" if args.keep else None
                figures = one_run(host, tree, args.n, args.frames, keep, args.holders, env,
                                  args.one)  # fmt: skip
                line = json.dumps(figures)
                print(line, flush=True)
                if args.out:
                    with args.out.open("a") as out:
                        out.write(line + "\n")
    finally:
        destroy_host_ns(host)


if __name__ == "__main__":
    main()
