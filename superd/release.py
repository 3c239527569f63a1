"""A change's leftovers, handed back by the thread that answered it.

``release_memory`` (a collection and ``malloc_trim``) costs 15-35 ms after
a change of 1,000 networks. Run before the answer, the engine waits for it;
run after, it must still happen exactly once and in the right place: in the
connection thread that sent the change's answer, right after that send (or
after the send failed: the memory is due either way). Another connection's
answer in the meantime does not run it: its thread would collect while the
change's own answer is still being encoded, and the change's peer would wait
for that instead.

What a change lets go of (the netinfo view of before it, whose freeing
walks the host's entries) is let go in superd's writer thread, which does
not know the connection: it is held until the next answer sent on any
connection, the change's own in practice (the same thread-agnostic rule
superd followed before the release was bound to the change's thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from shared.memory import release_memory
from superd.plan_scope import is_big


class ReleaseAfterAnswer:
    """``due()`` where a big change ends; ``after_answer()`` from the server
    once the answer of the same thread is sent. Not deferred (no server
    calls ``after_answer``), ``due()`` releases at once."""

    def __init__(self, release: Callable[[], object] = release_memory) -> None:
        self.deferred = False
        self._release = release
        self._due = threading.local()
        self._leftovers: list[object] = []
        self._leftovers_lock = threading.Lock()

    def due(self, then: Callable[[], object] | None = None) -> None:
        """The release is due (and ``then`` right after it)."""
        if self.deferred:
            self._due.pending = True
            if then is not None:
                self._thens().append(then)
        else:
            self._run([then] if then is not None else None)

    def _thens(self) -> list[Callable[[], object]]:
        thens = getattr(self._due, "thens", None)
        if thens is None:
            thens = self._due.thens = []
        return thens

    def _run(self, thens: list[Callable[[], object]] | None) -> None:
        try:
            self._release()
        finally:
            for then in thens or ():
                then()

    def drop_after_answer(self, leftover: object) -> None:
        """Hold ``leftover`` until the next answer is out, from whichever
        thread (not deferred: the caller's reference was the last, it goes
        at once)."""
        if self.deferred:
            with self._leftovers_lock:
                self._leftovers.append(leftover)

    def after_answer(self) -> None:
        with self._leftovers_lock:
            leftovers, self._leftovers = self._leftovers, []
        del leftovers  # freed here, outside the lock
        if getattr(self._due, "pending", False):
            self._due.pending = False
            thens, self._due.thens = self._thens(), []
            self._run(thens)


def wire_is_big(args: Mapping) -> bool:
    """Whether apply_plan's arguments, not yet checked, name a big change's
    number of operations: its collector pause (``shared.gc_pause``) then
    covers the plan's intake too (a few young collections of the thousands
    of objects ``Plan.from_dict`` makes, 0.6-1.4 ms at 1,000 networks). A
    plan refused there ends the pause at once."""
    plan = args.get("plan")
    operations = plan.get("operations") if isinstance(plan, Mapping) else None
    return isinstance(operations, list) and is_big(operations)
