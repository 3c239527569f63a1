"""shared.gc_pause: no cyclic collection while a big change runs, the
collector as it was afterwards; superd applies a big plan (and a big
restore) inside such a pause, a small one with the collector on."""

from __future__ import annotations

import gc
import threading
import types
from collections.abc import Iterator

import pytest

from shared.gc_pause import SWITCH_ENV, CollectorPause, gc_paused
from superd.release import ReleaseAfterAnswer
from superd.verbs import Verbs


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_no_collection_inside_the_pause() -> None:
    with gc_paused() as paused:
        assert paused is True
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_not_wanted_leaves_the_collector_on() -> None:
    with gc_paused(False) as paused:
        assert paused is False
        assert gc.isenabled()


def test_the_switch_turns_the_pause_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH_ENV, "0")
    with gc_paused() as paused:
        assert paused is False
        assert gc.isenabled()


def test_the_collector_comes_back_with_the_last_of_overlapping_pauses() -> None:
    first = gc_paused()
    first.__enter__()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the first pause still runs
    first.__exit__(None, None, None)
    assert gc.isenabled()


def test_pauses_in_two_threads_end_with_the_collector_on() -> None:
    inside, release = threading.Barrier(2), threading.Event()

    def pause() -> None:
        with gc_paused():
            inside.wait()
            release.wait()

    thread = threading.Thread(target=pause)
    thread.start()
    with gc_paused():
        inside.wait()
        release.set()
        thread.join()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_turned_off_before_stays_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def _collector_during_apply(operations: int) -> bool:
    """Whether the collector ran during ``core.apply`` of a plan of that
    many operations (superd's verb, a core that records it)."""
    seen: list[bool] = []
    core = types.SimpleNamespace(apply=lambda plan, pending: seen.append(gc.isenabled()))
    plan = types.SimpleNamespace(
        operations=[{"op": "add_network", "name": f"bn{i}"} for i in range(operations)],
        options={"connectivityCheck": False, "_inRollback": False},
    )
    verbs = object.__new__(Verbs)
    verbs._view_lock, verbs._frozen = threading.Lock(), None
    verbs.live = verbs.hub = None
    verbs._release = ReleaseAfterAnswer()
    pause = CollectorPause()
    verbs._apply_and_confirm(core, plan, {}, 0.0, pause)
    pause.end()
    return seen[0]


def test_a_big_plan_is_applied_without_cyclic_collection() -> None:
    assert _collector_during_apply(1000) is False
    assert gc.isenabled()


def test_a_small_plan_is_applied_with_the_collector_on() -> None:
    assert _collector_during_apply(1) is True


def test_a_pause_ended_twice_counts_once() -> None:
    other, pause = CollectorPause(), CollectorPause()
    other.begin()
    pause.begin()
    pause.end()
    pause.end()
    assert not gc.isenabled()  # the other pause still holds
    other.end()
    assert gc.isenabled()


def test_a_pause_may_end_in_another_thread() -> None:
    pause = CollectorPause()
    pause.begin()
    thread = threading.Thread(target=pause.end)
    thread.start()
    thread.join()
    assert gc.isenabled()
