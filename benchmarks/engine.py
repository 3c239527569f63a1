"""The benchmarks' engine: stomp.py over STOMP 1.2 / mutual TLS, with timings.

Like ``demo.lab.Engine`` (same lab, same certificates, same
stomp.py client in its own process inside the engine namespace), but the
timing happens *in* the engine process, around the STOMP exchange itself,
with ``time.perf_counter`` (CLOCK_MONOTONIC: comparable across processes, so
the runner can compare its own timestamps with the engine's). Answers are
decoded once and dropped after use, and large results are not shipped back
to the runner, so the client side does not grow with the number of calls.

Commands (one JSON line in, one JSON line out):

* ``{"call": M, "params": P, "timeout": T}`` → ``{"t0", "t1", "seconds",
  "bytes", "result" | "error"}`` (``result`` only with ``"keep": true``)
* ``{"repeat": M, "count": K, "timeout": T}`` → ``{"seconds": [...], "bytes"}``
* ``{"snapshot": true, "timeout": T}`` → one getNetworkCapabilities, kept in
  the engine process; ``{"networks": <how many>}``
* ``{"entry": [SECTION, NAME]}`` → ``{"entry": snapshot[SECTION][NAME]}``
* ``{"poll_change": [SECTION, NAME], "before": E, "timeout": T}`` → calls
  getNetworkCapabilities back to back until ``caps[SECTION][NAME] != E``:
  ``{"seen": <perf_counter when that answer arrived>, "calls": K}`` or
  ``{"timed_out": true, "calls": K}``
* ``{"subscribe_events": true}`` → subscribes to ``jms.queue.events`` (once)
* ``{"wait_event": [KIND, DEVICE], "after": T0, "timeout": T}`` →
  ``{"seen": <perf_counter of the first notification since T0 carrying that
  event>}`` or ``{"timed_out": true}``
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import stomp

from demo.engine import Engine, send_request, serve_engine
from frontd.stomp_connection import DEFAULT_REPLY_TO, EVENTS

CAPS = "Host.getNetworkCapabilities"
CONNECT_WAIT = 15.0
SNAPSHOT: dict = {}  # the last capabilities report asked for with "snapshot"
SUBSCRIBED: list = []  # [True] once subscribed to the events


class Answers(stomp.ConnectionListener):
    """JSON-RPC answers by id, each with the perf_counter of its arrival."""

    def __init__(self) -> None:
        self._answers: dict[str, tuple[dict, float, int]] = {}
        self.notifications: list[tuple[dict, float]] = []  # (body, arrival)
        self._receipts: set[str] = set()
        self._cond = threading.Condition()
        self.disconnected = False

    def on_message(self, frame) -> None:
        arrived = time.perf_counter()  # received; decoding it is the client's own cost
        try:
            body = json.loads(frame.body)
        except ValueError:
            return
        if isinstance(body, dict) and "id" in body:
            with self._cond:
                self._answers[body["id"]] = (body, arrived, len(frame.body))
                self._cond.notify_all()
        elif isinstance(body, dict) and "method" in body:  # an event
            with self._cond:
                self.notifications.append((body, arrived))
                self._cond.notify_all()

    def wait_event(self, kind: str, device: str, after: float, timeout: float) -> float | None:
        """Arrival of the first notification since ``after`` carrying an
        event ``kind`` on ``device``; None on timeout."""

        def seen() -> float | None:
            for body, arrived in self.notifications:
                details = body.get("params", {}).get("events", [])
                if arrived >= after and any(
                    e.get("kind") == kind and e.get("device") == device for e in details
                ):
                    return arrived
            return None

        with self._cond:
            self._cond.wait_for(lambda: seen() is not None or self.disconnected, timeout)
            return seen()

    def on_receipt(self, frame) -> None:
        with self._cond:
            self._receipts.add(frame.headers.get("receipt-id", ""))
            self._cond.notify_all()

    def on_disconnected(self) -> None:
        with self._cond:
            self.disconnected = True
            self._cond.notify_all()

    def wait_receipt(self, receipt: str, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: receipt in self._receipts, timeout):
                raise TimeoutError(f"no RECEIPT {receipt} within {timeout:g} s")

    def take(self, request_id: str, timeout: float) -> tuple[dict, float, int]:
        """The answer to ``request_id`` (removed from the store)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: request_id in self._answers or self.disconnected, timeout
            )
            if request_id in self._answers:
                return self._answers.pop(request_id)
            if not ok:
                raise TimeoutError(f"no answer within {timeout:g} s")
            raise ConnectionError("frontd closed the STOMP connection before answering")


def connect(host: str, port: int, pki: Path) -> tuple[Any, Answers]:
    # No heart-beats: a benchmark must not lose its connection because frontd
    # was busy for a few seconds (that would show as a failed call anyway).
    conn = stomp.Connection12(
        [(host, port)], heartbeats=(0, 0), reconnect_attempts_max=1, timeout=CONNECT_WAIT
    )
    conn.set_ssl(
        for_hosts=[(host, port)],
        key_file=str(pki / "engine.key"),
        cert_file=str(pki / "engine.crt"),
        ca_certs=str(pki / "ca.crt"),
    )
    answers = Answers()
    conn.set_listener("answers", answers)
    conn.connect(wait=True)
    conn.subscribe(DEFAULT_REPLY_TO, id="responses", receipt="responses")
    answers.wait_receipt("responses", CONNECT_WAIT)
    return conn, answers


def _call(conn, answers: Answers, method: str, params: dict | None, timeout: float):
    t0 = time.perf_counter()
    request_id = send_request(conn, method, params or {})
    body, t1, size = answers.take(request_id, timeout)
    return body, t0, t1, size


def handle(conn, answers: Answers, command: dict) -> dict:
    timeout = float(command.get("timeout", 60))
    if "call" in command:
        body, t0, t1, size = _call(conn, answers, command["call"], command.get("params"), timeout)
        out: dict = {"t0": t0, "t1": t1, "seconds": t1 - t0, "bytes": size}
        if "error" in body:
            out["error"] = body["error"]
        elif command.get("keep"):
            out["result"] = body.get("result")
        return out
    if "repeat" in command:  # timeout: for all the calls together
        seconds: list[float] = []
        size = 0
        deadline = time.perf_counter() + timeout
        for _ in range(int(command["count"])):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return {"seconds": seconds, "bytes": size, "timed_out": True}
            body, t0, t1, size = _call(conn, answers, command["repeat"], None, remaining)
            if "error" in body:
                return {"error": body["error"], "seconds": seconds}
            seconds.append(t1 - t0)
        return {"seconds": seconds, "bytes": size}
    if "snapshot" in command:
        body, _, _, _ = _call(conn, answers, CAPS, None, timeout)
        if "error" in body:
            return {"error": body["error"]}
        SNAPSHOT.clear()
        SNAPSHOT.update(body["result"])
        return {"networks": len(SNAPSHOT.get("networks", {}))}
    if "entry" in command:  # from the last snapshot
        section, name = command["entry"]
        return {"entry": SNAPSHOT.get(section, {}).get(name)}
    if "subscribe_events" in command:
        if not SUBSCRIBED:
            conn.subscribe(EVENTS, id="events", receipt="events")
            answers.wait_receipt("events", CONNECT_WAIT)
            SUBSCRIBED.append(True)
        return {"subscribed": True}
    if "wait_event" in command:  # [kind, device], "after": perf_counter
        kind, device = command["wait_event"]
        arrived = answers.wait_event(kind, device, float(command.get("after", 0)), timeout)
        return {"timed_out": True} if arrived is None else {"seen": arrived}
    if "poll_change" in command:
        section, name = command["poll_change"]
        before = command.get("before")
        deadline = time.perf_counter() + timeout
        calls = 0
        while time.perf_counter() < deadline:  # no new call after the deadline
            body, _, t1, _ = _call(conn, answers, CAPS, None, max(timeout, 30.0))
            calls += 1
            if "error" in body:
                return {"error": body["error"], "calls": calls}
            if body["result"].get(section, {}).get(name) != before:
                return {"seen": t1, "calls": calls}
        return {"timed_out": True, "calls": calls}
    raise ValueError(f"unknown command {sorted(command)}")


def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine")
    parser.add_argument("--connect", required=True, help="frontd's HOST:PORT")
    parser.add_argument("--pki", required=True, type=Path)
    args = parser.parse_args(argv)
    host, _, port = args.connect.rpartition(":")
    return serve_engine(args.connect, lambda: connect(host, int(port), args.pki), handle)


class BenchEngine(Engine):
    """The runner's handle on a benchmark engine process (demo_support's
    Engine plumbing: stdin/stdout lines, bounded reads, log on failure)."""

    def __init__(self, netns: str, host: str, port: int, pki: Path, log: Path) -> None:
        import subprocess

        from demo.lab import SOURCE_ROOT

        self.log = log
        self._buffer = b""
        with log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable, "-m", "benchmarks.engine",
                 "--connect", f"{host}:{port}", "--pki", str(pki)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=SOURCE_ROOT,
            )  # fmt: skip
        try:
            self._read(CONNECT_WAIT + 10)
        except BaseException:
            self.close()
            raise

    def command(self, command: dict) -> dict:
        """Send one command; wait a little longer than its own timeout."""
        return self._exchange(command, max(float(command.get("timeout", 60)), 30.0) + 15)


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
