"""Benchmarks of scale: what one change costs on a big host, the CLI's caps.

=====================  ==========================================  ===============================
benchmark              netreload                                   reference
=====================  ==========================================  ===============================
one                    add ONE network to a host holding N, then   the same on an empty host,
                       remove it; over STOMP/TLS and through the   measured in this run
                       ``netreload setup-networks`` CLI (median)   (:func:`empty_host`)
one (kernel)           ``ip -batch`` adding one bridge with an     the same in a fresh, empty
                       address (then ``ip link del``) in the       namespace (:func:`kernel_one`):
                       namespace holding the N networks            the kernel's own growth with N
capscli                ``netreload caps --json`` as a whole        three ``ip -j`` dumps (links,
                       process (interpreter start included)        addresses, routes), each its
                                                                   own process (median)
memory                 superd's VmRSS once the N networks are      superd idle (just started) plus
(after removal)        removed again (one request)                 the report it answered at N
=====================  ==========================================  ===============================

Targets (issue 21): one-network changes ≤ 1.5× the empty host; ``caps
--json`` ≤ 1× the three dumps at N ≥ 1000; superd ≤ 150 MiB after the N
networks and, once they are removed, within 10 % of idle + the report's size.
"""

from __future__ import annotations

import json
import subprocess
import time

from benchmarks import workload
from benchmarks.engine import BenchEngine
from benchmarks.lab import BenchLab, bridges_without_ipv6, delete_namespace, make_namespace
from benchmarks.report import Row, median

ONE_TARGET = 1.5
CAPS_CLI_TARGET = 1.0
CAPS_CLI_TARGET_N = 1000
RSS_TARGET_MIB = 150.0
RSS_BACK_SLACK = 1.10
ONE_RUNS = 5  # add + remove pairs per transport
# untimed add + remove pairs before the timed ones, the same for every N and
# for the references: the first pair after the lab started (cold caches,
# first TLS frames, lazily imported code) took ~2× the others (round 11's
# empty host: 12.6 ms of samples 5.7–7.4 ms) and set the ratios' denominator
WARM_UP = 1


def _one_request(index: int, remove: bool = False) -> dict:
    name = workload.net_name(index)
    attrs = {"remove": True} if remove else workload.networks(index + 1)[name]
    return {"networks": {name: attrs}, "bondings": {}, "options": {"connectivityCheck": False}}


def _stomp(engine: BenchEngine, request: dict, timeout: float = 120.0) -> float:
    reply = engine.command({"call": "Host.setupNetworks", "params": request, "timeout": timeout})
    if "error" in reply:
        raise RuntimeError(f"setupNetworks: {reply['error']}")
    return reply["seconds"]


def _cli(lab: BenchLab, request: dict) -> float:
    path = lab.root / "one-request.json"
    path.write_text(json.dumps(request))
    started = time.perf_counter()
    proc = lab.cli("setup-networks", str(path), timeout=120)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"netreload setup-networks: {proc.stderr.strip()[:300]}")
    return seconds


def add_remove_one(
    lab: BenchLab, engine: BenchEngine, index: int, runs: int = ONE_RUNS
) -> tuple[dict, dict]:
    """``runs`` times: add network ``index`` then remove it, over STOMP and
    through the CLI, after :data:`WARM_UP` untimed pairs each; every sample,
    in seconds, and the daemons' CPU seconds per STOMP pair."""
    samples: dict[str, list[float]] = {
        "add STOMP": [], "remove STOMP": [], "add CLI": [], "remove CLI": []
    }  # fmt: skip
    for _ in range(WARM_UP):
        _stomp(engine, _one_request(index))
        _stomp(engine, _one_request(index, remove=True))
    split0 = lab.cpu_split()
    for _ in range(runs):
        samples["add STOMP"].append(_stomp(engine, _one_request(index)))
        samples["remove STOMP"].append(_stomp(engine, _one_request(index, remove=True)))
    # the daemons' CPU per add + remove pair over STOMP (less noisy than
    # the wall clock on a shared machine), and superd's split: user time
    # (its Python) and system time (the kernel's work for its requests)
    split = lab.cpu_split()
    cpu = {daemon: round((sum(split[daemon]) - sum(split0[daemon])) / runs, 4)
           for daemon in split}  # fmt: skip
    for daemon, label in (("superd", "superd user"), ("superd", "superd sys")):
        part = 0 if label.endswith("user") else 1
        cpu[label] = round((split[daemon][part] - split0[daemon][part]) / runs, 4)
    for _ in range(WARM_UP):
        _cli(lab, _one_request(index))
        _cli(lab, _one_request(index, remove=True))
    for _ in range(runs):
        samples["add CLI"].append(_cli(lab, _one_request(index)))
        samples["remove CLI"].append(_cli(lab, _one_request(index, remove=True)))
    return samples, cpu


def empty_host(
    lab: BenchLab, engine: BenchEngine, runs: int = ONE_RUNS
) -> tuple[list[Row], dict]:
    """The reference: one network added and removed on the empty host, and
    the kernel's own part (:func:`kernel_one`) in a fresh, empty namespace."""
    samples, cpu = add_remove_one(lab, engine, 0, runs)
    samples.update(kernel_empty(runs))
    rows = [
        Row("one", f"{_label(what)}, empty host", 0, median(values), None, "s",
            note=f"median of {len(values)}"
                 + ("" if "kernel" in what else f"; daemons' CPU per STOMP pair {_cpu(cpu)}"))
        for what, values in samples.items()
    ]  # fmt: skip
    return rows, {"samples": samples, "median": {k: median(v) for k, v in samples.items()},
                  "cpu_per_pair": cpu}  # fmt: skip


def one_network(
    lab: BenchLab, engine: BenchEngine, n: int, reference: dict, runs: int = ONE_RUNS
) -> tuple[list[Row], dict]:
    """On the host holding the workload's N networks: network N added, removed;
    then the kernel's own part (:func:`kernel_one`) in that namespace. Each
    netreload row's note gives the kernel's growth beside its own ratio."""
    samples, cpu = add_remove_one(lab, engine, n, runs)
    samples.update(kernel_one(lab.host_ns, n + 1, runs))
    growth = {
        what: median(samples[f"{what} kernel"]) / reference["median"][f"{what} kernel"]
        for what in ("add", "remove")
        if reference["median"].get(f"{what} kernel")
    }
    rows = []
    for what, values in samples.items():
        value = median(values)
        ref = reference["median"].get(what)
        kernel = "kernel" in what
        note = f"median of {len(values)}"
        if not kernel:
            action = what.split()[0]
            if action in growth:
                note += f"; the kernel alone {growth[action]:.2f}× (ip -batch)"
            note += f"; daemons' CPU per STOMP pair {_cpu(cpu)}"
        rows.append(Row("one", _label(what), n, value, ref, "s",
                        "empty namespace" if kernel else "empty host",
                        target="—" if kernel else f"≤ {ONE_TARGET:g}×",
                        met=None if kernel or not ref else value / ref <= ONE_TARGET,
                        note=note))  # fmt: skip
    return rows, {"samples": samples, "cpu_per_pair": cpu, "kernel_growth": growth}


def _label(what: str) -> str:
    action, transport = what.split()
    if transport == "kernel":
        return f"{action} one bridge + address, ip -batch (the kernel alone)"
    return f"{what} one network"


KERNEL_DEVICE = "nrk0"  # not a network name: superd leaves it alone


def _ip_seconds(*args: str, input_text: str | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(["ip", *args], input=input_text, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args[:4])}: {proc.stderr.strip()[:300]}")
    return seconds


def kernel_one(ns: str, index: int, runs: int = ONE_RUNS) -> dict[str, list[float]]:
    """The kernel's own part of benchmark 7, in namespace ``ns``: ``runs``
    times one ``ip -batch`` process adding a bridge with the workload's
    address ``index`` and setting it up, IPv6 off (what netreload's iproute2
    configurator asks of the kernel, minus the sysctl write), then one
    ``ip link del`` process removing it, after :data:`WARM_UP` untimed
    pairs; the wall time of each process."""
    script = (f"link add {KERNEL_DEVICE} mtu 1500 type bridge stp_state 0 forward_delay 0\n"
              f"addr add {workload.net_address(index)}/{workload.PREFIX_LEN} dev {KERNEL_DEVICE}\n"
              f"link set {KERNEL_DEVICE} up\n")  # fmt: skip
    samples: dict[str, list[float]] = {"add kernel": [], "remove kernel": []}
    with bridges_without_ipv6(ns):  # as netreload's bridge of a network without IPv6
        for _ in range(WARM_UP):  # untimed, as netreload's (add_remove_one)
            _ip_seconds("-n", ns, "-batch", "-", input_text=script)
            _ip_seconds("-n", ns, "link", "del", KERNEL_DEVICE)
        for _ in range(runs):
            samples["add kernel"].append(_ip_seconds("-n", ns, "-batch", "-", input_text=script))
            samples["remove kernel"].append(_ip_seconds("-n", ns, "link", "del", KERNEL_DEVICE))
    return samples


def kernel_empty(runs: int = ONE_RUNS) -> dict[str, list[float]]:
    """:func:`kernel_one` in a fresh namespace holding nothing but ``lo``."""
    ns = make_namespace("kone")
    try:
        return kernel_one(ns, 0, runs)
    finally:
        delete_namespace(ns)


def _cpu(seconds: dict[str, float]) -> str:
    return ", ".join(f"{daemon} {s * 1000:.1f} ms" for daemon, s in seconds.items())


def three_dumps(ns: str) -> float:
    """``ip -j link show``, ``ip -j address show``, ``ip -j route show``:
    three processes, one after the other; their wall time."""
    started = time.perf_counter()
    for what in (("link", "show"), ("address", "show"), ("route", "show")):
        subprocess.run(["ip", "-n", ns, "-j", *what], capture_output=True, timeout=60, check=True)
    return time.perf_counter() - started


def caps_cli(lab: BenchLab, n: int, runs: int = 7) -> tuple[list[Row], dict]:
    """``netreload --json caps`` (the whole process) against the three dumps."""
    samples, reference = [], []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        proc = lab.cli("--json", "caps", timeout=120)
        samples.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise RuntimeError(f"netreload caps: {proc.stderr.strip()[:300]}")
        size = len(proc.stdout)
        reference.append(three_dumps(lab.host_ns))
    at_target = n >= CAPS_CLI_TARGET_N
    value, ref = median(samples), median(reference)
    row = Row("capscli", "netreload --json caps (whole process)", n, value, ref, "s",
              "3 ip -j dumps", target=f"≤ {CAPS_CLI_TARGET:g}×" if at_target else "(N≥1000)",
              met=value / ref <= CAPS_CLI_TARGET if at_target else None,
              note=f"median of {runs}, output {size / 1024:.0f} KiB")  # fmt: skip
    return [row], {"samples": samples, "reference": reference, "bytes": size}
