"""The JSON-RPC 2.0 dispatcher, with toy verbs (no transport, no network)."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from frontd.jsonrpc import MAX_BATCH, JsonRpcDispatcher
from shared.errors import ErrorCode, NetError


class Verbs:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.release = threading.Event()

    def echo(self, text: str, times: int = 1) -> str:
        self.calls.append(("echo", text, times))
        return text * times

    def refuse(self) -> None:
        raise NetError(ErrorCode.BAD_VLAN, "network x: vlan: 5000 is out of range 0..4094")

    def crash(self) -> None:
        raise KeyError("secret internal detail")

    def unserializable(self) -> object:
        return {1, 2}

    def block(self) -> bool:
        return self.release.wait(10)


@pytest.fixture
def verbs() -> Verbs:
    return Verbs()


@pytest.fixture
def rpc(verbs: Verbs):
    dispatcher = JsonRpcDispatcher(
        {
            "Test.echo": verbs.echo,
            "Test.refuse": verbs.refuse,
            "Test.crash": verbs.crash,
            "Test.unserializable": verbs.unserializable,
            "Test.block": verbs.block,
        }
    )
    yield dispatcher
    verbs.release.set()
    dispatcher.shutdown(wait=True)


def request(method: str, params: object = None, request_id: object = "1") -> str:
    message: dict = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def test_named_params_reach_the_verb(rpc: JsonRpcDispatcher) -> None:
    answer = rpc.handle(request("Test.echo", {"text": "ab", "times": 2}, "id-7"))
    assert answer == {"jsonrpc": "2.0", "id": "id-7", "result": "abab"}


def test_positional_params_reach_the_verb(rpc: JsonRpcDispatcher) -> None:
    assert rpc.handle(request("Test.echo", ["x", 3], 4))["result"] == "xxx"


def test_body_that_is_not_json_is_a_parse_error(rpc: JsonRpcDispatcher) -> None:
    answer = rpc.handle(b'{"jsonrpc": "2.0", "method": ')
    assert answer["error"]["code"] == -32700
    assert answer["id"] is None


def test_invalid_utf8_is_a_parse_error(rpc: JsonRpcDispatcher) -> None:
    assert rpc.handle(b"\xff\xfe{}")["error"]["code"] == -32700


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        '"Test.echo"',
        json.dumps({"method": "Test.echo", "id": 1}),
        json.dumps({"jsonrpc": "1.0", "method": "Test.echo", "id": 1}),
        json.dumps({"jsonrpc": "2.0", "method": 7, "id": 1}),
        json.dumps({"jsonrpc": "2.0", "method": "Test.echo", "params": "ab", "id": 1}),
        json.dumps({"jsonrpc": "2.0", "method": "Test.echo", "id": {"a": 1}}),
        json.dumps({"jsonrpc": "2.0", "method": "Test.echo", "id": True}),
    ],
)
def test_malformed_request_is_invalid_request(rpc: JsonRpcDispatcher, verbs: Verbs, body) -> None:
    answer = rpc.handle(body)
    assert answer["error"]["code"] == -32600
    assert verbs.calls == []


def test_invalid_request_keeps_a_valid_id(rpc: JsonRpcDispatcher) -> None:
    answer = rpc.handle(json.dumps({"jsonrpc": "1.0", "method": "Test.echo", "id": "abc"}))
    assert answer["id"] == "abc"


def test_unknown_method(rpc: JsonRpcDispatcher) -> None:
    answer = rpc.handle(request("Host.rebootNow"))
    assert answer["error"]["code"] == -32601
    assert "Host.rebootNow" in answer["error"]["message"]


@pytest.mark.parametrize("params", [{}, {"text": "a", "colour": "red"}, ["a", 1, 2], {"times": 2}])
def test_params_that_do_not_fit_are_invalid_params(
    rpc: JsonRpcDispatcher, verbs: Verbs, params
) -> None:
    answer = rpc.handle(request("Test.echo", params))
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"].startswith("Test.echo:")
    assert verbs.calls == []


def test_net_error_becomes_agent_code_and_message(rpc: JsonRpcDispatcher) -> None:
    answer = rpc.handle(request("Test.refuse"))
    assert answer["error"] == {
        "code": 26,
        "message": "network x: vlan: 5000 is out of range 0..4094",
    }


def test_unexpected_error_is_code_100_without_details(
    rpc: JsonRpcDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "netreload.frontd.jsonrpc"):
        answer = rpc.handle(request("Test.crash"))
    assert answer["error"]["code"] == 100
    assert "secret" not in answer["error"]["message"]
    assert "Traceback" not in answer["error"]["message"]
    assert any("Test.crash" in r.getMessage() and r.exc_info for r in caplog.records)


def test_unserializable_result_is_an_internal_error(rpc: JsonRpcDispatcher) -> None:
    answer = json.loads(rpc.handle_bytes(request("Test.unserializable", request_id=9)))
    assert answer["id"] == 9
    assert answer["error"]["code"] == 100


def test_notification_is_ignored(rpc: JsonRpcDispatcher, verbs: Verbs) -> None:
    body = json.dumps({"jsonrpc": "2.0", "method": "Test.echo", "params": {"text": "a"}})
    assert rpc.handle(body) is None
    assert rpc.handle_bytes(body) is None
    assert verbs.calls == []


def test_null_id_is_answered(rpc: JsonRpcDispatcher) -> None:
    answer = rpc.handle(request("Test.echo", {"text": "a"}, None))
    assert answer == {"jsonrpc": "2.0", "id": None, "result": "a"}


def test_a_blocked_request_does_not_delay_the_next_one(
    rpc: JsonRpcDispatcher, verbs: Verbs
) -> None:
    answers: list[dict] = []
    answered = threading.Event()

    def reply(data: bytes) -> None:
        answers.append(json.loads(data))
        answered.set()

    slow = rpc.submit(request("Test.block", request_id="slow").encode(), reply)
    rpc.submit(request("Test.echo", {"text": "quick"}, "fast").encode(), reply)
    assert answered.wait(5)
    assert [a["id"] for a in answers] == ["fast"]
    verbs.release.set()
    slow.result(timeout=5)
    assert [a["id"] for a in answers] == ["fast", "slow"]
    assert answers[1]["result"] is True


def test_submit_never_replies_to_a_notification(rpc: JsonRpcDispatcher) -> None:
    replies: list[bytes] = []
    body = json.dumps({"jsonrpc": "2.0", "method": "Test.echo", "params": {"text": "a"}})
    rpc.submit(body.encode(), replies.append).result(timeout=5)
    assert replies == []


def test_requests_beyond_the_pending_limit_are_refused_at_once(verbs: Verbs) -> None:
    rpc = JsonRpcDispatcher({"Test.block": verbs.block, "Test.echo": verbs.echo}, max_pending=1)
    replies: list[dict] = []
    try:
        slow = rpc.submit(request("Test.block", request_id="slow").encode(), lambda d: None)
        rpc.submit(
            request("Test.echo", {"text": "a"}, "late").encode(),
            lambda d: replies.append(json.loads(d)),
        )
        assert replies == [
            {
                "jsonrpc": "2.0",
                "id": "late",
                "error": {"code": 40, "message": "Too many requests in progress, try again later"},
            }
        ]
        assert verbs.calls == []
        verbs.release.set()
        slow.result(timeout=5)
        echo = rpc.submit(request("Test.echo", {"text": "a"}, "again").encode(), lambda d: None)
        echo.result(timeout=5)
        assert verbs.calls == [("echo", "a", 1)]
    finally:
        verbs.release.set()
        rpc.shutdown(wait=True)


# -- batches ------------------------------------------------------------------------


def batch(*requests: str) -> str:
    """A batch framed as the production agent's client frames it."""
    return "[" + ", ".join(requests) + "]"


def notification(method: str, params: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params})


def test_a_batch_of_one_is_answered_with_a_plain_response(rpc: JsonRpcDispatcher) -> None:
    body = batch(request("Test.echo", {"text": "ab"}, "3d1c"))
    assert rpc.handle(body) == {"jsonrpc": "2.0", "id": "3d1c", "result": "ab"}
    assert json.loads(rpc.handle_bytes(body)) == {"jsonrpc": "2.0", "id": "3d1c", "result": "ab"}


def test_a_batch_of_one_error_is_answered_with_a_plain_error(rpc: JsonRpcDispatcher) -> None:
    answer = rpc.handle(batch(request("Test.refuse", request_id=5)))
    assert answer["id"] == 5 and answer["error"]["code"] == 26


def test_a_larger_batch_is_answered_with_an_array_in_order(rpc: JsonRpcDispatcher) -> None:
    body = batch(
        request("Test.echo", {"text": "a"}, 1),
        request("Test.refuse", request_id=2),
        request("Host.rebootNow", request_id=3),
    )
    answer = json.loads(rpc.handle_bytes(body))
    assert [item["id"] for item in answer] == [1, 2, 3]
    assert answer[0]["result"] == "a"
    assert [item["error"]["code"] for item in answer[1:]] == [26, -32601]


def test_notifications_in_a_batch_are_run_and_not_answered(
    rpc: JsonRpcDispatcher, verbs: Verbs
) -> None:
    body = batch(notification("Test.echo", {"text": "n"}), request("Test.echo", {"text": "r"}, 7))
    assert rpc.handle(body) == [{"jsonrpc": "2.0", "id": 7, "result": "r"}]


@pytest.mark.parametrize("count", [1, 2])
def test_a_batch_of_notifications_only_gets_no_answer(rpc: JsonRpcDispatcher, count: int) -> None:
    body = batch(*[notification("Test.echo", {"text": "n"})] * count)
    assert rpc.handle(body) is None
    assert rpc.handle_bytes(body) is None


def test_an_empty_batch_is_one_invalid_request(rpc: JsonRpcDispatcher) -> None:
    answer = json.loads(rpc.handle_bytes("[]"))
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600 and "empty" in answer["error"]["message"]


def test_a_batch_over_the_limit_is_refused_whole(rpc: JsonRpcDispatcher, verbs: Verbs) -> None:
    body = batch(*[request("Test.echo", {"text": "a"}, i) for i in range(MAX_BATCH + 1)])
    answer = rpc.handle(body)
    assert answer["id"] is None and answer["error"]["code"] == -32600
    assert f"at most {MAX_BATCH} requests" in answer["error"]["message"]
    assert verbs.calls == []


def test_a_batch_at_the_limit_is_answered(rpc: JsonRpcDispatcher) -> None:
    body = batch(*[request("Test.echo", {"text": "a"}, i) for i in range(MAX_BATCH)])
    assert [item["id"] for item in rpc.handle(body)] == list(range(MAX_BATCH))


@pytest.mark.parametrize(
    "bad", ["1", "[]", '{"jsonrpc": "2.0", "id": 9}', "[" + request("T") + "]"]
)
def test_an_invalid_request_in_a_batch_gets_its_own_error(rpc: JsonRpcDispatcher, bad: str) -> None:
    answer = rpc.handle(batch(bad, request("Test.echo", {"text": "ok"}, "good")))
    assert answer[0]["error"]["code"] == -32600
    assert answer[1] == {"jsonrpc": "2.0", "id": "good", "result": "ok"}


def test_an_unserializable_result_in_a_batch_is_an_internal_error(
    rpc: JsonRpcDispatcher,
) -> None:
    body = batch(request("Test.unserializable", request_id=1), request("Test.echo", ["b"], 2))
    answer = json.loads(rpc.handle_bytes(body))
    assert answer[0]["error"]["code"] == 100
    assert answer[1]["result"] == "b"


def test_a_batch_holds_one_place_in_the_pending_limit(verbs: Verbs) -> None:
    rpc = JsonRpcDispatcher({"Test.block": verbs.block, "Test.echo": verbs.echo}, max_pending=1)
    replies: list[object] = []
    try:
        body = batch(request("Test.block", request_id="slow"), request("Test.echo", ["a"], "b"))
        slow = rpc.submit(body.encode(), lambda d: replies.append(json.loads(d)))
        late = batch(request("Test.echo", ["x"], "l1"), request("Test.echo", ["y"], "l2"))
        rpc.submit(late.encode(), lambda d: replies.append(json.loads(d)))
        busy = {"code": 40, "message": "Too many requests in progress, try again later"}
        assert replies == [
            [
                {"jsonrpc": "2.0", "id": "l1", "error": busy},
                {"jsonrpc": "2.0", "id": "l2", "error": busy},
            ]
        ]
        assert verbs.calls == []  # the batch's echo waits for its block: one worker
        verbs.release.set()
        slow.result(timeout=5)
        assert [item["id"] for item in replies[1]] == ["slow", "b"]
        assert verbs.calls == [("echo", "a", 1)]
    finally:
        verbs.release.set()
        rpc.shutdown(wait=True)
