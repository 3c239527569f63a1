"""superd against a hostile peer: what frontd would never send.

``test_superd_socket.py`` covers the first case of each kind (``nobody`` pinging,
the ``exec`` verb, three bad frames, three tampered plans, a replayed plan);
this module extends each kind and, for every case, asserts the specific
error AND that nothing changed: links (``ip -j -d link``), addresses, routes
and the running and persistent configuration folders byte for byte.

One superd (in one ``nrh-*`` namespace) serves the whole module: it holds a
baseline network (``net_base`` on veth_0, persisted) so that "nothing
changed" is checked against a non-empty state. Every refused request must
leave it exactly as it was, so the cases cannot disturb one another; a case
that changed something fails its own assertion.

The tampered plans and the mutator live in ``hostile_plans.py``.

Plans building on a device that is not a NIC (a bridge, a host device
outside ``fake_nics``) are refused by superd with its own netinfo
(``plan_checks.check_plan_devices``). The host also holds another agent's
bridge (``virbr0`` with an address, as libvirt makes it): plans building a
network on it or removing it are refused (``plan_checks.check_plan_owned``)
and, like every case here, leave it as it was. A last test sends plans
with one random hostile mutation each (200 from a fixed seed, or 1000 from
a new seed with ``NETRELOAD_SOAK=1``; ``NETRELOAD_SEED`` replays a run).
"""

from __future__ import annotations

import copy
import json
import os
import random
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.errors import ErrorCode
from shared.netmodel.plan import Plan
from shared.wire import MAX_FRAME, encode_frame, recv_frame
from tests.functional.conftest import create_host_ns, destroy_host_ns, ip_json, socket_folder
from tests.functional.hostile_plans import (
    FOREIGN_BRIDGE,
    FOREIGN_BRIDGE_ADDR,
    HOSTILE_PLANS,
    mutate,
    net_attr,
)
from tests.functional.superd_daemon import (
    FRONTD_USER,
    NO_CHECK,
    Client,
    Superd,
    assert_closed,
    bridge_net,
    error_of,
    make_plan,
    send_as,
)

BASE = {"net_base": bridge_net("veth_0", ipaddr="192.0.2.1", prefix=24)}
# The valid plan every tampered plan starts from: net_h on veth_1. No VLAN:
# the test kernel may lack 802.1Q, and an accepted hostile plan must reach
# the kernel and succeed, not fail there for another reason.
HOSTILE_NET = {"net_h": bridge_net("veth_1")}
FOREIGN = "mgmt0"


def _volatile(key: str) -> bool:
    """Fields of ``ip -d`` that tick on their own (bridge timers)."""
    return key.endswith("_timer")


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not _volatile(k)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, relative path → bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def host_state(daemon: Superd) -> dict:
    ns = daemon.host.name
    return {
        "links": _stable(ip_json(ns, "-d", "link", "show")),
        "addrs": _stable(ip_json(ns, "addr", "show")),
        "routes": ip_json(ns, "route", "show", "table", "all"),
        "running": _tree(daemon.root / "run" / "netconf"),
        "persistent": _tree(daemon.root / "lib" / "persistence"),
    }


def _settled(ns: str) -> bool:
    return not ip_json(ns, "-6", "addr", "show", "tentative")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Superd]:
    host = create_host_ns(3, prefix="nrh-")
    with socket_folder("nrh-sock-") as sock_dir:
        superd = Superd(host, tmp_path_factory.mktemp("superd-hostile"), sock_dir)
        try:
            # A device of the host that is not a NIC in netinfo (not a fake_nics
            # name): netreload must never take it, whatever a plan says.
            host.batch([f"link add {FOREIGN} mtu 1400 type veth peer name {FOREIGN}p"])
            # Another agent's bridge (libvirt's default network): never netreload's.
            host.batch([f"link add {FOREIGN_BRIDGE} type bridge",
                        f"addr add {FOREIGN_BRIDGE_ADDR} dev {FOREIGN_BRIDGE}",
                        f"link set {FOREIGN_BRIDGE} up"])  # fmt: skip
            superd.start()
            conn = superd.connect()
            try:
                options = {**NO_CHECK, "commitOnSuccess": True}
                conn.result("apply_plan", plan=make_plan(conn, BASE, options))
            finally:
                conn.close()
            deadline = time.monotonic() + 20  # the kernel's own DAD, not superd's doing
            while not _settled(host.name):
                assert time.monotonic() < deadline, "IPv6 addresses stayed tentative"
                time.sleep(0.05)
            yield superd
        finally:
            superd.kill()
            destroy_host_ns(host)


@pytest.fixture
def conn(daemon: Superd) -> Iterator[Client]:
    client = daemon.connect()
    yield client
    client.close()


@pytest.fixture
def unchanged(daemon: Superd) -> Iterator[None]:
    """The host and both configuration folders are the same after the test."""
    before = host_state(daemon)
    yield
    after = host_state(daemon)
    for part in before:
        assert after[part] == before[part], f"{part} changed"
    assert daemon.proc is not None and daemon.proc.poll() is None, "superd died"


def assert_error(answer: dict, code: ErrorCode, text: str) -> None:
    got_code, message = error_of(answer)
    assert (got_code, text in message) == (int(code), True), answer


# -- peers that are not frontd ------------------------------------------------


def test_other_uid_cannot_apply_a_valid_plan(daemon: Superd, conn: Client, unchanged: None) -> None:
    plan = make_plan(conn, HOSTILE_NET, NO_CHECK)
    frame = encode_frame({"id": 5, "verb": "apply_plan", "args": {"plan": plan}})
    refused = send_as(daemon.socket, "nobody", [FRONTD_USER], frame)
    assert refused["answer"]["id"] == 0, "refused before any request was read"
    assert_error(refused["answer"], ErrorCode.BAD_PARAMS, "permission denied: uid 65534")
    assert refused["then"] is None


def test_other_uid_outside_the_frontd_group_cannot_connect(daemon: Superd, unchanged: None) -> None:
    frame = encode_frame({"id": 1, "verb": "restore_nets", "args": {}})
    assert send_as(daemon.socket, "nobody", [], frame) == {"connect": "PermissionError"}


# -- requests that are not requests --------------------------------------------


@pytest.mark.parametrize(
    "request_, text",
    [
        ({"id": "1", "verb": "ping", "args": {}}, "request id must be an integer"),
        ({"id": True, "verb": "ping", "args": {}}, "request id must be an integer"),
        ({"id": 1, "verb": 5, "args": {}}, "unknown verb '5'"),
        ({"id": 1, "verb": ["apply_plan"], "args": {}}, "unknown verb"),
        ({"id": 1, "verb": "__init__", "args": {}}, "unknown verb '__init__'"),
        ({"id": 1, "verb": "table", "args": {}}, "unknown verb 'table'"),
        ({"id": 1, "verb": "apply_plan", "args": [1]}, "verb apply_plan: unexpected arguments"),
        ({"id": 1, "verb": "restore_nets", "args": {"plan": {}}}, "unexpected arguments"),
        ({"id": 1, "verb": "apply_plan", "args": {}}, "missing argument plan"),
        ({"id": 1, "verb": "apply_plan", "args": {"plan": "net_a"}}, "not a version 1 plan"),
        ({"id": 1, "verb": "apply_plan", "args": {"plan": [1]}}, "not a version 1 plan"),
        ({"id": 1, "verb": "events", "args": {"after": "0"}}, "after must be an integer"),
        ({"id": 1, "verb": "events", "args": {"timeout": -1}}, "timeout must be a number"),
        ({"id": 1, "verb": "events", "args": {"epoch": ["x"]}}, "epoch must be a short string"),
    ],
    ids=["id-string", "id-bool", "verb-int", "verb-list", "verb-dunder", "verb-attribute",
         "args-list", "args-extra", "plan-missing", "plan-string", "plan-list", "after-string",
         "timeout-negative", "epoch-list"],
)  # fmt: skip
def test_malformed_request_is_answered_and_changes_nothing(
    conn: Client, unchanged: None, request_: dict, text: str
) -> None:
    conn.sock.sendall(encode_frame(request_))
    assert_error(recv_frame(conn.sock), ErrorCode.BAD_PARAMS, text)
    assert conn.result("ping") == "pong", "the connection stays usable"


def _nested(depth: int) -> bytes:
    return b'{"id":1,"verb":"ping","args":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize(
    "body, text",
    [
        (b"null", "not a JSON object"),
        (b'"apply_plan"', "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"", "not JSON"),
        (b'{"id": 1, "verb": "ping"\xff}', "not JSON"),
        (_nested(5000), "not JSON"),
    ],
    ids=["null", "string", "number", "empty", "not-utf8", "nested-5000"],
)
def test_frame_that_is_not_an_object_ends_the_connection(
    daemon: Superd, conn: Client, unchanged: None, body: bytes, text: str
) -> None:
    conn.sock.sendall(struct.pack(">I", len(body)) + body)
    answer = recv_frame(conn.sock)
    assert answer["id"] == 0
    assert_error(answer, ErrorCode.BAD_PARAMS, text)
    assert_closed(conn)


def test_huge_frame_of_junk_operations_is_refused_quickly(conn: Client, unchanged: None) -> None:
    # Just under MAX_FRAME: read in full, then refused at the first operation.
    junk = {"op": "exec", "name": "x" * 200}
    count = (MAX_FRAME - 1024) // (len(json.dumps(junk)) + 1)
    plan = {"version": 1, "operations": [junk] * count, "options": {}}
    started = time.monotonic()
    answer = conn.call("apply_plan", plan=plan)
    assert_error(answer, ErrorCode.BAD_PARAMS, "plan: unknown operation")
    assert time.monotonic() - started < 10
    assert conn.result("ping") == "pong"


def test_header_beyond_the_limit_is_refused_before_the_body(
    conn: Client, unchanged: None
) -> None:
    conn.sock.sendall(struct.pack(">I", 0xFFFFFFFF) + b"{}")  # 4 GiB announced
    answer = recv_frame(conn.sock)
    assert_error(answer, ErrorCode.BAD_PARAMS, f"exceeds {MAX_FRAME}")
    assert_closed(conn)


# -- plans frontd would never send ---------------------------------------------


@pytest.mark.parametrize(
    "tamper, code, text",
    [case[1:] for case in HOSTILE_PLANS],
    ids=[case[0] for case in HOSTILE_PLANS],
)
def test_hostile_plan_is_refused_and_changes_nothing(
    conn: Client, unchanged: None, tamper: Callable[[dict], None], code: ErrorCode | None,
    text: str,
) -> None:
    plan = make_plan(conn, HOSTILE_NET, NO_CHECK)
    tamper(plan)
    answer = conn.call("apply_plan", plan=plan)
    if code is None:
        pytest.fail(f"accepted? {answer}")
    assert_error(answer, code, text)


@pytest.mark.parametrize(
    "device",
    ["net_base", FOREIGN],
    ids=["bridge", "foreign-device"],
)  # fmt: skip
def test_plan_building_on_a_device_that_is_not_a_nic_is_refused(
    daemon: Superd, conn: Client, device: str
) -> None:
    before = host_state(daemon)
    plan = make_plan(conn, HOSTILE_NET, NO_CHECK)
    net_attr("nic", device)(plan)
    answer = conn.call("apply_plan", plan=plan)
    if answer["ok"]:  # keep the module's baseline for the other cases
        conn.result("apply_plan", plan=make_plan(conn, {"net_h": {"remove": True}}, NO_CHECK))
    assert_error(answer, ErrorCode.BAD_NIC, f"unknown nic {device}")
    assert host_state(daemon) == before


# -- random hostile leaves (bigger counts with NETRELOAD_SOAK=1) -------------------

SOAK = os.environ.get("NETRELOAD_SOAK") == "1"
MUTATIONS = 1000 if SOAK else 200
# The gating run replays one fixed sequence, so that it fails only on a
# change; the soak run draws a new one each time to explore.
FIXED_SEED = 20261206
def test_random_hostile_plans_change_nothing_or_mean_the_same(
    daemon: Superd, conn: Client
) -> None:
    """Each plan gets one hostile mutation: it is refused with a specific code
    (never an internal error) and changes nothing, or it is accepted only when
    it meant the same as the original plan (``True`` for ``1``, say)."""
    seed = int(os.environ.get("NETRELOAD_SEED", "0")) or (
        random.randrange(1 << 30) if SOAK else FIXED_SEED
    )
    rng = random.Random(seed)
    base = make_plan(conn, HOSTILE_NET, {"connectivityCheck": False, "connectivityTimeout": 1})
    before = host_state(daemon)
    codes: dict[int, int] = {}
    for number in range(MUTATIONS):
        plan = copy.deepcopy(base)
        what = mutate(plan, rng)
        context = f"seed {seed}, mutation {number}: {what}"
        answer = conn.call("apply_plan", plan=plan)
        if answer["ok"]:  # only a plan that does the same may be accepted
            accepted, original = Plan.from_dict(copy.deepcopy(plan)), Plan.from_dict(base)
            # A plan sent without its running configuration asks superd to
            # derive it from the operations: the same plan.
            assert accepted.operations == original.operations, context
            assert accepted.running in (None, original.running), context
            running = conn.result("netinfo")["running"]
            assert running["networks"]["net_h"] == base["running"]["networks"]["net_h"], context
            undo = make_plan(conn, {"net_h": {"remove": True}}, NO_CHECK)
            conn.result("apply_plan", plan=undo)
            codes[0] = codes.get(0, 0) + 1
        else:
            code = answer["error"]["code"]
            assert code in set(ErrorCode) - {ErrorCode.INTERNAL}, f"{context}: {answer}"
            codes[code] = codes.get(code, 0) + 1
        assert host_state(daemon) == before, context
    print(f"seed {seed}: {MUTATIONS} mutated plans, answers by code {sorted(codes.items())}")
