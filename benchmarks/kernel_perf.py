"""Where the kernel's time goes in a ``perf record -g`` of a big request.

Reads ``perf script -F ip,sym`` of a recording (for instance of
``benchmarks.kernel_steps --child nr``) and puts each sample in one kind
of step by the kernel functions on its stack: bridge creation (the device's
registration, then ``rtnl_configure_link``: the up at creation and its
notification), ``link set`` (the mark, an up), the address, the sysctl
files, receiving, Python. Samples spinning on a mutex held by another
process (RTNL, on a shared machine) are counted apart: they are
contention, not work. A step whose stack also holds the IPv6 routing
table walk (``rt6_sync_up`` / ``fib6_clean_all``) is reported apart, with
``[fib6 walk]``.

    perf record -g -F 2000 -o nr.data -- ip netns exec NS \\
        .venv/bin/python -m benchmarks.kernel_steps --child nr --n 1000
    .venv/bin/python -m benchmarks.kernel_perf nr.data [--hz 2000]

The milliseconds are samples / frequency: perf's own overhead inflates
them alike for every variant, so compare them between recordings, not
with the CPU times ``kernel_steps`` prints.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
from collections.abc import Iterable, Iterator

SPIN = ("mutex_spin_on_owner", "osq_lock", "kvm_vcpu_is_preempted",
        "queued_spin_lock_slowpath", "__mutex_lock")  # fmt: skip
SYSCALL_ENTRY = ("do_syscall_64", "entry_SYSCALL_64")
FIB6_WALK = ("rt6_sync_up", "rt6_sync_down_dev", "fib6_clean_all", "fib6_walk")
SYSCTL_FILES = ("proc_sys_", "do_sys_open", "openat", "__x64_sys_close", "filp_close",
                "ksys_write", "__fput")  # fmt: skip
# (kind, any of these functions on the stack), the first that matches
STEPS = (
    ("create: configure (up, notify)", ("rtnl_configure_link",)),
    (
        "create: register",
        ("rtnl_newlink_create", "register_netdevice", "rtnl_create_link", "br_dev_newlink"),
    ),
    ("link set (mark/up)", ("do_setlink",)),
    ("addr add", ("inet_rtm_newaddr",)),
    ("recv", ("netlink_recvmsg", "__sys_recvfrom")),
    ("netlink other", ("netlink_sendmsg",)),
    ("sysctl files (open/write/close)", SYSCTL_FILES),
)


def classify(symbols: list[str]) -> str:
    """The kind of step of one sample, from its stack's function names
    (leaf first)."""
    leaf = symbols[0] if symbols else ""
    if any(spin in leaf for spin in SPIN):
        return "spin (RTNL contention)"
    if not any(sym.startswith(SYSCALL_ENTRY) for sym in symbols):
        return "user (python)"
    kind = "other syscalls"
    for name, markers in STEPS:
        if any(marker in sym for sym in symbols for marker in markers):
            kind = name
            break
    walk = any(sym.startswith(FIB6_WALK) for sym in symbols)
    return kind + (" [fib6 walk]" if walk else "")


def samples(lines: Iterable[str]) -> Iterator[list[str]]:
    """The stacks (function names, leaf first) of ``perf script -F ip,sym``."""
    stack: list[str] = []
    for line in lines:
        if line.strip() and line[:1] in ("\t", " "):
            parts = line.split()
            stack.append(parts[1] if len(parts) > 1 else "")
        elif stack:
            yield stack
            stack = []
    if stack:
        yield stack


def breakdown(lines: Iterable[str]) -> collections.Counter:
    return collections.Counter(classify(stack) for stack in samples(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a perf.data file")
    parser.add_argument("--hz", type=float, default=2000.0, help="perf record's -F")
    args = parser.parse_args()
    text = subprocess.run(["perf", "script", "-i", args.data, "-F", "ip,sym"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    counts = breakdown(text.splitlines())
    total = sum(counts.values())
    spin = sum(v for k, v in counts.items() if k.startswith("spin"))
    for kind, count in counts.most_common():
        print(f"{count:7d} {count * 1000 / args.hz:9.1f} ms  {kind}")
    print(f"{total:7d} {total * 1000 / args.hz:9.1f} ms  in all; "
          f"{(total - spin) * 1000 / args.hz:.1f} ms without the spinning")  # fmt: skip


if __name__ == "__main__":
    main()
