"""The frontd ↔ superd protocol: length-framed JSON over a UNIX socket.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON (an object). Requests are ``{"id": int, "verb": str, "args": {...}}``;
answers ``{"id": int, "ok": true, "result": ...}`` or ``{"id": int, "ok":
false, "error": {"code": int, "message": str}}``. Verbs come from the fixed
table below; superd never resolves a name from the wire to code any other
way.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

import orjson

from shared.errors import ErrorCode, NetError

MAX_FRAME = 32 * 1024 * 1024  # a 5000-network plan is far below this
_HEADER = struct.Struct(">I")

# verb → the argument keys it takes (superd validates values again).
VERBS: dict[str, frozenset[str]] = {
    "ping": frozenset(),
    # → {"token", "caps", "running", "owned"}; {"token", "unchanged": true} when
    # "known" names the report the caller already holds; with "delta": true,
    # {"token", "base", "delta"} when "known" names superd's last answer
    # (shared.netinfo_delta)
    "netinfo": frozenset({"known", "delta"}),
    "apply_plan": frozenset({"plan"}),  # plan dict; connectivity check inside
    "confirm_connectivity": frozenset(),  # the engine was heard from
    "set_safe_config": frozenset(),
    # → {"code", "message", "operations", "networks", "bonds", "skipped"}; see
    # restore_skipped
    "restore_nets": frozenset(),
    "events": frozenset({"after", "epoch", "timeout"}),  # long poll → {"events": [...], ...}
    "network_stats": frozenset(),  # → superd.netstats' report
}


class RawJson(bytes):
    """A value already encoded as JSON (a large report encoded once for many
    answers): :func:`dumps` puts it in place as it is."""


def to_json(value: object) -> bytes:
    """Compact UTF-8 JSON (orjson: several times faster than json.dumps on
    a thousand-network report). TypeError for what JSON cannot hold."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def to_json_text(value: object) -> str:
    """JSON for people (``netreload --json``): indented by two, keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def dumps(message: dict) -> bytes:
    """Compact JSON of ``message``, whose values may be :class:`RawJson` at
    the top level."""
    raw = {key: value for key, value in message.items() if isinstance(value, RawJson)}
    if not raw:
        return to_json(message)
    rest = {key: value for key, value in message.items() if key not in raw}
    parts = [to_json(rest)[:-1]]
    for key, value in raw.items():
        comma = b"," if len(parts) > 1 or rest else b""
        parts.append(comma + to_json(key) + b":" + value)
    return b"".join(parts) + b"}"


def encode_frame(message: dict) -> bytes:
    result = message.get("result")
    if isinstance(result, dict) and any(isinstance(v, RawJson) for v in result.values()):
        message = {**message, "result": RawJson(dumps(result))}  # a report inside
    body = dumps(message)
    if len(body) > MAX_FRAME:
        raise NetError(ErrorCode.BAD_PARAMS, f"message of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = sock.recv(min(missing, 1 << 20))
        if not chunk:
            if missing == size:
                return None  # clean end of stream between frames
            raise NetError(ErrorCode.BAD_PARAMS, "truncated frame")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def recv_frame(
    sock: socket.socket, max_size: int = MAX_FRAME, window: bool = False
) -> dict | None:
    """The next message, or None when the peer closed between frames.
    ``window``: a big frame is decoded in superd's malloc window
    (``shared.allocator``), so a big request's own strings pin no pymalloc
    arena once it is answered and freed."""
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > max_size:
        raise NetError(ErrorCode.BAD_PARAMS, f"frame of {size} bytes exceeds {max_size}")
    body = _recv_exact(sock, size) if size else b""
    if body is None:
        raise NetError(ErrorCode.BAD_PARAMS, "truncated frame")
    try:
        if window:
            from shared.allocator import BIG_FRAME, malloc_window  # superd only: ctypes

            with malloc_window(size >= BIG_FRAME):
                message = orjson.loads(body)
        else:
            message = orjson.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise NetError(ErrorCode.BAD_PARAMS, "frame is not JSON") from None
    if not isinstance(message, dict):
        raise NetError(ErrorCode.BAD_PARAMS, "frame is not a JSON object")
    return message


def check_request(message: dict) -> tuple[int, str, dict]:
    """Validate a request's shape against the verb table."""
    request_id, verb, args = message.get("id"), message.get("verb"), message.get("args", {})
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise NetError(ErrorCode.BAD_PARAMS, "request id must be an integer")
    if not isinstance(verb, str) or verb not in VERBS:
        raise NetError(ErrorCode.BAD_PARAMS, f"unknown verb {str(verb)[:40]!r}")
    if not isinstance(args, dict) or set(args) - VERBS[verb]:
        raise NetError(ErrorCode.BAD_PARAMS, f"verb {verb}: unexpected arguments")
    return request_id, verb, args


def restore_skipped(result: object) -> NetError | None:
    """The failure to report for a ``restore_nets`` answer that left out
    networks or bonds another agent's devices took the names of (the rest
    was restored), or None."""
    skipped = result.get("skipped") if isinstance(result, dict) else None
    if not isinstance(skipped, dict):
        return None
    return left_out_error({name: _wire_error(entry) for name, entry in skipped.items()})


def left_out_error(skipped: Mapping[str, NetError]) -> NetError | None:
    """One failure naming every entry a restore left out, with the first
    one's code; None when it left out nothing."""
    if not skipped:
        return None
    names = sorted(skipped)
    details = "; ".join(f"{name}: {skipped[name].message}" for name in names)
    return NetError(skipped[names[0]].code, f"restored all but {', '.join(names)}: {details}")


def _wire_error(entry: object) -> NetError:
    """An error as superd sent it (an unknown code is an internal error)."""
    if not isinstance(entry, dict):
        return NetError(ErrorCode.INTERNAL, str(entry))
    code = entry.get("code")
    known = isinstance(code, int) and code in {int(member) for member in ErrorCode}
    return NetError(code if known else ErrorCode.INTERNAL, str(entry.get("message")))
