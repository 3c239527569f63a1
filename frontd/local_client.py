"""Clients the CLI uses: JSON-RPC over frontd's UNIX socket, and superd's
own socket for boot-time restore when frontd is not up yet."""

from __future__ import annotations

import itertools
import json
import os
import socket

from shared.errors import ErrorCode, NetError

MAX_LINE = 64 * 1024 * 1024
_ids = itertools.count(1)


class SuperdGone(NetError):
    """superd was not there, or died before it answered (the verb may or may
    not have run): worth asking again once it is back."""


def call_frontd(
    path: str | os.PathLike,
    method: str,
    params: dict | None = None,
    timeout: float = 3700,
    text: bool = False,
) -> object:
    """One JSON-RPC call over frontd's newline-delimited UNIX socket.

    ``text``: the result is a string (``Host.getNetworkCapabilitiesText``),
    decoded by the standard library's decoder (orjson's import, ~10 ms of
    the CLI's start, costs more than it saves on one string); other answers,
    a whole host's report among them, by orjson, many times faster on
    objects."""
    request_id = next(_ids)
    request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reader = sock.makefile("rb")
            line = reader.readline(MAX_LINE)
    except OSError as error:
        raise NetError(
            ErrorCode.INTERNAL, f"cannot talk to frontd at {path}: {error.strerror or error}"
        ) from None
    if not line:
        raise NetError(ErrorCode.INTERNAL, "frontd closed the connection without an answer")
    if text:
        loads = json.loads
    else:
        import orjson

        loads = orjson.loads
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
