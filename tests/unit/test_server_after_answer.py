"""superd's server runs a caller's after-answer work (a big change's memory
release) once the answer is sent, so the peer does not wait for it."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.wire import encode_frame, recv_frame
from superd.server import UnixServer


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Callable[[], None]], socket.socket]]:
    servers: list[tuple[UnixServer, threading.Thread]] = []

    def start(after_answer: Callable[[], None]) -> socket.socket:
        path = tmp_path / f"superd{len(servers)}.sock"
        server = UnixServer(
            path, lambda verb, args: {"verb": verb}, frozenset({os.getuid()}),
            after_answer=after_answer,
        )  # fmt: skip
        server.start()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(10)
        client.connect(str(path))
        return client

    yield start
    for server, thread in servers:
        server.stop()
        thread.join(5)
        server.close_connections()
        server.close_listener()


def ask(client: socket.socket, request_id: int) -> dict | None:
    client.sendall(encode_frame({"id": request_id, "verb": "netinfo", "args": {}}))
    return recv_frame(client)


def test_after_answer_runs_once_the_peer_has_the_answer(serve) -> None:
    answered = threading.Event()
    seen: list[bool] = []

    def after_answer() -> None:  # waits for the client: would time out if run before the send
        seen.append(answered.wait(5))

    client = serve(after_answer)
    answer = ask(client, 1)
    answered.set()
    assert answer == {"id": 1, "ok": True, "result": {"verb": "netinfo"}}
    ask(client, 2)  # served once after_answer returned
    assert seen[0] is True


def test_a_failing_after_answer_keeps_the_connection(serve) -> None:
    def after_answer() -> None:
        raise RuntimeError("boom")

    client = serve(after_answer)
    assert ask(client, 1)["ok"] is True
    assert ask(client, 2) == {"id": 2, "ok": True, "result": {"verb": "netinfo"}}
