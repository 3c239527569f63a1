"""No cyclic garbage collection while a big change runs.

Why: a big change allocates hundreds of thousands of objects (netlink
messages decoded, the host's state and report rebuilt), so CPython's cyclic
collector runs many times during it, its full collections walking the whole
heap of a host of thousands of networks; what it walks there is acyclic
data that reference counting frees anyway. In superd applying 1,000
networks, 40 % of the verification's resync (the full dump after the
change, on the engine's wait) was the collector (py-spy, benchmarks/README.md
round 9). superd collects once a big change is answered anyway
(``shared.memory.release_memory``), so the collections are only moved after
the answer.

A :class:`CollectorPause` may outlive the block that began it: superd's
apply_plan ends it in the change's release, after the answer (the young
collection of the change's ~100 k survivors would otherwise run on the
engine's wait the moment the collector is back; after the release's full
collection there is nothing young left to walk).

The pause is process-wide (``gc.disable``), counted (overlapping pauses end
with the last one) and never turns on a collector someone else turned off;
``NETRELOAD_GC_PAUSE=0`` in the environment turns it off (an operator's way
out, and the A/B of the benchmark).
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator

SWITCH_ENV = "NETRELOAD_GC_PAUSE"

_LOCK = threading.Lock()
_pauses = 0
_was_enabled = False


class CollectorPause:
    """One pause of the collector: :meth:`begin` in one place, :meth:`end`
    in another (any thread); each counts once however often it is called."""

    def __init__(self) -> None:
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def begin(self, wanted: bool = True) -> bool:
        """Pause if ``wanted`` (and not switched off); whether it is held."""
        global _pauses, _was_enabled
        if not wanted or os.environ.get(SWITCH_ENV) == "0":
            return self._held
        with _LOCK:
            if self._held:
                return True
            if _pauses == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _pauses += 1
            self._held = True
        return True

    def end(self) -> None:
        """The collector back if this was the last pause (no-op if not held)."""
        global _pauses
        with _LOCK:
            if not self._held:
                return
            self._held = False
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


@contextlib.contextmanager
def gc_paused(wanted: bool = True) -> Iterator[bool]:
    """``with gc_paused(big):`` — no cyclic collection inside the block if
    ``wanted`` (and not switched off); whether it paused."""
    pause = CollectorPause()
    try:
        yield pause.begin(wanted)
    finally:
        pause.end()
