"""Clients the CLI uses: JSON-RPC over frontd's UNIX socket, and superd's
own socket for boot-time restore when frontd is not up yet."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable

from shared.errors import ErrorCode, NetError

MAX_LINE = 64 * 1024 * 1024
READ_BUFFER = 1024 * 1024
_ids = itertools.count(1)


class SuperdGone(NetError):
    """superd was not there, or died before it answered (the verb may or may
    not have run): worth asking again once it is back."""


def _exchange(
    path: str | os.PathLike,
    request: bytes,
    timeout: float,
    tail_size: Callable[[bytes], int | None] | None = None,
) -> tuple[bytes, bytes | None]:
    """Sends one request line on frontd's newline-delimited UNIX socket:
    the answer's line, and the ``tail_size(line)`` bytes that follow it
    (None where there is no ``tail_size`` or it says there is no tail)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(request)
            # a report's megabytes in few reads
            answer = sock.makefile("rb", buffering=READ_BUFFER)
            line = answer.readline(MAX_LINE)
            size = tail_size(line) if line and tail_size is not None else None
            tail = answer.read(size) if size is not None else None
    except OSError as error:
        raise NetError(
            ErrorCode.INTERNAL, f"cannot talk to frontd at {path}: {error.strerror or error}"
        ) from None
    if not line:
        raise NetError(ErrorCode.INTERNAL, "frontd closed the connection without an answer")
    return line, tail


def _result(line: bytes, loads: Callable[[bytes], object]) -> object:
    try:
        answer = loads(line)
    except ValueError as error:  # orjson.JSONDecodeError is one too
        raise NetError(ErrorCode.INTERNAL, f"frontd's answer is not JSON: {error}") from None
    if not isinstance(answer, dict):
        raise NetError(ErrorCode.INTERNAL, "frontd's answer is not an object")
    if "error" in answer:
        error = answer["error"]
        raise NetError(_code(error.get("code")), str(error.get("message", "")))
    return answer.get("result")


def call_frontd(
    path: str | os.PathLike, method: str, params: dict | None = None, timeout: float = 3700
) -> object:
    """One JSON-RPC call over frontd's UNIX socket; its result (orjson
    decodes it: a whole host's report, many times faster than json)."""
    import json  # not on ``--json caps``' path (call_frontd_raw)

    import orjson

    request = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params or {}}
    line, _ = _exchange(path, json.dumps(request).encode() + b"\n", timeout)
    return _result(line, orjson.loads)


def call_frontd_raw(path: str | os.PathLike, method: str, timeout: float = 3700) -> bytes:
    """A call with ``{"raw": true}`` whose result follows the answer's line
    (``Host.getNetworkCapabilitiesText``: :class:`frontd.jsonrpc.RawTail`):
    its bytes as frontd sent them. The request and the answer's line are
    read without a JSON module on the way (what ``netreload --json caps``
    imports is its start on a host of a thousand networks); an error, or
    an answer of another shape, is decoded whole."""
    if not method.replace(".", "").isalnum():
        raise ValueError(f"not a method name: {method!r}")
    request_id = next(_ids)
    request = b'{"jsonrpc":"2.0","id":%d,"method":"%s","params":{"raw":true}}\n' % (
        request_id, method.encode()
    )  # fmt: skip
    line, data = _exchange(path, request, timeout, lambda line: _tail_size(line, request_id))
    size = _tail_size(line, request_id)
    if size is None:
        import json

        result = _result(line, json.loads)  # an error raises its code
        raise NetError(ErrorCode.INTERNAL, f"frontd's {method} answer is not raw: {result!r:.80}")
    if data is None or len(data) != size:
        raise NetError(ErrorCode.INTERNAL, f"frontd closed the connection in its {method} answer")
    return data


def _tail_size(line: bytes, request_id: int) -> int | None:
    """N of an answer line ``{"jsonrpc":"2.0","id":ID,"result":{"bytes":N}}``
    (frontd's compact encoding), or None for any other line."""
    head = b'{"jsonrpc":"2.0","id":%d,"result":{"bytes":' % request_id
    if not (line.startswith(head) and line.endswith(b"}}\n")):
        return None
    digits = line[len(head) : -3]
    return int(digits) if digits.isdigit() and len(digits) <= 12 else None


def call_superd(
    path: str | os.PathLike, verb: str, args: dict | None = None, timeout: float = 3700
) -> object:
    """One verb on superd's socket (root only)."""
    from shared.wire import encode_frame, recv_frame

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(encode_frame({"id": 1, "verb": verb, "args": args or {}}))
            answer = recv_frame(sock)
    except OSError as error:
        raise SuperdGone(
            ErrorCode.INTERNAL, f"cannot talk to superd at {path}: {error.strerror or error}"
        ) from None
    if answer is None:
        raise SuperdGone(ErrorCode.INTERNAL, "superd closed the connection without an answer")
    if not answer.get("ok"):
        error = answer.get("error", {})
        raise NetError(_code(error.get("code")), str(error.get("message", "")))
    return answer.get("result")


def _code(value: object) -> ErrorCode:
    try:
        return ErrorCode(int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ErrorCode.INTERNAL
