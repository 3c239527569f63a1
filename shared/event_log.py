"""An event log: numbered events kept in a ring, read by long polling.

superd keeps one (its events), frontd another (what it relayed, for
``netreload events``). frontd reads superd's with the ``events`` verb: ``{"after": N, "epoch": E,
"timeout": S}`` answers the events numbered above N as soon as there is one
(or an empty list after S seconds). ``epoch`` names this superd run: a
reader that comes with another one (superd restarted) gets what is buffered
from the start. ``after: -1`` asks only for the current position, so a
reader that starts does not replay the past — except the very first reader
of a log, which gets what was logged before it came (superd reports a
recovered transaction at start-up, before frontd's relay connects). A
reader too slow for the ring gets ``lost``: how many events it missed.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from shared.errors import ErrorCode, NetError

CAPACITY = 4096
MAX_BATCH = 1000  # events per answer; the reader comes back for the rest
MAX_WAIT = 60.0


class EventLog:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.epoch = secrets.token_hex(8)
        self._ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._last = 0  # number of the newest event
        self._cond = threading.Condition()
        self._closed = False
        self._read = False  # has any reader come yet?

    def append(self, events: Iterable[dict[str, Any]]) -> int:
        """Number ``events`` (and timestamp those without a ``time``, in ms
        since the epoch); wake the readers. How many."""
        now_ms = int(time.time() * 1000)
        count = 0
        with self._cond:
            for event in events:
                self._last += 1
                self._ring.append({"time": now_ms, **event, "seq": self._last})
                count += 1
            if count:
                self._cond.notify_all()
        return count

    def wait(self, after: int, epoch: str | None, timeout: float) -> dict[str, Any]:
        timeout = min(max(timeout, 0.0), MAX_WAIT)
        with self._cond:
            first, self._read = not self._read, True
            if after < 0:
                early = list(self._ring)[:MAX_BATCH] if first else []
                return self._answer(early, 0)
            if epoch != self.epoch:
                after = 0
            self._cond.wait_for(lambda: self._last > after or self._closed, timeout)
            oldest = self._ring[0]["seq"] if self._ring else self._last + 1
            lost = max(0, oldest - after - 1) if self._last > after else 0
            fresh = [e for e in self._ring if e["seq"] > after][:MAX_BATCH]
            return self._answer(fresh, lost)

    def _answer(self, events: list[dict[str, Any]], lost: int) -> dict[str, Any]:
        last = events[-1]["seq"] if events else self._last
        return {"epoch": self.epoch, "next": last, "events": events, "lost": lost}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def wait_args(args: dict) -> tuple[int, str | None, float]:
    """The ``events`` verb's arguments, checked: (after, epoch, timeout)."""
    after, epoch, timeout = args.get("after", -1), args.get("epoch"), args.get("timeout", 0)
    if not isinstance(after, int) or isinstance(after, bool) or after < -1:
        raise NetError(ErrorCode.BAD_PARAMS, "events: after must be an integer >= -1")
    if epoch is not None and (not isinstance(epoch, str) or len(epoch) > 64):
        raise NetError(ErrorCode.BAD_PARAMS, "events: epoch must be a short string")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 <= timeout:
        raise NetError(ErrorCode.BAD_PARAMS, "events: timeout must be a number >= 0")
    return after, epoch, float(min(timeout, MAX_WAIT))
