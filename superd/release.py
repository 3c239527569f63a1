"""A change's leftovers, handed back by the thread that answered it.

``release_memory`` (a collection and ``malloc_trim``) costs 15-35 ms after
a change of 1,000 networks. Run before the answer, the engine waits for it;
run after, it must still happen exactly once and in the right place: in the
connection thread that sent the change's answer, right after that send (or
after the send failed: the memory is due either way). Another connection's
answer in the meantime does not run it: its thread would collect while the
change's own answer is still being encoded, and the change's peer would wait
for that instead. The same holds for what a change lets go of (the
netinfo view of before it, whose freeing walks the host's entries).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from shared.memory import release_memory


class ReleaseAfterAnswer:
    """``due()`` where a big change ends; ``after_answer()`` from the server
    once the answer of the same thread is sent. Not deferred (no server
    calls ``after_answer``), ``due()`` releases at once."""

    def __init__(self, release: Callable[[], object] = release_memory) -> None:
        self.deferred = False
        self._release = release
        self._due = threading.local()

    def due(self) -> None:
        if self.deferred:
            self._due.pending = True
        else:
            self._release()

    def drop_after_answer(self, leftover: object) -> None:
        """Hold ``leftover`` until this thread's answer is out (not
        deferred: the caller's reference was the last, it goes at once)."""
        if self.deferred:
            if not hasattr(self._due, "leftovers"):
                self._due.leftovers = []
            self._due.leftovers.append(leftover)

    def after_answer(self) -> None:
        leftovers = getattr(self._due, "leftovers", None)
        if leftovers:
            leftovers.clear()
        if getattr(self._due, "pending", False):
            self._due.pending = False
            self._release()
