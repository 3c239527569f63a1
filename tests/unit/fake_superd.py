"""A fake superd for frontd's tests: ``shared.wire`` over a UNIX socket.

It answers ``netinfo`` with canned data, records every request, and plays
the connectivity check of ``apply_plan``: when the plan asks for it, the
answer waits (up to ``connectivityTimeout``) for a ``confirm_connectivity``
arriving on another connection, and fails with code 10 without one. Nothing
here touches the host.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from importlib import resources
from pathlib import Path

from shared.errors import ErrorCode, NetError
from shared.wire import check_request, encode_frame, recv_frame


def sample_caps() -> dict:
    return json.loads(resources.files("shared").joinpath("data/sample_host.json").read_text())


class FakeSuperd:
    def __init__(self, path: Path, caps: dict | None = None, running: dict | None = None) -> None:
        self.path = Path(path)
        self.caps = caps if caps is not None else sample_caps()
        self.running = running if running is not None else {"networks": {}, "bonds": {}}
        self.calls: list[tuple[str, dict]] = []
        self.connections_accepted = 0
        # verb → NetError to answer instead of the canned result
        self.fail: dict[str, NetError] = {}
        # verbs whose next request is recorded but answered by hanging up
        self.hang_up_once: set[str] = set()
        self.delay: dict[str, float] = {}  # verb → seconds before answering
        self.wait_for_confirmation = True
        self._confirmed = threading.Event()
        self._lock = threading.Lock()
        self._clients: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(16)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._stopped = False

    def __enter__(self) -> FakeSuperd:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def verbs(self) -> list[str]:
        with self._lock:
            return [verb for verb, _ in self.calls]

    def plans(self) -> list[dict]:
        with self._lock:
            return [args["plan"] for verb, args in self.calls if verb == "apply_plan"]

    def drop_connections(self) -> None:
        """What a superd restart looks like from frontd: every connection ends."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()

    def stop(self) -> None:
        self._stopped = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self.drop_connections()
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._clients.append(client)
                self.connections_accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            while True:
                message = recv_frame(client)
                if message is None:
                    return
                answer = self._answer(message)
                verb = message.get("verb")
                with self._lock:
                    hang_up = verb in self.hang_up_once
                    self.hang_up_once.discard(verb)
                if hang_up:
                    return
                time.sleep(self.delay.get(str(verb), 0))
                client.sendall(encode_frame(answer))
        except (OSError, NetError):
            return
        finally:
            client.close()

    def _answer(self, message: dict) -> dict:
        request_id = message.get("id")
        try:
            request_id, verb, args = check_request(message)
            with self._lock:
                self.calls.append((verb, args))
            if verb in self.fail:
                raise self.fail[verb]
            return {"id": request_id, "ok": True, "result": self._result(verb, args)}
        except NetError as error:
            return {"id": request_id, "ok": False, "error": error.to_dict()}

    def _result(self, verb: str, args: dict) -> object:
        if verb == "netinfo":
            return {"caps": self.caps, "running": self.running}
        if verb == "confirm_connectivity":
            self._confirmed.set()
            return None
        if verb == "apply_plan":
            options = args["plan"].get("options", {})
            if self.wait_for_confirmation and options.get("connectivityCheck"):
                self._confirmed.clear()
                if not self._confirmed.wait(float(options.get("connectivityTimeout", 4))):
                    raise NetError(ErrorCode.LOST_CONNECTION, "connectivity check failed")
            return None
        return None
