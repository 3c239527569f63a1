"""The big request's kernel work, one kind of request at a time (issue 21).

Runs the workload's N bridges (``benchmarks.workload``) in a fresh network
namespace with a chosen sequence of raw netlink requests and sysctl writes
per bridge, and reports, per kind of step, the CPU time of the thread that
sends them (``time.thread_time_ns``: user + system, so the kernel's work
done inside ``send``/``recv``/``write`` is counted, and time spent waiting
for RTNL held by someone else is not). The sequences compare netreload's
iproute2 configurator (create up with ``NLM_F_ECHO``, mark, two IPv6 sysctl
files, address) with ``ip -batch``'s (create down, address, up), and
variants that leave one suspect out. The Python around each step is a
``send`` and a header walk, the same for every variant.

    sudo .venv/bin/python -m benchmarks.kernel_steps --n 1000 --rounds 3 \
        --variants nr,ip,nr-noecho [--listen] [--prefix bigkern]
    sudo .venv/bin/python -m benchmarks.kernel_steps --mark-cost --n 1000
    sudo .venv/bin/python -m benchmarks.kernel_steps --n 1000 \
        --variants nr-down+held,nr-down+fresh,nr-down+deaf

``VARIANT+MODE``: the steps beside a socket like superd's monitor's
(:data:`LISTEN_MODES`), and the CPU of what the mode does after the change
(``after``: reading the queue away, a new socket, joining again), with the
datagrams it read.

``--mark-cost``: the CPU of one ownership mark (``link set ifalias``) on a
bridge that is up against one that is down, in a namespace holding the N
workload bridges (built with ``ip -batch``) and 100 more left down. On an
up bridge the alias change is a ``NETDEV_CHANGE`` whose IPv6 handling
(``rt6_sync_up``) walks the namespace's whole IPv6 routing table, so its
cost grows with the number of bridges on the host.

To see where the kernel spends it, run a child under ``perf record -g``
and read it with :mod:`benchmarks.kernel_perf`.

Each run gets a fresh namespace (``PREFIX-ks``), deleted after the run;
``ip netns add`` waits meanwhile for the kernel to finish dismantling the
previous one, so runs do not overlap. Variants alternate inside a round.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

from benchmarks import workload
from netlink import encode
from netlink.constants import NLM_F_ECHO, NLMSG, NLMSG_ERROR
from netlink.query import next_seq

IPV6_CONF = "/proc/sys/net/ipv6/conf"
# superd's monitor groups (superd/monitor.py) and its receive buffer
MONITOR_GROUPS = 0x1 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400
SO_RCVBUFFORCE = 33
NETLINK_KOBJECT_UEVENT = 15

# variant → the steps per bridge, in order
VARIANTS: dict[str, tuple[str, ...]] = {
    # netreload today: create up + echo, mark, 2 sysctls, address
    "nr": ("add_up_echo", "mark", "sysctl_ra", "sysctl_autoconf", "addr"),
    # ip -batch: create down, address, up
    "ip": ("add_down", "addr", "up"),
    "nr-noecho": ("add_up", "mark", "sysctl_ra", "sysctl_autoconf", "addr"),
    "nr-nomark": ("add_up_echo", "sysctl_ra", "sysctl_autoconf", "addr"),
    "nr-nosysctl": ("add_up_echo", "mark", "addr"),
    # created down, marked, sysctls, address, then up (helper reland's order)
    "nr-down": ("add_down_echo", "mark", "sysctl_ra", "sysctl_autoconf", "addr", "up"),
    "nr-down-markup": ("add_down_echo", "sysctl_ra", "sysctl_autoconf", "addr", "mark_up"),
    "ip-echo": ("add_down_echo", "addr", "up"),
    "ip-up": ("add_up", "addr"),
    "ip-mark": ("add_down", "mark", "addr", "up"),
    "ip-sysctl": ("add_down", "sysctl_ra", "sysctl_autoconf", "addr", "up"),
    # round 11: IPv6 off on a network without IPv6 (one sysctl, before the up)
    "nr-v6off": ("add_down_echo", "mark", "sysctl_v6off", "addr", "up"),
    "ip-v6off": ("add_down", "sysctl_v6off", "addr", "up"),
}

# what superd's monitor socket does during the big change (``VARIANT+MODE``):
# held: subscribed, its queue read and discarded after (a resync's _discard);
# fresh: subscribed, closed after and a new one bound (the queue freed by
# the kernel); deaf: the groups left before the change, joined again after
LISTEN_MODES = ("held", "fresh", "deaf")
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP = 270, 1, 2


def _transact(sock: socket.socket, message: bytes, echo: bool = False) -> tuple[int, bytes]:
    """Send, read until the ack: (errno, the echoed link message or b"")."""
    seq = next_seq()
    data = bytearray(message)
    struct.pack_into("=I", data, 8, seq)
    if echo:
        flags = struct.unpack_from("=H", data, 6)[0]
        struct.pack_into("=H", data, 6, flags | NLM_F_ECHO)
    sock.send(data)
    echoed = b""
    while True:
        chunk = sock.recv(65536)
        offset = 0
        while offset + NLMSG.size <= len(chunk):
            length, kind, _flags, mseq, _pid = NLMSG.unpack_from(chunk, offset)
            if mseq == seq:
                if kind == NLMSG_ERROR:
                    return -struct.unpack_from("=i", chunk, offset + 16)[0], echoed
                echoed = bytes(chunk[offset : offset + length])
            offset += (length + 3) & ~3


def _index_of(echoed: bytes) -> int:
    return struct.unpack_from("=i", echoed, NLMSG.size + 4)[0]


def _write(path: str, value: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value)
    finally:
        os.close(fd)


def run_steps(n: int, steps: tuple[str, ...], first: int = 0) -> dict[str, float]:
    """In this process' namespace: the N bridges (from workload bridge
    ``first`` on), step by step; the CPU milliseconds of each kind of step
    summed, and of the whole loop."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    spent = dict.fromkeys(steps, 0)
    clock = time.thread_time_ns
    begin, wall = clock(), time.perf_counter()
    stime0 = os.times().system
    for i in range(first, first + n):
        name = workload.net_name(i)
        index = 0
        for step in steps:
            t0 = clock()
            if step.startswith("add_"):
                message = encode.encode(
                    "link",
                    ("add",),
                    {
                        "ifname": name,
                        "kind": "bridge",
                        "br_stp_state": 0,
                        "br_forward_delay": 0,
                        "mtu": 1500,
                        **({"state": "up"} if "_up" in step else {}),
                    },
                )
                echo = step.endswith("_echo")
                err, echoed = _transact(sock, message, echo=echo)
                if err:
                    raise OSError(err, f"{name}: {step}")
                if echo:
                    index = _index_of(echoed)
                else:
                    index = socket.if_nametoindex(name)
            elif step in ("mark", "up", "mark_up"):
                kw = {"index": index}
                if step != "up":
                    kw["ifalias"] = "netreload"
                if step != "mark":
                    kw["state"] = "up"
                err, _ = _transact(sock, encode.encode("link", ("set",), kw))
                if err:
                    raise OSError(err, f"{name}: {step}")
            elif step == "addr":
                err, _ = _transact(
                    sock,
                    encode.encode(
                        "addr",
                        ("add",),
                        {
                            "index": index,
                            "family": socket.AF_INET,
                            "address": workload.net_address(i),
                            "prefixlen": workload.PREFIX_LEN,
                        },
                    ),
                )
                if err:
                    raise OSError(err, f"{name}: {step}")
            elif step == "sysctl_ra":
                _write(f"{IPV6_CONF}/{name}/accept_ra", b"0\n")
            elif step == "sysctl_autoconf":
                _write(f"{IPV6_CONF}/{name}/autoconf", b"0\n")
            elif step == "sysctl_v6off":
                _write(f"{IPV6_CONF}/{name}/disable_ipv6", b"1\n")
            spent[step] += clock() - t0
    total = clock() - begin
    result = {step: ns / 1e6 for step, ns in spent.items()}
    result["total_cpu"] = total / 1e6
    result["system"] = (os.times().system - stime0) * 1e3
    result["wall"] = (time.perf_counter() - wall) * 1e3
    sock.close()
    return result


def mark_cost(rounds: int, marks: int = 100) -> dict[str, float]:
    """µs per mark of the first ``marks`` workload bridges (up) and of the
    ``dn0`` … bridges (down), alternated ``rounds`` times: median and min."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    groups = {
        "up": [socket.if_nametoindex(workload.net_name(i)) for i in range(marks)],
        "down": [socket.if_nametoindex(f"dn{i}") for i in range(marks)],
    }
    spent: dict[str, list[float]] = {state: [] for state in groups}
    for r in range(rounds):
        for state, indexes in groups.items():
            t0 = time.thread_time_ns()
            for index in indexes:  # a new alias each round: a real change
                message = encode.encode("link", ("set",), {"index": index, "ifalias": f"m{r}"})
                err, _ = _transact(sock, message)
                if err:
                    raise OSError(err, f"mark {index}")
            spent[state].append((time.thread_time_ns() - t0) / 1e3 / len(indexes))
    sock.close()
    result = {}
    for state, values in spent.items():
        result[f"{state}_median_us"] = statistics.median(values)
        result[f"{state}_min_us"] = min(values)
    return result


def _mark_cost(args: argparse.Namespace) -> dict[str, float]:
    ns = f"{args.prefix}-mc"
    script = workload.ip_batch(args.n) + "".join(
        f"link add dn{i} type bridge\n" for i in range(100)
    )
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=script, text=True, check=True)
        return _child_in(ns, "mark-cost", "--rounds", str(args.rounds))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _child_in(ns: str, child: str, *options: str) -> dict[str, float]:
    """This module run as ``--child child`` inside namespace ``ns``: the
    JSON figures it prints last."""
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "benchmarks.kernel_steps",
           "--child", child, *options]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _monitor_socket() -> socket.socket:
    """A socket like superd's monitor's: its buffer, bound to its groups."""
    mon = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    mon.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
    mon.bind((0, MONITOR_GROUPS))
    return mon


def _groups(mask: int) -> list[int]:
    """The group numbers (``NETLINK_ADD_MEMBERSHIP``'s) of a bind mask."""
    return [bit + 1 for bit in range(32) if mask >> bit & 1]


def _membership(sock: socket.socket, option: int) -> None:
    for group in _groups(MONITOR_GROUPS):
        sock.setsockopt(SOL_NETLINK, option, group)


def _discard(sock: socket.socket) -> tuple[int, int]:
    """Read what is queued as superd's resync discards it: (datagrams, bytes)."""
    buf, count, size = bytearray(1 << 20), 0, 0
    while True:
        try:
            got = sock.recv_into(buf, 0, socket.MSG_DONTWAIT | socket.MSG_TRUNC)
        except BlockingIOError:
            return count, size
        except OSError as error:
            if error.errno != 105:  # ENOBUFS: an overrun, the reading goes on
                raise
            count -= 1
        count, size = count + 1, size + got


def run_listening(n: int, steps: tuple[str, ...], mode: str, first: int = 0) -> dict[str, float]:
    """:func:`run_steps` beside a monitor socket in ``mode`` (LISTEN_MODES);
    ``after``: the thread CPU (ms) of what the mode does once the change is
    made, before the resync's dump (discard, new socket, or join again)."""
    mon = _monitor_socket()
    clock = time.thread_time_ns
    t0 = clock()
    if mode == "deaf":
        _membership(mon, NETLINK_DROP_MEMBERSHIP)
    before = clock() - t0
    result = run_steps(n, steps, first)
    t0 = clock()
    datagrams = size = 0
    if mode == "held":
        datagrams, size = _discard(mon)
    elif mode == "fresh":
        mon.close()
        mon = _monitor_socket()
    else:
        _membership(mon, NETLINK_ADD_MEMBERSHIP)
    result["after"] = (clock() - t0 + before) / 1e6
    result["all"] = result["total_cpu"] + result["after"]
    result["datagrams"], result["queued_kib"] = datagrams, size / 1024
    mon.close()
    return result


def _listeners() -> list[socket.socket]:
    """superd's two listeners, never read (as during a change): the
    monitor's rtnetlink groups and a uevent socket."""
    mon = _monitor_socket()
    uev = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT)
    uev.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
    uev.bind((0, 1))
    return [mon, uev]


def _child(args: argparse.Namespace) -> None:
    if args.child == "mark-cost":
        print(json.dumps(mark_cost(args.rounds)))
        return
    variant, _, mode = args.child.partition("+")
    if mode:
        print(json.dumps(run_listening(args.n, VARIANTS[variant], mode, args.first)))
        return
    held = _listeners() if args.listen else []
    result = run_steps(args.n, VARIANTS[variant], args.first)
    for sock in held:
        sock.close()
    print(json.dumps(result))


def _one(variant: str, args: argparse.Namespace) -> dict[str, float]:
    ns = f"{args.prefix}-ks"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        return _child_in(ns, variant, "--n", str(args.n), *(["--listen"] if args.listen else []))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default="nr,ip")
    parser.add_argument("--listen", action="store_true")
    parser.add_argument("--prefix", default="nrb")
    parser.add_argument("--mark-cost", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    # a child's first workload bridge: several children in one namespace
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    if args.mark_cost:
        costs = _mark_cost(args)
        print(
            f"N = {args.n}: µs per mark, median (min) of {args.rounds} rounds of 100:",
            ", ".join(
                f"{state} {costs[state + '_median_us']:.0f} ({costs[state + '_min_us']:.0f})"
                for state in ("up", "down")
            ),
        )
        return
    variants = args.variants.split(",")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            res = _one(variant, args)
            results[variant].append(res)
            print(variant, {k: round(v, 1) for k, v in res.items()}, flush=True)
    print(
        "CPU ms, median (min) over",
        args.rounds,
        "rounds, N =",
        args.n,
        "(listeners)" if args.listen else "",
    )
    for variant, runs in results.items():
        keys = runs[0].keys()
        print(
            f"  {variant:16s}",
            "  ".join(
                f"{k} {statistics.median(r[k] for r in runs):.1f} ({min(r[k] for r in runs):.1f})"
                for k in keys
            ),
        )


if __name__ == "__main__":
    main()
