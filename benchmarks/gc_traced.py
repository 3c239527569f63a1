""":mod:`benchmarks.traced` plus the cyclic collector's runs (for
:mod:`benchmarks.timeline`): each collection appends ``gc.collect/GEN START
END THREAD`` to ``TRACE_OUT``, the same clock and format as the traced
functions, so the timeline shows the collections on the request's path."""

from __future__ import annotations

import gc
import os
import threading
import time

# benchmarks/traced.py: run as a script, this one's folder comes first on sys.path
import traced


def install(out: str) -> None:
    # made now, writable by all: the first collection comes before frontd
    # drops to its user, whose traced calls append to the same file
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.fchmod(fd, 0o666)
    os.close(fd)
    started: dict[int, float] = {}
    lock = threading.Lock()

    def callback(phase: str, info: dict) -> None:
        ident = threading.get_ident()
        if phase == "start":
            started[ident] = time.perf_counter()
            return
        ended = time.perf_counter()
        line = (f"gc.collect/{info['generation']} {started.pop(ident, ended):.6f} {ended:.6f} "
                f"{threading.current_thread().name}\n")  # fmt: skip
        with lock, open(out, "a") as trace:
            trace.write(line)

    gc.callbacks.append(callback)


if __name__ == "__main__":
    install(os.environ["TRACE_OUT"])
    traced.main()
