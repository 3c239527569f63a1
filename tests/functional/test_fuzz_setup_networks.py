"""Property-based fuzzing of ``Host.setupNetworks`` through the real frontd.

One ``demo.lab.Lab`` per module: superd (root) and frontd
(``nobody``) in a throw-away host namespace with veth_0…veth_3, a network
``base0`` on veth_0 set up and persisted before the first example. Requests
go two ways into the same JSON-RPC dispatch: the engine's path (stomp.py in
the engine namespace, STOMP 1.2 over mutual TLS) and frontd's local UNIX
socket (newline-delimited JSON-RPC, which also takes raw bodies no JSON
encoder would write).

Properties, checked on every example:

* both daemons are still running and frontd still answers ``Host.ping2``;
* every answer is a JSON-RPC 2.0 answer; an error carries a specific code
  (an agent code or a JSON-RPC one, never 100, frontd's answer to an
  unexpected exception) and a message without traceback text, of at most
  ``MAX_MESSAGE`` characters whatever the size of the value it quotes;
* after a rejection the kernel (``ip -j -d link``, ``ip -j addr``, IPv4 and
  IPv6 routes of every table) and the running and persistent configuration
  folders (every file byte for byte, every symlink's target) are exactly as
  before, folders included — a rejection that superd rolled back included
  (code 10 or 29);
* a valid request is applied, and removing its networks again brings the
  kernel and both folders back to what they were.

``NETRELOAD_SOAK=1``: ten times the examples, random seeds. The default run
is derandomized (reproducible in CI) and takes about a minute.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from demo.engine import Engine
from demo.lab import Lab
from frontd.jsonrpc import INVALID_PARAMS, INVALID_REQUEST, MAX_MESSAGE, PARSE_ERROR
from shared.errors import ErrorCode
from tests.functional.fuzz_requests import (
    BASE_ATTRS,
    BASE_NET,
    LEAK_MARKERS,
    OPTIONS,
    garbage_requests,
    nearly_valid_requests,
    valid_requests,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
    # 300 kB strings in a failing example's repr: fine, the warning is noise
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

SOAK = os.environ.get("NETRELOAD_SOAK") == "1"
SCALE = 10 if SOAK else 1
METHOD = "Host.setupNetworks"
# An agent code says which rule refused; 100 only says "something broke".
SPECIFIC_CODES = {int(code) for code in ErrorCode} - {int(ErrorCode.INTERNAL)} | {
    PARSE_ERROR,
    INVALID_REQUEST,
    INVALID_PARAMS,
}
TRANSPORTS = st.sampled_from(["unix", "stomp"])  # "" in an explicit example: the UNIX socket


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=not SOAK,
        database=None,
        # Shrinking re-runs real requests for minutes: a failure is reported
        # as generated (the property and the request say enough).
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


class UnixClient:
    """One connection to frontd's UNIX socket, one request at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids = itertools.count(1)
        self.sock: socket.socket | None = None
        self.buffer = b""

    def call_raw(self, body: bytes, timeout: float = 120.0) -> dict:
        if self.sock is None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(self.path))
        self.sock.settimeout(timeout)
        self.sock.sendall(body + b"\n")
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            assert chunk, f"frontd closed the UNIX connection without answering {body[:200]!r}"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def call(self, method: str, params: Any) -> dict:
        request_id = next(self.ids)
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        answer = self.call_raw(json.dumps(request).encode())
        assert answer.get("id") == request_id, answer
        return answer

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _normalize(value: Any) -> Any:
    """Drop the bridge's running timers: they tick whatever netreload does."""
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items() if not k.endswith("_timer")}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, symlink's target and folder under ``folder``."""
    if not folder.exists():
        return {}
    tree = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            tree[str(path.relative_to(folder))] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            tree[str(path.relative_to(folder))] = path.read_bytes()
        elif path.is_dir():
            tree[str(path.relative_to(folder))] = b"<folder>"
    return tree


@dataclass
class Fuzz:
    """The lab, its two ways in, the counts, the last known state."""

    lab: Lab
    engine: Engine
    unix: UnixClient
    counts: dict[str, int] = field(default_factory=dict)
    state: dict = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- state ------------------------------------------------------------
    def snapshot(self) -> dict:
        lab = self.lab
        routes = [
            route
            for family in ("-4", "-6")
            for route in lab.ip_json(family, "route", "show", "table", "all")
        ]
        return {
            "links": _normalize(lab.ip_json("-d", "link", "show")),
            "addrs": _normalize(lab.ip_json("addr", "show")),
            "routes": sorted(routes, key=lambda route: json.dumps(route, sort_keys=True)),
            "running": _tree(lab.run_dir / "netconf"),
            "persistent": _tree(lab.lib_dir / "persistence"),
            # what the current generation holds, whatever its number
            "persisted": _tree((lab.lib_dir / "persistence" / "netconf").resolve()),
        }

    def settle(self, timeout: float = 10.0) -> dict:
        """The state once IPv6 DAD is over and two reads 0.3 s apart agree: a
        tentative link-local address later brings its own local route."""
        deadline = time.monotonic() + timeout
        state = self.snapshot()
        while True:
            time.sleep(0.3)
            again = self.snapshot()
            tentative = self.lab.ip_json("-6", "addr", "show", "tentative")
            if (again == state and not tentative) or time.monotonic() > deadline:
                return again
            state = again

    def assert_state(
        self, expected: dict, why: str, wait: float = 0.0, ignore: tuple[str, ...] = ()
    ) -> None:
        deadline = time.monotonic() + wait
        expected = {k: v for k, v in expected.items() if k not in ignore}
        while True:
            now = {k: v for k, v in self.snapshot().items() if k not in ignore}
            if now == expected:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        changed = {k: (expected[k], now[k]) for k in now if now[k] != expected[k]}
        raise AssertionError(f"{why}: state changed in {sorted(changed)}:\n{changed}"[:6000])

    # -- requests ---------------------------------------------------------
    def send(self, params: Any, transport: str) -> dict:
        """The JSON-RPC answer to setupNetworks(params), checked."""
        transport = transport or "unix"
        self.count("requests")
        self.count(transport)
        if transport == "stomp":
            answer = self.engine.call(METHOD, params, timeout=120)
            answer.pop("pings", None)
            answer.pop("seconds", None)
        else:
            answer = self.unix.call(METHOD, params)
        self.check_answer(answer)
        self.count("rejected" if "error" in answer else "accepted")
        return answer

    def send_raw(self, body: bytes) -> dict:
        self.count("requests")
        self.count("unix")
        answer = self.unix.call_raw(body)
        self.check_answer(answer)
        self.count("rejected" if "error" in answer else "accepted")
        return answer

    @staticmethod
    def check_answer(answer: dict) -> None:
        assert answer.get("jsonrpc") == "2.0", answer
        assert ("result" in answer) != ("error" in answer), answer
        if "result" in answer:
            assert answer["result"] == {"code": 0, "message": "Done"}, answer
            return
        error = answer["error"]
        assert isinstance(error.get("code"), int), answer
        assert error["code"] in SPECIFIC_CODES, f"not a specific code: {answer}"[:2000]
        message = error.get("message")
        assert isinstance(message, str) and message, answer
        assert len(message) <= MAX_MESSAGE, f"a {len(message)}-character message"
        leaked = [marker for marker in LEAK_MARKERS if marker in message]
        assert not leaked, f"internal text {leaked} in the message: {message[:2000]}"

    def assert_alive(self) -> None:
        assert self.lab.superd is not None and self.lab.superd.poll() is None, "superd died"
        assert self.lab.frontd is not None and self.lab.frontd.poll() is None, "frontd died"
        ping = self.unix.call("Host.ping2", {})
        assert ping.get("result") is True, ping

    def after(self, answer: dict, why: str) -> None:
        """A rejection changed nothing; an accepted request is undone."""
        self.assert_alive()
        if "error" in answer:
            self.assert_state(self.state, f"rejected ({answer['error']}) {why}")
        else:
            self.restore()

    def restore(self) -> None:
        """Back to base0 alone, persisted: examples stay independent."""
        running = self.lab.running_config()["nets"]
        networks: dict[str, dict] = {n: {"remove": True} for n in running if n != BASE_NET}
        networks[BASE_NET] = BASE_ATTRS
        options = {**OPTIONS, "commitOnSuccess": True}
        answer = self.unix.call(METHOD, {"networks": networks, "bondings": {}, "options": options})
        assert answer.get("result", {}).get("code") == 0, answer
        self.state = self.settle()


@pytest.fixture(scope="module")
def fuzz(pytestconfig: pytest.Config) -> Iterator[Fuzz]:
    started = time.monotonic()
    with Lab(prefix="nrz-", nics=4) as lab:
        runner: Fuzz | None = None
        try:
            lab.start()
            runner = Fuzz(lab, lab.engine(), UnixClient(lab.run_dir / "frontd.sock"))
            answer = runner.engine.call(
                METHOD, {"networks": {BASE_NET: BASE_ATTRS}, "bondings": {}, "options": OPTIONS}
            )
            assert answer.get("result", {}).get("code") == 0, answer
            assert runner.unix.call("Host.setSafeNetworkConfig", {}).get("result") is True
            runner.state = runner.settle()
            yield runner
            runner.assert_alive()
            caps = runner.engine.result("Host.getNetworkCapabilities")
            assert BASE_NET in caps["networks"], "frontd still reports the base network"
        finally:
            counts = runner.counts if runner else {}
            capture = pytestconfig.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print(
                    f"\nfuzz: {counts.get('requests', 0)} requests, "
                    f"{counts.get('rejected', 0)} rejected, {counts.get('accepted', 0)} accepted "
                    f"({counts.get('stomp', 0)} over STOMP, {counts.get('unix', 0)} over the "
                    f"UNIX socket) in {time.monotonic() - started:.1f} s"
                    + (" [soak]" if SOAK else "")
                )
            if runner is not None:
                runner.unix.close()
            for name in ("superd", "frontd"):
                text = lab.log(name)
                if "Traceback" in text:
                    print(f"----- {name} log (tracebacks) -----\n{text[-8000:]}")


ROLLED_BACK = {
    "networks": {"fzrb": {"nic": "veth_2", "ipaddr": "203.0.113.77", "prefix": 24}},
    "bondings": {},
    # nobody pings: superd applies, waits 1 s, fails with 10 and rolls back
    "options": {"connectivityCheck": True, "connectivityTimeout": 1},
}


def test_rollback_leaves_the_running_folder_exactly_as_before(fuzz: Fuzz) -> None:
    netconf = fuzz.lab.run_dir / "netconf"
    before = sorted(str(p.relative_to(netconf)) for p in netconf.rglob("*"))
    answer = fuzz.send(ROLLED_BACK, "unix")
    assert answer.get("error", {}).get("code") == int(ErrorCode.LOST_CONNECTION), answer
    fuzz.state = fuzz.settle()  # the next test starts from here
    assert sorted(str(p.relative_to(netconf)) for p in netconf.rglob("*")) == before


def test_rollback_after_a_failed_connectivity_check_changes_nothing(fuzz: Fuzz) -> None:
    answer = fuzz.send(ROLLED_BACK, "unix")
    assert answer.get("error", {}).get("code") == int(ErrorCode.LOST_CONNECTION), answer
    fuzz.after(answer, "connectivity check failed")


@fuzz_settings(40)
@given(request=valid_requests(), transport=TRANSPORTS)
def test_valid_request_is_applied_and_undone_by_removing_its_networks(
    fuzz: Fuzz, request: dict, transport: str
) -> None:
    before = fuzz.state
    answer = fuzz.send(request, transport)
    assert answer.get("result", {}).get("code") == 0, answer
    fuzz.assert_alive()
    running = fuzz.lab.running_config()["nets"]
    assert set(request["networks"]) | {BASE_NET} == set(running)
    for name, attrs in request["networks"].items():
        assert running[name]["nic"] == attrs["nic"]
        assert running[name]["mtu"] == int(attrs.get("mtu", 1500))
    removal = {name: {"remove": True} for name in request["networks"]}
    answer = fuzz.send({"networks": removal, "bondings": {}, "options": request["options"]}, "unix")
    assert answer.get("result", {}).get("code") == 0, answer
    # A commit writes a new generation of the persistent folder: its content
    # ("persisted") is back to before, its number is not.
    fuzz.assert_state(before, "after removing the networks again", wait=5.0, ignore=("persistent",))
    fuzz.state = fuzz.snapshot()


def _one(attrs: dict) -> dict:
    return {"networks": {"fz1": {"nic": "veth_2", **attrs}}, "bondings": {}, "options": OPTIONS}


BAD_ADDR, BAD_PARAMS = int(ErrorCode.BAD_ADDR), int(ErrorCode.BAD_PARAMS)


@fuzz_settings(300)
@given(case=nearly_valid_requests(), transport=TRANSPORTS)
# Found by this test (frontd answered 100): digits int() refuses, inf.
@example(case=("mtu", _one({"mtu": "²"}), {BAD_PARAMS}), transport="stomp")
@example(case=("ipv6addr", _one({"ipv6addr": "2001:db8::1/²"}), {BAD_ADDR}), transport="stomp")
@example(case=("prefix", _one({"ipaddr": "203.0.113.9", "prefix": "²"}), {BAD_ADDR}), transport="")
def test_nearly_valid_request_is_refused_with_its_rule_code_and_changes_nothing(
    fuzz: Fuzz, case: tuple[str, dict, set[int]], transport: str
) -> None:
    what, request, codes = case
    answer = fuzz.send(request, transport)
    fuzz.after(answer, f"spoiled {what}")
    assert "error" in answer, f"spoiled {what} but accepted: {request}"[:2000]
    assert answer["error"]["code"] in codes, f"spoiled {what}: {answer['error']}"[:2000]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@fuzz_settings(150)
@given(params=garbage_requests(), transport=TRANSPORTS)
# Found by this test (frontd answered 100): what orjson cannot write to superd.
@example(params=_one({"custom": {"n": 2**64}}), transport="stomp")
@example(params=_one({"custom": _nested(300)}), transport="stomp")
@example(params={"networks": {f"fz{i}": {} for i in range(10_000)}}, transport="stomp")
def test_garbage_request_gets_a_specific_answer_and_a_refusal_changes_nothing(
    fuzz: Fuzz, params: Any, transport: str
) -> None:
    answer = fuzz.send(params, transport)
    fuzz.after(answer, "garbage")


def _body(params: str) -> bytes:
    head = '{"jsonrpc":"2.0","id":7,"method":"Host.setupNetworks","params":'
    return (head + params + "}").encode()


NET = (
    '{"networks":{"fzraw":{"nic":"veth_2","bridged":false,"ipaddr":"203.0.113.9",%s}},'
    '"options":{"connectivityCheck":false}}'
)
# Bodies no JSON encoder writes, each with the code that says what is wrong.
RAW_BODIES = {
    "NaN mtu": (NET % '"prefix":24,"mtu":NaN', PARSE_ERROR),
    "Infinity prefix": (NET % '"prefix":Infinity', PARSE_ERROR),
    "-Infinity vlan": (NET % '"prefix":24,"vlan":-Infinity', PARSE_ERROR),
    "5000-digit mtu": (NET % ('"prefix":24,"mtu":1' + "0" * 5000), PARSE_ERROR),
    "65-bit integer in custom": (
        NET % '"prefix":24,"custom":{"n":18446744073709551616}', int(ErrorCode.BAD_PARAMS)
    ),
    "custom 400 deep": (
        NET % ('"prefix":24,"custom":' + '{"a":' * 400 + "1" + "}" * 400), INVALID_REQUEST
    ),
    "2 MiB of custom properties": (
        NET % ('"prefix":24,"custom":{"note":"' + "x" * 2**21 + '"}'),
        int(ErrorCode.BAD_PARAMS),
    ),
    "lists 5000 deep": ("[" * 5000 + "]" * 5000, INVALID_REQUEST),
    "objects 100000 deep": ('{"a":' * 100_000 + "1" + "}" * 100_000, INVALID_REQUEST),
    "duplicate networks key": ('{"networks":{},"networks":[]}', int(ErrorCode.BAD_PARAMS)),
    "lone surrogate name": ('{"networks":{"\\ud800":{}}}', int(ErrorCode.BAD_BRIDGE)),
    "NUL in a name": ('{"networks":{"fz\\u0000":{"nic":"veth_2"}}}', int(ErrorCode.BAD_BRIDGE)),
}


@pytest.mark.parametrize(("body", "code"), list(RAW_BODIES.values()), ids=list(RAW_BODIES))
def test_raw_body_gets_its_code_and_changes_nothing(fuzz: Fuzz, body: str, code: int) -> None:
    answer = fuzz.send_raw(_body(body))
    fuzz.after(answer, f"raw body {body[:60]!r}")
    assert answer.get("id") in (7, None), answer
    assert answer.get("error", {}).get("code") == code, answer
