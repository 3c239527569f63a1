"""The engine, played by stomp.py (a client library nobody on this project
wrote), in its own process inside the lab's engine namespace (``python -m
demo.engine --connect HOST:PORT --pki DIR``), driven line by line with JSON
over its stdin/stdout (:class:`Engine`). :func:`connect_engine`,
:class:`Collector` and :func:`send_request` are the stomp.py side of it,
usable in-process too.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stomp

from frontd.stomp_connection import DEFAULT_REPLY_TO, EVENTS, REQUESTS

SOURCE_ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0


# -- the engine's STOMP client (stomp.py) ----------------------------------------


class Collector(stomp.ConnectionListener):
    """A stomp.py listener keeping every MESSAGE and RECEIPT, with waits on them."""

    def __init__(self) -> None:
        self.messages: list = []
        self.receipts: list[str] = []
        self.errors: list = []
        self.disconnected = threading.Event()
        self._changed = threading.Condition()

    def on_message(self, frame) -> None:
        with self._changed:
            self.messages.append(frame)
            self._changed.notify_all()

    def on_receipt(self, frame) -> None:
        with self._changed:
            self.receipts.append(frame.headers["receipt-id"])
            self._changed.notify_all()

    def on_error(self, frame) -> None:
        self.errors.append(frame)

    def on_disconnected(self) -> None:
        self.disconnected.set()

    def wait_for(self, predicate: Callable[[], object], timeout: float = WAIT) -> None:
        with self._changed:
            assert self._changed.wait_for(predicate, timeout), "timed out"

    def find(self, request_id: str) -> tuple[dict, object] | None:
        with self._changed:
            for frame in self.messages:
                body = json.loads(frame.body)
                if body.get("id") == request_id:
                    return body, frame
        return None

    def answer(self, request_id: str, timeout: float = WAIT) -> tuple[dict, object]:
        """The JSON-RPC response with ``request_id`` and its MESSAGE frame."""
        self.wait_for(lambda: self.find(request_id) is not None, timeout)
        return self.find(request_id)  # type: ignore[return-value]

    def events(self) -> list[dict]:
        with self._changed:
            return [
                json.loads(f.body) for f in self.messages if f.headers.get("destination") == EVENTS
            ]


def connect_engine(
    port: int, pki: Path, cert: str = "engine", host: str = "127.0.0.1", timeout: float = WAIT
):
    """A connected stomp.py ``Connection12`` (TLS with ``cert``) and its Collector."""
    conn = stomp.Connection12(
        [(host, port)], heartbeats=(1000, 1000), reconnect_attempts_max=1, timeout=timeout
    )
    conn.set_ssl(
        for_hosts=[(host, port)],
        key_file=str(pki / f"{cert}.key"),
        cert_file=str(pki / f"{cert}.crt"),
        ca_certs=str(pki / "ca.crt"),
    )
    collector = Collector()
    conn.set_listener("collector", collector)
    conn.connect(wait=True)
    return conn, collector


def send_request(conn, method: str, params: dict | None = None, **headers: str) -> str:
    """SEND a JSON-RPC request to the requests topic; its id."""
    request_id = str(uuid.uuid4())
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
    )
    conn.send(
        REQUESTS,
        body,
        content_type="application/json",
        headers={"reply-to": DEFAULT_REPLY_TO, **headers},
    )
    return request_id


# -- the engine process ------------------------------------------------------------


class EngineError(Exception):
    """A JSON-RPC error answer: the agent's code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"code {code}: {message}")
        self.code, self.message = code, message


class Engine:
    """stomp.py in its own process inside ``netns``, connected to frontd at
    ``host:port`` over mutual TLS and subscribed to the responses and the
    events. One STOMP connection for the Engine's whole life."""

    def __init__(self, netns: str, host: str, port: int, pki: Path, log: Path) -> None:
        self.log = log
        self._buffer = b""
        with log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable, "-m", "demo.engine",
                 "--connect", f"{host}:{port}", "--pki", str(pki)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=SOURCE_ROOT,
            )  # fmt: skip
        try:
            self._read(WAIT + 5)
        except BaseException:
            self.close()
            raise

    def call(
        self,
        method: str,
        params: dict | None = None,
        ping: float = 0.0,
        timeout: float = 60.0,
    ) -> dict:
        """The JSON-RPC response to ``method``. ``ping`` > 0: send
        ``Host.ping2`` every ``ping`` seconds until the answer comes, as the
        engine does during setupNetworks' connectivity check; the number sent
        is in the response's ``"pings"``."""
        command = {"call": method, "params": params or {}, "ping": ping, "timeout": timeout}
        return self._exchange(command, timeout + 5)

    def result(self, method: str, params: dict | None = None, **kwargs: Any) -> Any:
        """The ``result`` of ``method``; an error answer raises EngineError."""
        answer = self.call(method, params, **kwargs)
        if "error" in answer:
            raise EngineError(answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    def events(self) -> list[dict]:
        """Every notification received on ``jms.queue.events`` so far."""
        return self._exchange({"events": True}, WAIT)["events"]

    def connected(self) -> bool:
        return self._exchange({"connected": True}, WAIT)["connected"]

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # EOF: the engine disconnects and exits
            except OSError:
                pass
        try:
            self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _exchange(self, command: dict, timeout: float) -> dict:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(command).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise RuntimeError(f"the engine process is gone:\n{self._log()}") from None
        return self._read(timeout)

    def _read(self, timeout: float) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the engine did not answer in {timeout:g} s:\n{self._log()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"the engine process exited:\n{self._log()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply = json.loads(line)
        if "fault" in reply:
            raise RuntimeError(f"engine: {reply['fault']}\n{self._log()}")
        return reply

    def _log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def _engine_command(conn, got: Collector, command: dict) -> dict:
    if command.get("events"):
        return {"events": got.events()}
    if command.get("connected"):
        return {"connected": bool(conn.is_connected())}
    method, timeout = command["call"], float(command.get("timeout", 60))
    interval = float(command.get("ping") or 0)
    started = time.monotonic()
    request_id = send_request(conn, method, command.get("params") or {})
    pings = 0
    if interval > 0:
        deadline = started + timeout
        while (
            got.find(request_id) is None
            and not got.disconnected.is_set()
            and time.monotonic() < deadline
        ):
            send_request(conn, "Host.ping2")
            pings += 1
            time.sleep(interval)
    remaining = max(0.1, timeout - (time.monotonic() - started))
    got.wait_for(lambda: got.find(request_id) or got.disconnected.is_set(), remaining)
    found = got.find(request_id)
    if found is None:
        raise ConnectionError("frontd closed the STOMP connection before answering")
    return {**found[0], "pings": pings, "seconds": round(time.monotonic() - started, 2)}


def serve_engine(
    target: str, connect: Callable[[], tuple[Any, Any]], handle: Callable[[Any, Any, dict], dict]
) -> int:
    """An engine process's loop: connect, then one JSON command per stdin
    line, one JSON reply per stdout line (faults reported, never raised)."""

    def emit(reply: dict) -> None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    try:
        conn, got = connect()
    except Exception as error:  # the parent shows it with the log
        emit({"fault": f"cannot connect to {target}: {type(error).__name__}: {error}"})
        return 1
    emit({"ready": True})
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                emit(handle(conn, got, json.loads(line)))
            except Exception as error:
                emit({"fault": f"{type(error).__name__}: {error}"})
    finally:
        if conn.is_connected():
            conn.disconnect()
    return 0


def engine_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.engine")
    parser.add_argument("--connect", required=True, help="frontd's HOST:PORT")
    parser.add_argument("--pki", required=True, type=Path)
    args = parser.parse_args(argv)
    host, _, port = args.connect.rpartition(":")

    def connect() -> tuple[Any, Any]:
        conn, got = connect_engine(int(port), args.pki, host=host)
        conn.subscribe(DEFAULT_REPLY_TO, id="responses", receipt="responses")
        conn.subscribe(EVENTS, id="events", receipt="events")
        got.wait_for(lambda: {"responses", "events"} <= set(got.receipts))
        return conn, got

    return serve_engine(args.connect, connect, _engine_command)




def main(argv: list[str] | None = None) -> int:
    return engine_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
