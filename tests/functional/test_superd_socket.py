"""superd's socket and who may use it (``superd_daemon``'s daemon): its
owner and mode, the peer's uid checked, the connection limit, and the first
case of each request frontd would never send (an unknown verb, bad frames,
tampered and replayed plans; ``test_superd_hostile`` has the others): a
specific error, nothing changed, the daemon still serving.
"""

from __future__ import annotations

import grp
import os
import stat
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.wire import MAX_FRAME, encode_frame, recv_frame
from superd.server import MAX_CONNECTIONS
from tests.functional.conftest import HostNs
from tests.functional.superd_daemon import (
    FRONTD_USER,
    NO_CHECK,
    Client,
    Superd,
    assert_closed,
    bridge_net,
    connect_as,
    error_of,
    make_plan,
    wait_until,
)


def test_socket_belongs_to_root_and_the_frontd_group(superd: Superd) -> None:
    info = os.stat(superd.socket)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660
    assert (info.st_uid, info.st_gid) == (0, grp.getgrnam(FRONTD_USER).gr_gid)
    assert stat.S_IMODE(os.stat(superd.socket.parent).st_mode) == 0o755


def test_other_uid_is_refused_even_with_socket_access(superd: Superd) -> None:
    # nobody in the frontd group can open the socket file; its uid is still refused.
    refused = connect_as(superd.socket, "nobody", [FRONTD_USER])
    assert refused["answer"]["ok"] is False and refused["answer"]["error"]["code"] == 21
    assert "permission denied" in refused["answer"]["error"]["message"]
    assert refused["then"] is None  # disconnected
    assert "refused connection" in superd.log_text()
    admitted = connect_as(superd.socket, FRONTD_USER, [FRONTD_USER])
    assert admitted["answer"] == {"id": 1, "ok": True, "result": "pong"}


def test_unknown_verb_is_answered_and_connection_stays_usable(client: Client) -> None:
    client.sock.sendall(encode_frame({"id": 7, "verb": "exec", "args": {"cmd": "id"}}))
    answer = recv_frame(client.sock)
    assert answer["id"] == 7 and error_of(answer)[0] == 21
    client.sock.sendall(encode_frame({"id": 8, "verb": "ping", "args": {"x": 1}}))
    assert error_of(recv_frame(client.sock))[0] == 21
    assert client.result("ping") == "pong"


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack(">I", 8) + b"not json",
        struct.pack(">I", 2) + b"[]",
        struct.pack(">I", MAX_FRAME + 1) + b"{",
    ],
    ids=["not-json", "not-an-object", "oversized"],
)
def test_bad_frame_gets_an_error_then_close(superd: Superd, client: Client, raw: bytes) -> None:
    client.sock.sendall(raw)
    answer = recv_frame(client.sock)
    assert answer["id"] == 0 and error_of(answer)[0] == 21
    assert_closed(client)
    other = superd.connect()
    try:
        assert other.result("ping") == "pong"
    finally:
        other.close()


def _tamper_name(plan: dict) -> None:
    plan["operations"][0]["name"] = "../x"


def _tamper_vlan(plan: dict) -> None:
    plan["operations"][0]["attrs"]["vlan"] = 5000


def _tamper_op(plan: dict) -> None:
    plan["operations"][0]["op"] = "exec"


@pytest.mark.parametrize(
    "tamper, code",
    [(_tamper_name, 21), (_tamper_vlan, 26), (_tamper_op, 21)],
    ids=["network-name", "vlan-5000", "unknown-op"],
)
def test_plan_frontd_would_never_send_changes_nothing(
    superd: Superd, client: Client, tamper: Callable[[dict], None], code: int
) -> None:
    before = superd.kernel_state()
    plan = make_plan(client, {"net_a": bridge_net("veth_0", vlan=10)}, NO_CHECK)
    tamper(plan)
    assert error_of(client.call("apply_plan", plan=plan))[0] == code
    assert superd.kernel_state() == before
    assert client.result("netinfo")["running"] == {"networks": {}, "bonds": {}}


def test_stale_plan_is_refused(superd: Superd, client: Client) -> None:
    plan = make_plan(client, {"net_a": bridge_net("veth_0")}, NO_CHECK)
    client.result("apply_plan", plan=plan)
    state = superd.kernel_state()
    code, message = error_of(client.call("apply_plan", plan=plan))
    assert code == 21 and "stale" in message
    assert superd.kernel_state() == state


def test_missing_frontd_user_leaves_a_root_only_socket(
    make_ns: Callable[[], HostNs], tmp_path: Path, sock_dir: Path
) -> None:
    with Superd(make_ns(), tmp_path, sock_dir, frontd_user="nrs-no-such-user") as daemon:
        assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
        refused = connect_as(daemon.socket, FRONTD_USER, [])
        assert refused["connect"] == "PermissionError"


def test_connections_beyond_the_limit_are_refused(superd: Superd) -> None:
    clients = []
    try:
        for _ in range(MAX_CONNECTIONS):
            clients.append(superd.connect())
            assert clients[-1].result("ping") == "pong"
        extra = superd.connect()
        answer = recv_frame(extra.sock)
        assert answer["id"] == 0 and error_of(answer)[0] == 40
        assert_closed(extra)
        extra.close()
        clients.pop().close()
        wait_until(lambda: _ping_once(superd))
    finally:
        for conn in clients:
            conn.close()


def _ping_once(superd: Superd) -> bool:
    conn = superd.connect()
    try:
        answer = conn.call("ping")
    except (ConnectionResetError, AssertionError):
        return False
    finally:
        conn.close()
    return answer["ok"]
