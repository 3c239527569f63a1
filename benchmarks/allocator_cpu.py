"""CPU of superd's full state dump under each CPython allocator.

``python -m benchmarks.allocator_cpu [--n 1000] [--rounds 4]`` (root): a
scratch namespace with N bridges carrying an address, then children under
``ip netns exec``, alternating ``PYTHONMALLOC=pymalloc`` and ``malloc``,
each timing ten ``superd.netstate.dump_state`` calls (netlink dumps,
decoding, the state built: what superd's monitor does at start and on each
full resync) with ``os.times``: user CPU (the Python) apart from system CPU
(the kernel's dumps). The bridges are deleted in batches before the
namespace (the machine hazard: see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator

from benchmarks.lab import SOURCE_ROOT

ALLOCATORS = ("pymalloc", "malloc")
MAX_N = 2000
CHILD = """
import json, os, socket
from netlink import query
from superd.netstate import dump_state
sock = query.strict(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
dump_state(sock, 1)
before = os.times()
for version in range(2, 12):
    state = dump_state(sock, version)
after = os.times()
print(json.dumps({"user": (after.user - before.user) / 10,
                  "sys": (after.system - before.system) / 10, "links": len(state.links)}))
"""


def ip_batch(ns: str, commands: list[str], check: bool = True) -> None:
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n",
                   text=True, check=check)  # fmt: skip


@contextlib.contextmanager
def bridges_namespace(ns: str, names: list[str]) -> Iterator[None]:
    """Namespace ``ns`` holding a bridge with an address per name while the
    block runs; its links deleted in batches, then itself, also on failure."""
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ip_batch(ns, [f"link add {name} type bridge" for name in names]
                 + [f"addr add 10.{i // 250}.{i % 250}.1/24 dev {name}"
                    for i, name in enumerate(names)])  # fmt: skip
        yield
    finally:
        delete_namespace_of(ns, names)


def delete_namespace_of(ns: str, names: list[str]) -> None:
    """Namespace ``ns``, its links ``names`` deleted first in batches (the
    kernel's hazard when a namespace of thousands goes at once: see
    benchmarks/README.md); whatever of it exists."""
    for start in range(0, len(names), 500):
        ip_batch(ns, [f"link del {name}" for name in names[start : start + 500]], check=False)
    subprocess.run(["ip", "netns", "del", ns], check=False)


def measure(ns: str, allocator: str) -> dict:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", CHILD],
        env={**os.environ, "PYTHONMALLOC": allocator}, cwd=SOURCE_ROOT,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.allocator_cpu")
    parser.add_argument("--n", type=int, default=1000, help=f"bridges (at most {MAX_N})")
    parser.add_argument("--rounds", type=int, default=4, help="children per allocator")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= MAX_N:
        parser.error(f"--n between 1 and {MAX_N}")
    ns = f"nrb-alloc-{os.getpid()}"
    names = [f"nra{i}" for i in range(args.n)]
    with bridges_namespace(ns, names):
        samples: dict[str, list[dict]] = {a: [] for a in ALLOCATORS}
        for _ in range(args.rounds):
            for allocator in ALLOCATORS:
                samples[allocator].append(measure(ns, allocator))
        for allocator, runs in samples.items():
            user = [run["user"] * 1000 for run in runs]
            system = statistics.median(run["sys"] * 1000 for run in runs)
            print(f"{allocator:9s} dump_state of {runs[0]['links']} links: user CPU median "
                  f"{statistics.median(user):.1f} ms ({', '.join(f'{u:.0f}' for u in user)}), "
                  f"system {system:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
