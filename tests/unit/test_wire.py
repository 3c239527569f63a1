"""The frontd ↔ superd framing and verb table."""

from __future__ import annotations

import json
import socket
import struct

import pytest

from shared.errors import ErrorCode, NetError
from shared.wire import MAX_FRAME, check_request, encode_frame, recv_frame


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def test_frame_round_trip() -> None:
    left, right = pair()
    left.sendall(encode_frame({"id": 1, "verb": "ping", "args": {}}))
    assert recv_frame(right) == {"id": 1, "verb": "ping", "args": {}}


def test_clean_close_between_frames_is_none() -> None:
    left, right = pair()
    left.close()
    assert recv_frame(right) is None


def test_oversized_length_header_is_refused_before_reading() -> None:
    left, right = pair()
    left.sendall(struct.pack(">I", MAX_FRAME + 1))
    with pytest.raises(NetError) as info:
        recv_frame(right)
    assert info.value.code == ErrorCode.BAD_PARAMS


def test_truncated_frame_is_an_error() -> None:
    left, right = pair()
    left.sendall(struct.pack(">I", 10) + b"{}")
    left.close()
    with pytest.raises(NetError):
        recv_frame(right)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_non_object_body_is_an_error(body: bytes) -> None:
    left, right = pair()
    left.sendall(struct.pack(">I", len(body)) + body)
    with pytest.raises(NetError):
        recv_frame(right)


@pytest.mark.parametrize(
    "message",
    [
        {"id": 1, "verb": "exec", "args": {}},
        {"id": 1, "verb": "__class__", "args": {}},
        {"id": "1", "verb": "ping"},
        {"id": True, "verb": "ping"},
        {"id": 1, "verb": "ping", "args": {"x": 1}},
        {"id": 1, "verb": "apply_plan", "args": []},
    ],
)
def test_request_outside_the_verb_table_is_refused(message: dict) -> None:
    with pytest.raises(NetError) as info:
        check_request(message)
    assert info.value.code == ErrorCode.BAD_PARAMS


def test_known_verb_is_accepted() -> None:
    assert check_request({"id": 7, "verb": "apply_plan", "args": {"plan": {}}}) == (
        7,
        "apply_plan",
        {"plan": {}},
    )


def test_raw_json_values_are_put_in_as_they_are() -> None:
    from shared.wire import RawJson, dumps

    message = {"jsonrpc": "2.0", "id": 7, "result": RawJson(b'{"a":[1,2]}')}
    assert json.loads(dumps(message)) == {"jsonrpc": "2.0", "id": 7, "result": {"a": [1, 2]}}
    assert json.loads(dumps({"only": RawJson(b"[]")})) == {"only": []}


def test_a_frame_carries_a_raw_report_inside_its_result() -> None:
    from shared.wire import RawJson

    result = {"token": "t", "caps": RawJson(b'{"x":1}')}
    frame = encode_frame({"id": 3, "ok": True, "result": result})
    assert json.loads(frame[4:]) == {"id": 3, "ok": True, "result": {**result, "caps": {"x": 1}}}
