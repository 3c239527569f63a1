"""frontd's client of superd: ``shared.wire`` frames over superd's UNIX socket.

Connections are opened lazily and pooled; each carries one request at a time
(a connection is checked out for the whole exchange), so a long
``apply_plan`` on one connection never delays a ``confirm_connectivity`` on
another. When superd restarted, the pooled connection is dead: the request is
sent again once on a fresh connection, unless superd may already have acted
on it (``apply_plan`` whose answer was lost is never sent twice).
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import threading
from pathlib import Path

from shared.errors import ErrorCode, NetError
from shared.wire import VERBS, encode_frame, recv_frame

log = logging.getLogger("netreload.frontd.superd")

DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 5.0
MAX_CONNECTIONS = 8
# Verbs that change the host and must not be sent twice blindly.
NOT_REPEATABLE = frozenset({"apply_plan"})


class _Lost(Exception):
    """The connection broke; ``sent`` says whether superd may have the request."""

    def __init__(self, sent: bool, reason: str) -> None:
        super().__init__(reason)
        self.sent = sent


class _Connection:
    def __init__(self, path: Path, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise

    def looks_alive(self) -> bool:
        """An idle connection has nothing to read; readable means EOF or junk."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def exchange(self, request: dict, timeout: float) -> dict:
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(encode_frame(request))
        except (BrokenPipeError, ConnectionResetError) as error:
            raise _Lost(False, str(error)) from None
        try:
            answer = recv_frame(self.sock)
        except TimeoutError:
            raise
        except (OSError, NetError) as error:
            raise _Lost(True, str(error)) from None
        if answer is None:
            raise _Lost(True, "superd closed the connection")
        return answer

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SuperdClient:
    """Thread-safe; ``call`` blocks the calling thread for one verb."""

    def __init__(
        self,
        path: Path | str,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._ids = itertools.count(1)
        self._closed = False

    def call(self, verb: str, args: dict | None = None, timeout: float | None = None) -> object:
        """superd's ``result`` for ``verb``; its error frame raised as NetError."""
        if verb not in VERBS:
            raise NetError(ErrorCode.INTERNAL, f"superd has no verb {verb!r}")
        timeout = self.timeout if timeout is None else timeout
        if not self._slots.acquire(timeout=timeout):
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "too many requests to superd in flight")
        try:
            return self._call(verb, args or {}, timeout)
        finally:
            self._slots.release()

    def _call(self, verb: str, args: dict, timeout: float) -> object:
        connection, reused = self._checkout()
        for attempt in (1, 2):
            request = {"id": next(self._ids), "verb": verb, "args": args}
            try:
                answer = connection.exchange(request, timeout)
            except TimeoutError:
                connection.close()  # its answer may still come: never reuse it
                raise NetError(
                    ErrorCode.INTERNAL, f"superd did not answer {verb} within {timeout:g} s"
                ) from None
            except _Lost as lost:
                connection.close()
                repeatable = not lost.sent or verb not in NOT_REPEATABLE
                if attempt == 1 and reused and repeatable:
                    log.info("superd connection lost (%s), reconnecting", lost)
                    connection, reused = self._connect(), False
                    continue
                if lost.sent and verb in NOT_REPEATABLE:
                    raise NetError(
                        ErrorCode.INTERNAL,
                        f"superd went away during {verb}; the host is in the old or the new "
                        "state, read the capabilities to know which",
                    ) from None
                raise NetError(ErrorCode.INTERNAL, f"superd is not available ({lost})") from None
            except BaseException:
                connection.close()
                raise
            result = self._result(answer, request["id"], verb, connection)
            return result
        raise AssertionError("unreachable")

    def _result(self, answer: dict, request_id: int, verb: str, connection: _Connection) -> object:
        if answer.get("id") != request_id or not isinstance(answer.get("ok"), bool):
            connection.close()
            raise NetError(ErrorCode.INTERNAL, f"superd sent a malformed answer to {verb}")
        self._checkin(connection)
        if answer["ok"]:
            return answer.get("result")
        raise _error_from(answer.get("error"), verb)

    def _checkout(self) -> tuple[_Connection, bool]:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if connection.looks_alive():
                    return connection, True
                connection.close()
        return self._connect(), False

    def _checkin(self, connection: _Connection) -> None:
        with self._lock:
            if self._closed:
                connection.close()
            else:
                self._idle.append(connection)

    def _connect(self) -> _Connection:
        try:
            return _Connection(self.path, CONNECT_TIMEOUT)
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise NetError(ErrorCode.INTERNAL, f"superd is not available ({reason})") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _error_from(error: object, verb: str) -> NetError:
    if not isinstance(error, dict):
        return NetError(ErrorCode.INTERNAL, f"superd failed {verb} without a reason")
    code, message = error.get("code"), error.get("message")
    if not isinstance(message, str):
        message = f"superd failed {verb}"
    try:
        return NetError(ErrorCode(code), message)
    except (ValueError, TypeError):
        return NetError(ErrorCode.INTERNAL, message)
