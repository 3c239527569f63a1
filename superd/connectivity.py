"""When the engine was last heard from: the connectivity check of a change
(``confirm_connectivity`` confirms, ``apply_plan`` waits; see
:mod:`superd.verbs`)."""

from __future__ import annotations

import threading
import time


class ConnectivityMonitor:
    """When the engine was last heard from (confirm_connectivity)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._last: float | None = None
        self._aborted = False

    def confirm(self) -> float:
        with self._cond:
            self._last = time.monotonic()
            self._cond.notify_all()
            return self._last

    def wait(self, since: float, timeout: float) -> bool:
        """True when a confirmation at or after ``since`` arrives within
        ``timeout`` seconds from now; False on timeout or :meth:`abort`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._last is None or self._last < since:
                remaining = deadline - time.monotonic()
                if self._aborted or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def abort(self) -> None:
        """Make every wait fail now (shutdown: roll back rather than hang)."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()
