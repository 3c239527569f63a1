"""What the side benchmarks (OVS, NetworkManager) share: each times netreload
against a reference doing the same work in its own namespaces, checks the
kernel after each, and prints one row per size."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from benchmarks.lab import run_ip
from benchmarks.report import Row, median, table


def check_addresses(ns: str, names: list[str]) -> None:
    """Fail the measurement if a network of the workload has no IPv4 address."""
    out = run_ip("-n", ns, "-j", "-4", "addr", "show")
    addressed = {a["ifname"] for a in json.loads(out) if a.get("addr_info")}
    missing = [name for name in names if name not in addressed]
    if missing:
        raise RuntimeError(f"{len(missing)} network(s) without their address, e.g. {missing[0]}")


def paired_row(
    benchmark: str, what: str, n: int, ours: list[float], refs: list[float], reference_label: str
) -> Row:
    """The medians of both sides as one row, every run in its note."""
    return Row(benchmark, what, n, median(ours), median(refs), "s",
               reference_label=reference_label,
               note=f"netreload {', '.join(f'{s:.2f}' for s in ours)} s; reference "
                    f"{', '.join(f'{s:.2f}' for s in refs)} s")  # fmt: skip


def main(
    prog: str,
    available: Callable[[], str | None],
    measure: Callable[[int, int], tuple[list[Row], dict]],
    argv: list[str] | None,
) -> int:
    """``python -m benchmarks.<prog> [--sizes 100,1000] [--runs K]``."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{prog}")
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    why = available()
    if why:
        print(f"skipped: {why}")
        return 0
    rows: list[Row] = []
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            rows += measure(n, args.runs)[0]
    finally:
        print(table(rows) if rows else "nothing measured")
    return 0
