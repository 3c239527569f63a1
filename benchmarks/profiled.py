"""Run a daemon module under cProfile in *every* thread.

``python -m benchmarks.profiled --out DIR MODULE [ARGS…]`` runs ``MODULE``
as ``__main__`` (as ``python -m MODULE ARGS…`` would) with one
``cProfile.Profile`` for the main thread and one per thread started through
``threading`` (superd's work happens in its ``superd-net`` and
``superd-netinfo`` worker threads, frontd's in its JSON-RPC workers, which a
plain ``python -m cProfile`` would not see). Each thread's statistics are
written to ``DIR/<thread name>-<n>.prof`` when the thread ends, the main
thread's when the module returns (after SIGTERM, the daemons shut their
workers down first). :mod:`benchmarks.profile` reads and merges them.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import re
import runpy
import sys
import threading
from pathlib import Path

_counter = itertools.count()


def _dump(profile: cProfile.Profile, out: Path, name: str) -> None:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    try:
        profile.dump_stats(str(out / f"{safe}-{next(_counter)}.prof"))
    except Exception as error:  # a profile must never take a daemon down
        print(f"benchmarks.profiled: cannot write {name}: {error}", file=sys.stderr)


def install_thread_profiling(out: Path) -> None:
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()
            _dump(profile, out, self.name)

    threading.Thread.run = profiled_run  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiled")
    parser.add_argument("--out", required=True, type=Path, help="folder for the .prof files")
    parser.add_argument("module")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    install_thread_profiling(args.out)
    sys.argv = [args.module, *args.args]
    profile = cProfile.Profile()
    code = 0
    profile.enable()
    try:
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        profile.disable()
        _dump(profile, args.out, "MainThread")
    return code


if __name__ == "__main__":
    sys.exit(main())
