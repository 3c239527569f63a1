"""JSON-RPC 2.0 dispatch: a request body in, a response object out.

The dispatcher knows nothing about transports or networks. It maps a method
name to a verb from a fixed table (``frontd.api``), binds the named (or
positional) params to the verb's signature and calls it. Errors:

* -32700 the body is not JSON (``NaN`` and ``Infinity`` included: strict
  JSON has neither), -32600 not a valid request (nor values nested deeper
  than ``MAX_DEPTH``, nor an empty batch or one of more than ``MAX_BATCH``
  requests), -32601 unknown method, -32602 params that do not fit the
  method's signature;
* a ``NetError`` raised by the verb: its agent code and message (21 bad
  parameters, …), cut to ``MAX_MESSAGE`` characters;
* anything else: code 100 and a generic message; the traceback goes to the
  log, never to the client.

Notifications (requests without ``id``) are ignored and never answered.

A batch (a JSON array of requests, JSON-RPC 2.0 §6) is answered as the
production agent answers it: a batch of one request gets that request's
response as a plain object (its own client sends every call as a batch of
one), a larger batch an array of the responses of its requests that have an
``id`` (none at all if it held only notifications), an empty batch one
-32600 error object. A batch is one request for every limit below and for
the transports' per-connection ones: its requests are answered one after the
other, in one worker.

``submit`` runs each request in a worker thread so that a long
``Host.setupNetworks`` never delays the ``Host.ping2`` that confirms
connectivity in the middle of it; beyond ``max_pending`` requests in
progress, new ones are answered at once with code 40 (resource unavailable).
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from shared.errors import ErrorCode, NetError
from shared.wire import dumps, to_json

log = logging.getLogger("netreload.frontd.jsonrpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_MESSAGE = "Internal error, see the agent's log"
MAX_WORKERS = 32
MAX_PENDING = 256  # requests accepted but not answered yet, all clients together
# Far beyond any real request (a hostQos is 4 levels inside params); deeper
# values would break repr() in error messages and orjson (254 levels) on the
# way to superd. json.loads itself gives up near the recursion limit.
MAX_DEPTH = 64
# Messages quote the offending value; a 500 kB one must not come back whole.
MAX_MESSAGE = 4096
# Requests in one batch. The production agent's client sends one; a batch is
# answered in one worker, and its answers (a capabilities report each) are
# held together until the last.
MAX_BATCH = 32

Verb = Callable[..., object]
Reply = Callable[[bytes], None]
Response = dict | list[dict]


class RawTail(bytes):
    """A result sent after its answer instead of in it (frontd's local socket
    only, for a client that asked for it): the answer's result is
    ``{"bytes": N}`` and the N bytes follow the answer's line as they are,
    neither escaped into a JSON string nor decoded from one."""


def error_response(request_id: object, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def encode(message: dict) -> bytes:
    """Compact JSON; a result already encoded (``RawJson``) is put in as is."""
    return dumps(message)


def _valid_id(value: object) -> bool:
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


class JsonRpcDispatcher:
    def __init__(
        self,
        methods: Mapping[str, Verb],
        max_workers: int = MAX_WORKERS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._methods = dict(methods)
        self._signatures = {name: inspect.signature(verb) for name, verb in self._methods.items()}
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="jsonrpc")
        self._max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def method_names(self) -> list[str]:
        return sorted(self._methods)

    def handle(self, body: bytes | str) -> Response | None:
        """The response to one request body (an array for a batch of more
        than one request), or None when nothing is to be answered."""
        try:
            request = json.loads(body, parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError):
            return error_response(None, PARSE_ERROR, "Parse error: the body is not JSON")
        except RecursionError:
            return error_response(None, INVALID_REQUEST, _TOO_DEEP)
        if type(request) is not list:
            return self._handle_one(request)
        problem = _batch_problem(request)
        if problem:
            return error_response(None, INVALID_REQUEST, problem)
        return batch_answer(request, [self._handle_one(item) for item in request])

    def _handle_one(self, request: object) -> dict | None:
        if _deeper_than(request, MAX_DEPTH):
            request_id = request.get("id") if isinstance(request, dict) else None
            request_id = request_id if _valid_id(request_id) else None
            return error_response(request_id, INVALID_REQUEST, _TOO_DEEP)
        if isinstance(request, list):
            return error_response(None, INVALID_REQUEST, "A batch cannot hold a batch")
        if not isinstance(request, dict):
            return error_response(None, INVALID_REQUEST, "A request must be a JSON object")
        has_id = "id" in request
        request_id = request.get("id")
        if not _valid_id(request_id):
            return error_response(None, INVALID_REQUEST, "Request id must be a string or number")
        problem = _request_problem(request)
        if problem:
            return error_response(request_id, INVALID_REQUEST, problem) if has_id else None
        if not has_id:
            log.debug("ignoring notification %.80s", request["method"])
            return None
        return self._call(request_id, request["method"], request.get("params", {}))

    def _call(self, request_id: object, method: str, params: object) -> dict:
        verb = self._methods.get(method)
        if verb is None:
            return error_response(request_id, METHOD_NOT_FOUND, f"Method not found: {method[:80]}")
        try:
            if isinstance(params, list):
                bound = self._signatures[method].bind(*params)
            else:
                bound = self._signatures[method].bind(**params)
        except TypeError as error:
            return error_response(request_id, INVALID_PARAMS, f"{method}: {error}")
        try:
            result = verb(*bound.args, **bound.kwargs)
        except NetError as error:
            log.info("%s failed: %s", method, error)
            return error_response(request_id, int(error.code), _bounded(error.message))
        except Exception:
            log.exception("%s failed with an unexpected error", method)
            return error_response(request_id, int(ErrorCode.INTERNAL), INTERNAL_MESSAGE)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def handle_bytes(self, body: bytes | str) -> bytes | None:
        response = self.handle(body)
        if response is None:
            return None
        if isinstance(response, list):
            return b"[" + b",".join(_encode_response(item, tail=False) for item in response) + b"]"
        return _encode_response(response)

    def submit(self, body: bytes | str, reply: Reply) -> Future:
        """Handle ``body`` in a worker thread; ``reply`` gets the encoded response
        (never called for a notification). The future is done after ``reply``."""
        with self._lock:
            overloaded = self._pending >= self._max_pending
            if not overloaded:
                self._pending += 1
        if not overloaded:
            try:
                return self._executor.submit(self._run, body, reply)
            except RuntimeError:  # shut down
                with self._lock:
                    self._pending -= 1
        self._refuse(body, reply)
        done: Future = Future()
        done.set_result(None)
        return done

    def _refuse(self, body: bytes | str, reply: Reply) -> None:
        """Code 40 to each request of ``body`` that has an id to answer to."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return  # no id to answer to
        message = "Too many requests in progress, try again later"
        code = int(ErrorCode.RESOURCE_UNAVAILABLE)

        def refused(item: object) -> dict | None:
            if isinstance(item, dict) and "id" in item and _valid_id(item["id"]):
                return error_response(item["id"], code, message)
            return None

        if type(request) is not list:
            answer = refused(request)
        elif problem := _batch_problem(request):
            answer = error_response(None, INVALID_REQUEST, problem)
        else:
            answer = batch_answer(request, [refused(item) for item in request])
        if answer is not None:
            reply(encode(answer) if isinstance(answer, dict) else to_json(answer))

    def _run(self, body: bytes | str, reply: Reply) -> None:
        try:
            response = self.handle_bytes(body)
            if response is not None:
                reply(response)
        except Exception:
            log.exception("request handling failed")
        finally:
            with self._lock:
                self._pending -= 1

    def shutdown(self, wait: bool = False) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)


_TOO_DEEP = f"Invalid request: values nested deeper than {MAX_DEPTH} levels"


def batch_answer(batch: list, responses: list[dict | None]) -> Response | None:
    """What answers ``batch``, given each of its requests' response (None:
    a notification): a batch of one is answered as a single request, as
    the production agent does; a larger one with the array of its responses,
    or nothing when all its requests were notifications (JSON-RPC 2.0)."""
    if len(batch) == 1:
        return responses[0]
    answers = [response for response in responses if response is not None]
    return answers or None


def _batch_problem(batch: list) -> str | None:
    if not batch:
        return "Invalid request: the batch is empty"
    if len(batch) > MAX_BATCH:
        return f"Invalid request: a batch holds at most {MAX_BATCH} requests, not {len(batch)}"
    return None


def _encode_response(response: dict, tail: bool = True) -> bytes:
    """The response as its line; a :class:`RawTail` result follows the line
    (or, inside a batch, is put in as the string it holds)."""
    result = response.get("result")
    if type(result) is RawTail:
        if tail:
            head = encode({**response, "result": {"bytes": len(result)}})
            return head + b"\n" + result
        response = {**response, "result": result.decode()}
    try:
        return encode(response)
    except (TypeError, ValueError):
        log.exception("response to request %r is not JSON", response.get("id"))
        return encode(error_response(response.get("id"), int(ErrorCode.INTERNAL), INTERNAL_MESSAGE))


def _bounded(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _deeper_than(value: object, limit: int) -> bool:
    """Whether arrays/objects nest more than ``limit`` levels. Iterative (the
    walk must not run out of stack itself); json.loads makes only exact
    dicts and lists. ~20 ms on a 5000-network request."""
    stack = [(value, 1)] if type(value) is dict or type(value) is list else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        depth += 1
        for child in item.values() if type(item) is dict else item:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth))
    return False


def _request_problem(request: dict) -> str | None:
    if request.get("jsonrpc") != "2.0":
        return 'Invalid request: "jsonrpc" must be "2.0"'
    if not isinstance(request.get("method"), str):
        return 'Invalid request: "method" must be a string'
    if "params" in request and not isinstance(request["params"], dict | list):
        return 'Invalid request: "params" must be an object or an array'
    return None
