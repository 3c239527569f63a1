"""What a change lets go of is freed after its answer is sent, not before
(``Verbs._quiet``, ``Verbs.after_answer``): the state and running
configuration of before the change hold the host's thousands of entries."""

from __future__ import annotations

import gc
import threading
import weakref

from superd.release import ReleaseAfterAnswer
from superd.verbs import Verbs


class _State:
    """Stands for a monitor state (weakly referenceable)."""


class _Live:
    def __init__(self, state: _State) -> None:
        self.state = state

    def snapshot(self) -> _State:
        return self.state

    def ovs_state(self, running: object) -> None:
        return None


class _RunningView:
    def shared_snapshot(self) -> tuple[int, dict]:
        return 1, {"networks": {}}


def _verbs(state: _State, defer: bool) -> Verbs:
    """A Verbs with only what ``_quiet`` and ``after_answer`` use (no cores)."""
    verbs = Verbs.__new__(Verbs)
    verbs._view_lock, verbs._frozen = threading.Lock(), None
    verbs.live, verbs.hub = _Live(state), None  # type: ignore[assignment]
    verbs._running_view = _RunningView()  # type: ignore[assignment]
    verbs._release = ReleaseAfterAnswer()
    verbs.defer_release = defer
    return verbs


def test_the_view_of_before_a_change_is_freed_after_the_answer() -> None:
    state = _State()
    ref = weakref.ref(state)
    verbs = _verbs(state, defer=True)
    with verbs._quiet():
        pass
    verbs.live.state = _State()  # the monitor moved on
    del state
    gc.collect()
    assert ref() is not None  # still held: the answer is not out yet
    verbs.after_answer()
    assert ref() is None


def test_without_a_server_calling_after_answer_it_is_freed_at_once() -> None:
    state = _State()
    ref = weakref.ref(state)
    verbs = _verbs(state, defer=False)
    with verbs._quiet():
        pass
    verbs.live.state = _State()
    del state
    assert ref() is None
