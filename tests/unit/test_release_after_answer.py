"""A big change's memory is handed back by the connection thread that sent
the change's answer, after that answer, and by no other connection."""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.wire import encode_frame, recv_frame
from superd.release import ReleaseAfterAnswer
from superd.server import UnixServer


class Recorder:
    """Stands in for release_memory: records the thread it ran in."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(self) -> None:
        self.threads.append(threading.current_thread().name)


def test_not_deferred_releases_at_once() -> None:
    released = Recorder()
    release = ReleaseAfterAnswer(released)
    release.due()
    assert released.threads == [threading.current_thread().name]


def test_deferred_releases_once_after_the_same_threads_answer() -> None:
    released = Recorder()
    release = ReleaseAfterAnswer(released)
    release.deferred = True
    release.due()
    assert released.threads == []
    release.after_answer()
    release.after_answer()
    assert released.threads == [threading.current_thread().name]


def test_another_threads_answer_does_not_release() -> None:
    released = Recorder()
    release = ReleaseAfterAnswer(released)
    release.deferred = True
    release.due()
    other = threading.Thread(target=release.after_answer)
    other.start()
    other.join()
    assert released.threads == []
    release.after_answer()
    assert len(released.threads) == 1


def test_a_leftover_let_go_in_a_worker_thread_goes_after_the_next_answer() -> None:
    release = ReleaseAfterAnswer(Recorder())
    release.deferred = True
    leftover = Leftover()
    ref = weakref.ref(leftover)
    worker = threading.Thread(target=release.drop_after_answer, args=(leftover,))
    worker.start()  # superd's writer thread lets the view of before go
    worker.join()
    del leftover
    assert ref() is not None  # held: the answer is not out
    release.after_answer()  # the connection thread, once its answer is sent
    assert ref() is None


class Leftover:
    """Stands for the netinfo view of before a change (weakly referenceable)."""


# -- through superd's server: two connections, a big change on one --------


class BigChangeServer:
    """UnixServer whose "apply_plan" marks a release due, and holds its
    answer until told (so another connection is answered meanwhile)."""

    def __init__(self, path: Path) -> None:
        self.released = Recorder()
        self.release = ReleaseAfterAnswer(self.released)
        self.release.deferred = True
        self.change_done = threading.Event()
        self.may_answer = threading.Event()
        self.server = UnixServer(
            path, self.dispatch, frozenset({os.getuid()}), after_answer=self.release.after_answer
        )

    def dispatch(self, verb: str, args: dict) -> dict:
        if verb == "apply_plan":
            self.release.due()
            self.change_done.set()
            assert self.may_answer.wait(10)
            return {"applied": threading.current_thread().name}
        return {"verb": verb}


@pytest.fixture
def big(tmp_path: Path) -> Iterator[BigChangeServer]:
    lab = BigChangeServer(tmp_path / "superd.sock")
    lab.server.start()
    thread = threading.Thread(target=lab.server.serve_forever, daemon=True)
    thread.start()
    yield lab
    lab.may_answer.set()
    lab.server.stop()
    thread.join(5)
    lab.server.close_connections()
    lab.server.close_listener()


def connect(lab: BigChangeServer) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(10)
    client.connect(str(lab.server.path))
    return client


def send(client: socket.socket, request_id: int, verb: str) -> None:
    client.sendall(encode_frame({"id": request_id, "verb": verb, "args": {}}))


def test_the_change_is_released_by_its_own_connection_after_its_answer(big) -> None:
    changer, reader = connect(big), connect(big)
    send(changer, 1, "apply_plan")
    assert big.change_done.wait(10)
    send(reader, 2, "netinfo")  # answered while the change's answer is held
    assert recv_frame(reader)["ok"] is True
    assert big.released.threads == []
    big.may_answer.set()
    answer = recv_frame(changer)
    send(changer, 3, "netinfo")  # served after the first answer's after_answer
    assert recv_frame(changer)["ok"] is True
    assert big.released.threads == [answer["result"]["applied"]]


def test_the_change_is_released_when_its_peer_left_before_the_answer(big) -> None:
    changer = connect(big)
    send(changer, 1, "apply_plan")
    assert big.change_done.wait(10)
    changer.close()  # the answer's send fails: EPIPE
    big.may_answer.set()
    deadline = time.monotonic() + 10
    while not big.released.threads and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(big.released.threads) == 1
