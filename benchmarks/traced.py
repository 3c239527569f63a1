"""Run a daemon with timestamps of chosen functions (for :mod:`benchmarks.timeline`).

``python benchmarks/traced.py MODULE [ARGS…]`` with ``TRACE_OUT=FILE`` runs
``MODULE`` as ``__main__`` after wrapping the functions of :data:`POINTS`
(for that module): each call appends ``QUALNAME START END THREAD`` to FILE,
``time.perf_counter()`` seconds (CLOCK_MONOTONIC: comparable across the
lab's processes and with the benchmark engine's timestamps). A few dozen
calls per request: the wrapping costs microseconds, not the figures.
"""

from __future__ import annotations

import functools
import importlib
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

# module run → (module, qualified name) of the functions timed
POINTS: dict[str, list[tuple[str, str]]] = {
    "superd.main": [
        ("superd.verbs", "Verbs.apply_plan"),
        ("superd.verbs", "plan_from_wire"),
        ("superd.verbs", "Verbs._transaction"),
        ("superd.verbs", "check_plan_base"),
        ("superd.verbs", "check_plan_owned"),
        ("superd.setup_networks", "NetworkSetup._apply_operations"),
        ("persistence.unified", "ConfigStore.update"),
        ("superd.applier", "NetworkApplier.finish"),
        ("superd.cores", "LiveNetworkSetup._verify"),
        ("superd.monitor", "LiveNetinfo.resync"),
        ("superd.monitor", "LiveNetinfo._discard"),
        ("superd.monitor", "LiveNetinfo._renew"),
        ("superd.monitor", "dump_state"),
        ("superd.setup_networks", "plan_mismatches"),
        ("configurators.registry", "Configurators.commit"),
        ("superd.monitor", "LiveNetinfo.sync"),
        ("superd.verbs", "release_memory"),
        ("superd.hotplug", "HotplugWatcher._dispatch"),
    ],
    "frontd.main": [
        ("frontd.jsonrpc", "JsonRpcDispatcher.handle_bytes"),
        ("frontd.api", "HostApi.setup_networks"),
        ("frontd.api", "HostApi._plan"),
    ],
}


def wrap(module: str, qualname: str, out: str) -> None:
    owner: Any = importlib.import_module(module)
    *path, attr = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    function: Callable = getattr(owner, attr)
    lock = threading.Lock()

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            ended = time.perf_counter()
            line = f"{qualname} {started:.6f} {ended:.6f} {threading.current_thread().name}\n"
            with lock, open(out, "a") as trace:
                trace.write(line)

    setattr(owner, attr, timed)


def main() -> None:
    module, out = sys.argv[1], os.environ["TRACE_OUT"]
    for where, qualname in POINTS.get(module, []):
        try:
            wrap(where, qualname, out)
        except (ImportError, AttributeError) as error:  # the code moved: say so, run anyway
            print(f"traced: {where}.{qualname} not timed: {error}", file=sys.stderr)
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
