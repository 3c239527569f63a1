"""A load driver: many engine clients on one asyncio loop, STOMP 1.2 over mutual TLS.

``python -m tests.functional.load_clients run SPEC.json`` (inside the lab's
engine namespace) connects ``clients`` pollers and two writers to frontd,
runs them for ``seconds`` and prints one JSON summary line on stdout:

* each poller sends ``Host.getCapabilities`` back to back and checks EVERY
  answer with ``load_workload.caps_problems`` (no half-applied view, see
  there);
* the *main* writer sends ``Host.setupNetworks`` back to back, each request
  adding one group of networks and removing the previous one (one atomic
  swap), and sends a refused request again (code 40 changes nothing);
* the *contender* toggles a group of its own with ``Host.setupNetworks`` at
  the same time, to run into the main writer: code 40 is the documented
  answer to a concurrent network verb, any other error is a failure.

The client is written here rather than with stomp.py: a hundred stomp.py
connections are a hundred receiver threads fighting over the GIL, which
would measure the client, not frontd. It speaks what the engine speaks
(CONNECT 1.2, SUBSCRIBE with a receipt, SEND with ``reply-to``) and parses
only what frontd sends (content-length bodies, heart-beat EOLs). Each client
has a reply-to destination of its own: frontd sends an answer to every
subscriber of its destination, so a hundred clients sharing the engine's
``jms.topic.vdsm_responses`` would each receive every answer
(``shared_reply_to`` in the spec does that, to measure it).

frontd serves 64 STOMP connections unless ``[frontd] max_connections`` says
otherwise: the hundred-client test raises it in its lab's configuration.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.functional.load_workload import Group, caps_problems, groups_of, problem_kind

REQUESTS = "jms.topic.vdsm_requests"
CALL_TIMEOUT = 60.0  # a caps answer or a setupNetworks taking longer is a hang
CONNECT_CONCURRENCY = 20  # TLS handshakes in flight at once


# -- a minimal STOMP client (asyncio) ------------------------------------------------


class StompError(Exception):
    """frontd closed the connection or sent an ERROR frame."""


class Client:
    """One STOMP connection; JSON-RPC calls answered on its own reply-to."""

    def __init__(self, name: str, reply_to: str) -> None:
        self.name, self.reply_to = name, reply_to
        self._waiting: dict[str, asyncio.Future] = {}
        self._buffer = b""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self.closed: str | None = None  # why

    async def connect(self, host: str, port: int, tls: ssl.SSLContext) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host
        )
        self._send(f"CONNECT\naccept-version:1.2\nhost:{host}\nheart-beat:0,0\n\n".encode())
        self._task = asyncio.create_task(self._read_loop())
        await self._expect("CONNECTED")
        self._send(
            f"SUBSCRIBE\nid:responses\ndestination:{self.reply_to}\nack:auto\n"
            "receipt:subscribed\n\n".encode()
        )
        await self._expect("RECEIPT")

    async def _expect(self, command: str) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting[f"frame:{command}"] = future
        await asyncio.wait_for(future, CALL_TIMEOUT)

    async def call(self, method: str, params: dict) -> tuple[dict, float, float]:
        """(answer, seconds from SEND to the answer's frame, its arrival)."""
        request_id = str(uuid.uuid4())
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        ).encode()
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        started = time.perf_counter()
        self._send(
            f"SEND\ndestination:{REQUESTS}\nreply-to:{self.reply_to}\n"
            f"content-type:application/json\ncontent-length:{len(body)}\n\n".encode()
            + body
        )
        try:
            raw, arrived = await asyncio.wait_for(future, CALL_TIMEOUT)
        finally:
            self._waiting.pop(request_id, None)
        return json.loads(raw), arrived - started, arrived

    def _send(self, frame: bytes) -> None:
        if self.closed:
            raise StompError(f"{self.name}: connection closed ({self.closed})")
        assert self._writer is not None
        self._writer.write(frame + b"\0")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                chunk = await self._reader.read(1 << 18)
                if not chunk:
                    raise StompError("frontd closed the connection")
                self._buffer += chunk
                while (frame := self._next_frame()) is not None:
                    self._on_frame(*frame)
        except (OSError, ssl.SSLError, StompError, ValueError) as error:
            self._fail(f"{type(error).__name__}: {error}")
        except asyncio.CancelledError:
            self._fail("closed")
            raise

    def _next_frame(self) -> tuple[str, dict, bytes] | None:
        """One whole frame off the buffer (heart-beat EOLs skipped), or None."""
        self._buffer = self._buffer.lstrip(b"\r\n")
        head_end = self._buffer.find(b"\n\n")
        if head_end < 0:
            return None
        command, *lines = self._buffer[:head_end].decode().split("\n")
        headers: dict[str, str] = {}
        for line in lines:
            key, _, value = line.partition(":")
            headers.setdefault(key, value)
        start = head_end + 2
        if "content-length" in headers:
            end = start + int(headers["content-length"])
            if len(self._buffer) < end + 1:
                return None
        else:
            end = self._buffer.find(b"\0", start)
            if end < 0:
                return None
        body = self._buffer[start:end]
        self._buffer = self._buffer[end + 1 :]
        return command, headers, body

    def _on_frame(self, command: str, headers: dict, body: bytes) -> None:
        arrived = time.perf_counter()  # received: decoding is the client's own cost
        if command == "ERROR":
            raise StompError(f"ERROR frame: {headers.get('message')}")
        if command == "MESSAGE":
            # The id, without decoding a whole report here: it is near the start.
            marker = body.find(b'"id":"', 0, 64)
            if marker >= 0:
                request_id = body[marker + 6 : body.find(b'"', marker + 6)].decode()
            else:  # not frontd's usual layout: decode it all
                request_id = str(json.loads(body).get("id"))
            future = self._waiting.get(request_id)
        else:
            future = self._waiting.pop(f"frame:{command}", None)
        if future is not None and not future.done():
            future.set_result((body, arrived))

    def _fail(self, why: str) -> None:
        self.closed = self.closed or why
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(StompError(f"{self.name}: {why}"))

    async def close(self) -> None:
        if self._writer is not None and not self.closed:
            self._send(b"DISCONNECT\n\n")
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
            try:
                await asyncio.wait_for(self._writer.wait_closed(), 2)
            except (TimeoutError, OSError, ssl.SSLError):
                pass


def client_tls(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "engine.crt"), str(pki / "engine.key"))
    return context


# -- the run ---------------------------------------------------------------------------


@dataclass
class Tally:
    """What one role saw."""

    seconds: list[float] = field(default_factory=list)  # of successful calls
    errors: dict[str, int] = field(default_factory=dict)  # code → count
    samples: list[str] = field(default_factory=list)  # a few failures, verbatim
    refused_seconds: list[float] = field(default_factory=list)  # code 40 answers
    # (seconds, when sent: local time, as in the daemons' logs)
    slowest: list[tuple[float, str]] = field(default_factory=list)

    def done(self, seconds: float) -> None:
        self.seconds.append(seconds)
        sent = time.strftime("%H:%M:%S", time.localtime(time.time() - seconds))
        self.slowest = sorted([*self.slowest, (seconds, sent)], reverse=True)[:3]

    def error(self, code: object, text: str) -> None:
        self.errors[str(code)] = self.errors.get(str(code), 0) + 1
        if len(self.samples) < 10:
            self.samples.append(text[:500])


def percentiles(values: list[float]) -> dict[str, float]:
    """count, median, p95, p99, max (seconds); only the count without values."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"count": len(ordered), "median": statistics.median(ordered),
            "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}  # fmt: skip


class Run:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        size = int(spec["group_size"])
        self.main_groups = groups_of(0, int(spec["groups"]), size)
        self.contender_group = Group.make(1, 0, size)
        self.groups = [*self.main_groups, self.contender_group]
        self.deadline = 0.0
        self.caps = Tally()
        self.violations: list[dict] = []
        self.violation_count = 0
        self.violation_kinds: dict[str, int] = {}  # problem, names left out → answers
        self.per_client: list[int] = []
        self.writers = {"main": Tally(), "contender": Tally()}
        self.state = {"main": None, "contender": False}  # what succeeded last
        self.started = 0.0

    async def run(self) -> dict:
        spec = self.spec
        tls = client_tls(Path(spec["pki"]))
        host, port = spec["host"], int(spec["port"])
        shared = spec.get("shared_reply_to")
        names = [f"poller{i}" for i in range(int(spec["clients"]))] + ["main", "contender"]
        clients = [Client(n, shared or f"jms.topic.vdsm_responses.{n}") for n in names]
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        refused: list[str] = []

        async def connect(client: Client) -> Client | None:
            async with gate:
                try:
                    await client.connect(host, port, tls)
                    return client
                except (OSError, ssl.SSLError, StompError, TimeoutError) as error:
                    refused.append(f"{client.name}: {type(error).__name__}: {error}"[:300])
                    await client.close()
                    return None

        t0 = time.perf_counter()
        connected = [c for c in await asyncio.gather(*map(connect, clients)) if c is not None]
        connect_seconds = time.perf_counter() - t0
        summary: dict[str, Any] = {"clients": len(clients), "connected": len(connected),
                                   "refused": refused[:5], "refused_count": len(refused),
                                   "connect_seconds": connect_seconds}  # fmt: skip
        by_name = {c.name: c for c in connected}
        if spec.get("connect_only") or refused:
            failed = await self._ping_all(connected)
            summary.update(pinged=len(connected) - len(failed), ping_failures=failed)
            await asyncio.gather(*(c.close() for c in connected))
            return summary if spec.get("connect_only") else {**summary, "aborted": "refused"}
        pollers = [c for c in connected if c.name.startswith("poller")]
        self.per_client = [0] * len(pollers)
        self.started = time.perf_counter()
        self.deadline = self.started + float(spec["seconds"])
        await asyncio.gather(
            *(self._poll(i, c) for i, c in enumerate(pollers)),
            self._main_writer(by_name["main"]),
            self._contender(by_name["contender"]),
        )
        elapsed = time.perf_counter() - self.started
        final, _, _ = await by_name["main"].call("Host.getCapabilities", {})
        await asyncio.gather(*(c.close() for c in connected))
        return {**summary, **self._report(elapsed, final)}

    @staticmethod
    async def _ping_all(clients: list[Client]) -> list[str]:
        """Host.ping2 on each of ``clients``: why each one that failed did."""

        async def ping(client: Client) -> str | None:
            try:
                answer, _, _ = await client.call("Host.ping2", {})
            except (StompError, TimeoutError) as error:
                return f"{client.name}: {type(error).__name__}: {error}"[:300]
            return None if answer.get("result") is True else json.dumps(answer)[:300]

        return [why for why in await asyncio.gather(*map(ping, clients)) if why]

    def _report(self, elapsed: float, final: dict) -> dict:
        def tally(t: Tally) -> dict:
            return {"ok": percentiles(t.seconds), "refused": percentiles(t.refused_seconds),
                    "errors": t.errors, "samples": t.samples, "slowest": t.slowest}  # fmt: skip

        result = final.get("result", {})
        return {
            "elapsed": elapsed,
            "caps": tally(self.caps),
            "per_client": {"min": min(self.per_client), "max": max(self.per_client)},
            "violations": self.violations,
            "violation_count": self.violation_count,
            "violation_kinds": self.violation_kinds,
            "writers": {name: tally(t) for name, t in self.writers.items()},
            "state": self.state,
            "final_networks": sorted(result.get("networks", {})),
            "final_problems": caps_problems(result, self.groups) if result else ["no answer"],
        }

    async def _poll(self, index: int, client: Client) -> None:
        while time.perf_counter() < self.deadline:
            try:
                answer, seconds, arrived = await client.call("Host.getCapabilities", {})
            except (StompError, TimeoutError) as error:
                self.caps.error("transport", f"{client.name}: {type(error).__name__}: {error}")
                return
            if "error" in answer:
                self.caps.error(answer["error"].get("code"), json.dumps(answer["error"]))
                continue
            self.caps.done(seconds)
            self.per_client[index] += 1
            problems = caps_problems(answer["result"], self.groups)
            if problems:
                self.violation_count += 1
                for kind in {problem_kind(p) for p in problems}:
                    self.violation_kinds[kind] = self.violation_kinds.get(kind, 0) + 1
                if len(self.violations) < 20:
                    at = round(arrived - self.started, 3)
                    self.violations.append({"at": at, "client": client.name,
                                            "problems": problems[:5]})  # fmt: skip

    async def _setup(self, who: str, client: Client, networks: dict) -> bool:
        """One setupNetworks; True when applied, False when refused with 40."""
        params = {"networks": networks, "bondings": {}, "options": {"connectivityCheck": False}}
        tally = self.writers[who]
        try:
            answer, seconds, _ = await client.call("Host.setupNetworks", params)
        except (StompError, TimeoutError) as error:
            tally.error("transport", f"{type(error).__name__}: {error}")
            raise
        error = answer.get("error")
        if error is None and answer.get("result", {}).get("code") == 0:
            tally.done(seconds)
            return True
        if error is not None and error.get("code") == 40:
            tally.refused_seconds.append(seconds)
            return False
        tally.error(error.get("code") if error else "result", json.dumps(answer)[:500])
        raise StompError(f"{who}: setupNetworks failed: {answer}")

    async def _main_writer(self, client: Client) -> None:
        """Swap groups: add the next one and remove the current one, at once."""
        current: int | None = None
        step = 0
        while time.perf_counter() < self.deadline:
            nxt = step % len(self.main_groups)
            networks = dict(self.main_groups[nxt].networks)
            if current is not None:
                networks.update(dict.fromkeys(self.main_groups[current].networks, {"remove": True}))
            try:
                applied = await self._setup("main", client, networks)
            except StompError:
                return
            if applied:
                current, step = nxt, step + 1
                self.state["main"] = self.main_groups[nxt].name
            else:
                await asyncio.sleep(0.005)  # refused: changed nothing, ask again

    async def _contender(self, client: Client) -> None:
        """Toggle its own group at random moments, colliding with the main writer."""
        present = False
        group = self.contender_group.networks
        while time.perf_counter() < self.deadline:
            networks = dict.fromkeys(group, {"remove": True}) if present else dict(group)
            try:
                if await self._setup("contender", client, networks):
                    present = not present
                    self.state["contender"] = present
            except StompError:
                return
            await asyncio.sleep(random.uniform(0, 0.05))


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"] and len(argv) == 2:
        spec = json.loads(Path(argv[1]).read_text())
        summary = asyncio.run(Run(spec).run())
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    sys.stderr.write("usage: load_clients run SPEC.json\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
