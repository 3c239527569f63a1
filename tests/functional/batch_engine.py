"""An engine process that frames its requests as the production agent's own
client library does (``vdsm-client`` and the host tools use it), written
with stomp.py, in the lab's engine namespace.

What that client puts on the wire: one CONNECT (STOMP 1.2), a SUBSCRIBE to
a response queue named by a fresh UUID (``ack:auto``, the subscription id
another UUID), then per call one SEND to ``jms.topic.vdsm_requests`` with
``content-type:application/json``, ``reply-to:<that UUID>`` and as body a
JSON-RPC *batch*: ``[`` the requests joined by ``", "`` ``]`` — a batch of one
for a single call. Its answer is a MESSAGE on the UUID queue: a plain
response object for a batch of one, an array for a larger one.

``python -m tests.functional.batch_engine --connect HOST:PORT --pki DIR``
speaks the line protocol of ``demo.engine.serve_engine``: a command
``{"send": BODY, "wait": S}`` SENDs BODY (a string) and replies
``{"answer": <the parsed MESSAGE body>}`` or ``{"answer": null}`` if nothing
came within S seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import stomp

from demo.engine import Engine, connect_engine, serve_engine
from demo.lab import HOST_CONTROL_IP, SOURCE_ROOT, STOMP_PORT, Lab
from frontd.stomp_connection import REQUESTS


def framed_batch(*requests: dict) -> str:
    """Requests as that client frames them: a batch, ``", "`` between them."""
    return "[" + ", ".join(json.dumps(request) for request in requests) + "]"


def call(method: str, params: dict | None = None, request_id: str | None = None) -> dict:
    return {
        "jsonrpc": "2.0",
        "method": method,
        "params": params or {},
        "id": request_id or str(uuid.uuid4()),
    }


class _Queue(stomp.ConnectionListener):
    """The MESSAGE bodies arriving on the response queue, in order."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.bodies: list[str] = []
        self.taken = 0
        self.changed = threading.Condition()

    def on_message(self, frame: Any) -> None:
        if frame.headers.get("destination") == self.destination:
            with self.changed:
                self.bodies.append(frame.body)
                self.changed.notify_all()

    def next(self, timeout: float) -> str | None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.bodies) > self.taken, timeout):
                return None
            self.taken += 1
            return self.bodies[self.taken - 1]


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.functional.batch_engine")
    parser.add_argument("--connect", required=True)
    parser.add_argument("--pki", required=True, type=Path)
    args = parser.parse_args(argv)
    host, _, port = args.connect.rpartition(":")
    responses = _Queue(str(uuid.uuid4()))

    def connect() -> tuple[Any, Any]:
        conn, got = connect_engine(int(port), args.pki, host=host)
        conn.set_listener("responses", responses)
        conn.subscribe(responses.destination, id=str(uuid.uuid4()), ack="auto", receipt="sub")
        got.wait_for(lambda: "sub" in got.receipts)
        return conn, got

    def handle(conn: Any, got: Any, command: dict) -> dict:
        conn.send(
            REQUESTS,
            command["send"],
            content_type="application/json",
            headers={"reply-to": responses.destination},
        )
        body = responses.next(float(command.get("wait", 30)))
        return {"answer": None if body is None else json.loads(body)}

    return serve_engine(args.connect, connect, handle)


class BatchEngine(Engine):
    """:func:`_main` in its own process inside the lab's engine namespace."""

    def __init__(self, lab: Lab) -> None:
        self.log = lab.logs / f"batch_engine{len(lab.engines)}.log"
        self._buffer = b""
        with self.log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", lab.engine_ns, sys.executable, "-m",
                 "tests.functional.batch_engine", "--connect", f"{HOST_CONTROL_IP}:{STOMP_PORT}",
                 "--pki", str(lab.pki)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=SOURCE_ROOT,
                env={**os.environ, "PYTHONPATH": str(SOURCE_ROOT)},
            )  # fmt: skip
        lab.engines.append(self)
        try:
            self._read(15)
        except BaseException:
            self.close()
            raise

    def send(self, body: str, wait: float = 30.0) -> Any:
        """The parsed answer to ``body`` (None: nothing came within ``wait`` s)."""
        return self._exchange({"send": body, "wait": wait}, wait + 10)["answer"]

    def batch(self, *requests: dict, wait: float = 30.0) -> Any:
        return self.send(framed_batch(*requests), wait)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
