"""A big change's collector pause ends in the change's release, after its
answer (``Verbs.apply_plan``, ``superd.release``): not on the engine's wait,
and exactly once on every path — the answer sent, its send failed, apply
raised, no server deferring (then at once) — overlapping pauses counted."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.errors import NetError
from shared.gc_pause import CollectorPause, gc_paused
from shared.wire import encode_frame, recv_frame
from superd import verbs as verbs_module
from superd.release import ReleaseAfterAnswer
from superd.server import UnixServer
from superd.verbs import Verbs


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


class Released:
    """Stands in for release_memory: whether the collector was still paused."""

    def __init__(self) -> None:
        self.collector: list[bool] = []

    def __call__(self) -> None:
        self.collector.append(gc.isenabled())


class Core:
    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.collector: list[bool] = []

    def apply(self, plan: object, pending: bool) -> None:
        self.collector.append(gc.isenabled())
        if self.fails:
            raise RuntimeError("the configurator failed")


def _verbs(monkeypatch: pytest.MonkeyPatch, released: Released, deferred: bool,
           check: bool = False) -> Verbs:  # fmt: skip
    """A Verbs whose apply_plan runs its pause logic on a recording core
    (the plan checks and the kernel are not what is under test)."""
    verbs = object.__new__(Verbs)
    verbs._view_lock, verbs._frozen, verbs._sent_lock = threading.Lock(), None, threading.Lock()
    verbs._busy = threading.Lock()
    verbs.live = verbs.hub = None
    verbs._release = ReleaseAfterAnswer(released)
    verbs.defer_release = deferred
    verbs.connectivity = types.SimpleNamespace(wait=lambda started, timeout: gc.isenabled())
    verbs._writer = types.SimpleNamespace(call=lambda job: job(verbs.core))

    def plan_from_wire(args: dict) -> types.SimpleNamespace:
        operations = [{"op": "add_network", "name": f"bn{i}"} for i in range(args["count"])]
        options = {"connectivityCheck": check, "_inRollback": False, "connectivityTimeout": 1}
        return types.SimpleNamespace(operations=operations, options=options)

    monkeypatch.setattr(verbs_module, "plan_from_wire", plan_from_wire)

    def transaction(core: Core, plan: object, pause: CollectorPause) -> dict:
        verbs._apply_and_confirm(core, plan, {}, 0.0, pause)
        return {"code": 0}

    verbs._transaction = transaction  # type: ignore[method-assign]
    return verbs


def test_the_collector_stays_paused_until_the_answer_is_sent(monkeypatch) -> None:
    released = Released()
    verbs = _verbs(monkeypatch, released, deferred=True)
    verbs.core = Core()
    verbs.apply_plan({"count": 1000})
    assert verbs.core.collector == [False]
    assert not gc.isenabled()  # the answer is being encoded and sent
    verbs.after_answer()
    assert released.collector == [False]  # the release's collection, still paused
    assert gc.isenabled()
    verbs.after_answer()
    assert gc.isenabled() and released.collector == [False]


def test_without_a_server_deferring_the_collector_is_back_at_once(monkeypatch) -> None:
    released = Released()
    verbs = _verbs(monkeypatch, released, deferred=False)
    verbs.core = Core()
    verbs.apply_plan({"count": 1000})
    assert released.collector == [False]
    assert gc.isenabled()


def test_a_failed_apply_resumes_the_collector_after_its_answer(monkeypatch) -> None:
    released = Released()
    verbs = _verbs(monkeypatch, released, deferred=True)
    verbs.core = Core(fails=True)
    with pytest.raises(RuntimeError):
        verbs.apply_plan({"count": 1000})
    verbs.after_answer()
    assert released.collector == [False]
    assert gc.isenabled()


def test_a_failed_apply_without_deferring_resumes_at_once(monkeypatch) -> None:
    verbs = _verbs(monkeypatch, Released(), deferred=False)
    verbs.core = Core(fails=True)
    with pytest.raises(RuntimeError):
        verbs.apply_plan({"count": 1000})
    assert gc.isenabled()


def test_a_small_change_does_not_pause(monkeypatch) -> None:
    released = Released()
    verbs = _verbs(monkeypatch, released, deferred=True)
    verbs.core = Core()
    verbs.apply_plan({"count": 1})
    assert verbs.core.collector == [True]
    assert gc.isenabled() and released.collector == []


def test_the_connectivity_wait_runs_with_the_collector_on(monkeypatch) -> None:
    verbs = _verbs(monkeypatch, Released(), deferred=True, check=True)
    verbs.core = types.SimpleNamespace(
        apply=lambda plan, pending: None, confirm=lambda: None
    )  # fmt: skip
    seen: list[bool] = []
    verbs.connectivity.wait = lambda started, timeout: seen.append(gc.isenabled()) or True
    verbs.apply_plan({"count": 1000})
    assert seen == [True]
    verbs.after_answer()
    assert gc.isenabled()


def test_an_overlapping_pause_keeps_the_collector_off_until_both_end(monkeypatch) -> None:
    verbs = _verbs(monkeypatch, Released(), deferred=True)
    verbs.core = Core()
    with gc_paused():
        verbs.apply_plan({"count": 1000})
        verbs.after_answer()
        assert not gc.isenabled()  # the other pause still runs
    assert gc.isenabled()
    other = CollectorPause()
    verbs.apply_plan({"count": 1000})
    other.begin()
    verbs.after_answer()
    assert not gc.isenabled()
    other.end()
    assert gc.isenabled()


def test_a_failing_release_still_resumes_the_collector() -> None:
    def release() -> None:
        raise OSError("malloc_trim failed")

    pause, release_after = CollectorPause(), ReleaseAfterAnswer(release)
    release_after.deferred = True
    pause.begin()
    release_after.due(pause.end)
    with pytest.raises(OSError):
        release_after.after_answer()
    assert gc.isenabled()


# -- through superd's server: the peer leaves before the answer -----------


def _serve(path: Path, dispatch: Callable[[str, dict], dict],
           release: ReleaseAfterAnswer) -> tuple[UnixServer, threading.Thread]:  # fmt: skip
    server = UnixServer(path, dispatch, frozenset({os.getuid()}), after_answer=release.after_answer)
    server.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def test_the_collector_is_back_when_the_answers_send_failed(tmp_path: Path) -> None:
    release, pause = ReleaseAfterAnswer(Released()), CollectorPause()
    release.deferred = True
    may_answer, changed = threading.Event(), threading.Event()

    def dispatch(verb: str, args: dict) -> dict:
        pause.begin()
        release.due(pause.end)
        changed.set()
        assert may_answer.wait(10)
        return {"big": "x" * 1_000_000}  # more than the socket buffers: the send fails

    server, thread = _serve(tmp_path / "superd.sock", dispatch, release)
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(server.path))
        client.sendall(encode_frame({"id": 1, "verb": "apply_plan", "args": {}}))
        assert changed.wait(10)
        assert not gc.isenabled()
        client.close()  # the answer's send fails: EPIPE
        may_answer.set()
        deadline = time.monotonic() + 10
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gc.isenabled()
        assert not pause.held
    finally:
        may_answer.set()
        server.stop()
        thread.join(5)
        server.close_connections()
        server.close_listener()


def test_the_collector_is_back_once_the_peer_has_the_answer(tmp_path: Path) -> None:
    release, pause = ReleaseAfterAnswer(Released()), CollectorPause()
    release.deferred = True

    def dispatch(verb: str, args: dict) -> dict:
        if verb == "apply_plan":
            pause.begin()
            release.due(pause.end)
        return {"collector": gc.isenabled()}

    server, thread = _serve(tmp_path / "superd.sock", dispatch, release)
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(10)
        client.connect(str(server.path))
        client.sendall(encode_frame({"id": 1, "verb": "apply_plan", "args": {}}))
        assert recv_frame(client)["result"] == {"collector": False}
        client.sendall(encode_frame({"id": 2, "verb": "ping", "args": {}}))
        assert recv_frame(client)["result"] == {"collector": True}
        client.close()
    finally:
        server.stop()
        thread.join(5)
        server.close_connections()
        server.close_listener()


def _wire(count: int) -> dict:
    return {"plan": {"version": 1, "operations": [{"op": "add_network"}] * count}}


def test_a_big_plans_intake_runs_without_cyclic_collection(monkeypatch) -> None:
    verbs = _verbs(monkeypatch, Released(), deferred=True)
    verbs.core = Core()
    seen: list[bool] = []
    intake = verbs_module.plan_from_wire

    def recorded(args: dict) -> object:
        seen.append(gc.isenabled())
        return intake({"count": len(args["plan"]["operations"])})

    monkeypatch.setattr(verbs_module, "plan_from_wire", recorded)
    verbs.apply_plan(_wire(1000))
    verbs.after_answer()
    verbs.apply_plan(_wire(1))
    assert seen == [False, True]
    assert gc.isenabled()


def test_a_big_plan_refused_at_its_intake_resumes_the_collector_at_once(tmp_path) -> None:
    verbs = object.__new__(Verbs)
    verbs._release = ReleaseAfterAnswer(Released())
    verbs.defer_release = True
    with pytest.raises(NetError):
        verbs.apply_plan({"plan": {"version": 1, "operations": [{"op": "reboot"}] * 1000}})
    assert gc.isenabled()
