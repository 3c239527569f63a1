"""frontd's verbs and superd client, against a fake superd on a UNIX socket."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontd.api import NET_CHANGED_EVENT, HostApi
from frontd.jsonrpc import JsonRpcDispatcher
from frontd.superd_client import SuperdClient
from frontd.unix_transport import UnixJsonRpcServer, bind_unix_socket
from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig, running_config_from_caps
from tests.unit.fake_superd import FakeSuperd, sample_caps

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "examples"
NO_CHECK = {"connectivityCheck": False}
VM_NETWORK = {"vmnet": {"nic": "ens1f1", "vlan": 20, "ipaddr": "203.0.113.5", "prefix": 24}}


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # tmp_path can exceed the 108 bytes of a UNIX socket address
    with tempfile.TemporaryDirectory(prefix="nr-") as name:
        yield Path(name)


@pytest.fixture
def superd(sock_dir: Path) -> Iterator[FakeSuperd]:
    with FakeSuperd(sock_dir / "superd.sock") as fake:
        yield fake


@pytest.fixture
def client(superd: FakeSuperd) -> Iterator[SuperdClient]:
    client = SuperdClient(superd.path, timeout=10)
    yield client
    client.close()


@pytest.fixture
def events() -> list[tuple[str, dict]]:
    return []


@pytest.fixture
def api(client: SuperdClient, events: list) -> HostApi:
    api = HostApi(client)
    api.set_notify(lambda method, params: events.append((method, params)))
    return api


@pytest.fixture
def rpc(api: HostApi) -> Iterator[JsonRpcDispatcher]:
    dispatcher = JsonRpcDispatcher(api.table())
    yield dispatcher
    dispatcher.shutdown(wait=True)


def call(rpc: JsonRpcDispatcher, method: str, params: dict | None = None, rid: str = "1") -> dict:
    message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
    return rpc.handle(json.dumps(message))


def setup(networks: dict, bondings: dict | None = None, options: dict | None = None) -> dict:
    return {"networks": networks, "bondings": bondings or {}, "options": options or NO_CHECK}


def test_invalid_request_never_reaches_superd(
    rpc: JsonRpcDispatcher, superd: FakeSuperd, events: list
) -> None:
    answer = call(rpc, "Host.setupNetworks", setup({"x": {"nic": "ens1f1", "vlan": 5000}}))
    assert answer["error"]["code"] == ErrorCode.BAD_VLAN
    assert "vlan" in answer["error"]["message"]
    assert superd.verbs() == ["netinfo"]
    assert events == []


@pytest.mark.parametrize(
    "networks, code",
    [
        ({"x": {"nic": "nosuch0"}}, ErrorCode.BAD_NIC),
        ({"x": {"nic": "ens1f1", "colour": "red"}}, ErrorCode.BAD_PARAMS),
        ("not an object", ErrorCode.BAD_PARAMS),
        ({"x": {"nic": "ens1f1", "ipaddr": "300.1.1.1", "prefix": 24}}, ErrorCode.BAD_ADDR),
    ],
)
def test_rejected_request_answers_its_code_and_applies_nothing(
    rpc: JsonRpcDispatcher, superd: FakeSuperd, networks: object, code: int
) -> None:
    params = {"networks": networks, "bondings": {}, "options": NO_CHECK}
    assert call(rpc, "Host.setupNetworks", params)["error"]["code"] == code
    assert superd.plans() == []


def test_request_invalid_against_running_config_is_rejected(sock_dir: Path) -> None:
    caps = sample_caps()
    running = running_config_from_caps(caps).to_dict()
    request = json.loads((EXAMPLES / "bad-two-untagged.json").read_text())
    with FakeSuperd(sock_dir / "s.sock", caps, running) as fake:
        client = SuperdClient(fake.path)
        try:
            answer = JsonRpcDispatcher(HostApi(client).table()).handle(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 3, "method": "Host.setupNetworks", "params": request}
                )
            )
        finally:
            client.close()
        assert answer["error"]["code"] == ErrorCode.BAD_PARAMS
        assert fake.plans() == []


def test_valid_request_sends_the_plan_to_superd(
    rpc: JsonRpcDispatcher, superd: FakeSuperd, events: list
) -> None:
    answer = call(rpc, "Host.setupNetworks", setup(VM_NETWORK), rid="req-1")
    assert answer == {"jsonrpc": "2.0", "id": "req-1", "result": {"code": 0, "message": "Done"}}
    expected = plan_setup_networks(
        VM_NETWORK, {}, NO_CHECK, NetinfoSnapshot.from_caps(sample_caps()), RunningConfig()
    )
    # without the expected running configuration (the whole host): superd derives it
    assert superd.plans() == [expected.to_dict(running=False)]
    assert "running" not in superd.plans()[0]
    assert Plan.from_dict(superd.plans()[0]).operations[0]["op"] == "add_network"
    assert superd.verbs() == ["netinfo", "apply_plan"]
    assert [method for method, _ in events] == [NET_CHANGED_EVENT]
    assert isinstance(events[0][1]["notify_time"], int)


def test_superd_failure_is_answered_with_its_code(
    rpc: JsonRpcDispatcher, superd: FakeSuperd, events: list
) -> None:
    superd.fail["apply_plan"] = NetError(ErrorCode.FAILED_IFUP, "vmnet: bridge did not come up")
    answer = call(rpc, "Host.setupNetworks", setup(VM_NETWORK))
    assert answer["error"] == {"code": 29, "message": "vmnet: bridge did not come up"}
    assert events == []


def test_ping_during_connectivity_wait_lets_setup_succeed(
    rpc: JsonRpcDispatcher, superd: FakeSuperd
) -> None:
    options = {"connectivityCheck": True, "connectivityTimeout": 5}
    answers: list[dict] = []
    done = threading.Event()

    def reply(data: bytes) -> None:
        answers.append(json.loads(data))
        done.set()

    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": "setup",
            "method": "Host.setupNetworks",
            "params": setup(VM_NETWORK, options=options),
        }
    )
    rpc.submit(body.encode(), reply)
    while not done.is_set():  # the engine polls while it waits
        assert call(rpc, "Host.ping2", rid="ping")["result"] is True
        done.wait(0.1)
    assert answers[0]["result"] == {"code": 0, "message": "Done"}
    assert "confirm_connectivity" in superd.verbs()


def test_no_ping_during_connectivity_wait_fails_with_lost_connection(
    rpc: JsonRpcDispatcher,
) -> None:
    options = {"connectivityCheck": True, "connectivityTimeout": 1}
    answer = call(rpc, "Host.setupNetworks", setup(VM_NETWORK, options=options))
    assert answer["error"]["code"] == ErrorCode.LOST_CONNECTION


def test_second_setup_while_one_runs_is_resource_unavailable(
    rpc: JsonRpcDispatcher, superd: FakeSuperd
) -> None:
    superd.delay["apply_plan"] = 1.0
    first = rpc.submit(
        json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "Host.setupNetworks", "params": setup(VM_NETWORK)}
        ).encode(),
        lambda data: None,
    )
    deadline = time.monotonic() + 5
    while "apply_plan" not in superd.verbs() and time.monotonic() < deadline:
        time.sleep(0.01)
    answer = call(rpc, "Host.setupNetworks", setup(VM_NETWORK))
    assert answer["error"]["code"] == ErrorCode.RESOURCE_UNAVAILABLE
    first.result(timeout=10)
    assert len(superd.plans()) == 1


def test_network_capabilities_are_superd_caps_and_net_config_dirty(
    rpc: JsonRpcDispatcher,
) -> None:
    answer = rpc.handle_bytes(json.dumps({"jsonrpc": "2.0", "id": "1",
                                          "method": "Host.getNetworkCapabilities"}))
    assert json.loads(answer)["result"] == {**sample_caps(), "netConfigDirty": "False"}


def test_network_capabilities_follow_net_config_dirty(rpc: JsonRpcDispatcher) -> None:
    def dirty() -> str:
        answer = rpc.handle_bytes(json.dumps({"jsonrpc": "2.0", "id": "1",
                                              "method": "Host.getNetworkCapabilities"}))
        return json.loads(answer)["result"]["netConfigDirty"]

    call(rpc, "Host.setupNetworks", setup(VM_NETWORK))
    assert dirty() == "True"
    call(rpc, "Host.setSafeNetworkConfig")
    assert dirty() == "False"


def test_capabilities_hold_the_network_report_and_host_identity(
    rpc: JsonRpcDispatcher,
) -> None:
    caps = call(rpc, "Host.getCapabilities")["result"]
    for key in ("networks", "nics", "bondings", "bridges", "vlans", "nameservers"):
        assert caps[key] == sample_caps()[key]
    assert caps["version_name"] == "netreload"
    assert caps["netConfigDirty"] == "False"
    call(rpc, "Host.setupNetworks", setup(VM_NETWORK))
    assert call(rpc, "Host.getCapabilities")["result"]["netConfigDirty"] == "True"
    assert call(rpc, "Host.setSafeNetworkConfig")["result"] is True
    assert call(rpc, "Host.getCapabilities")["result"]["netConfigDirty"] == "False"


def test_set_safe_config_and_confirm_connectivity_go_to_superd(
    rpc: JsonRpcDispatcher, superd: FakeSuperd
) -> None:
    assert call(rpc, "Host.setSafeNetworkConfig")["result"] is True
    assert call(rpc, "Host.confirmConnectivity")["result"] is True
    assert superd.verbs() == ["set_safe_config", "confirm_connectivity"]


def test_engine_table_has_no_local_helpers(rpc: JsonRpcDispatcher, superd: FakeSuperd) -> None:
    assert call(rpc, "Host.planNetworks", setup(VM_NETWORK))["error"]["code"] == -32601
    assert call(rpc, "Host.restoreNetworks")["error"]["code"] == -32601
    assert superd.verbs() == []


def test_plan_networks_is_a_dry_run(api: HostApi, superd: FakeSuperd) -> None:
    local = JsonRpcDispatcher(api.table(local=True))
    try:
        plan = call(local, "Host.planNetworks", setup(VM_NETWORK))["result"]
        assert [op["op"] for op in plan["operations"]] == ["add_network"]
        assert call(local, "Host.restoreNetworks")["result"] == {"code": 0, "message": "Done"}
    finally:
        local.shutdown(wait=True)
    assert superd.verbs() == ["netinfo", "restore_nets"]


def capabilities_text(local: JsonRpcDispatcher, raw: bool) -> str:
    """``Host.getNetworkCapabilitiesText``'s text: the answer's result, or
    (``raw``) the bytes after the answer's line, which names their size."""
    message = {"jsonrpc": "2.0", "id": "1", "method": "Host.getNetworkCapabilitiesText"}
    if not raw:
        return json.loads(local.handle_bytes(json.dumps(message)))["result"]
    answer = local.handle_bytes(json.dumps({**message, "params": {"raw": True}}))
    head, tail = answer.split(b"\n", 1)
    assert json.loads(head) == {"jsonrpc": "2.0", "id": "1", "result": {"bytes": len(tail)}}
    return tail.decode()


@pytest.mark.parametrize("raw", [False, True], ids=["result", "raw"])
def test_capabilities_text_is_the_report_indented_with_keys_sorted(
    api: HostApi, superd: FakeSuperd, raw: bool
) -> None:
    local = JsonRpcDispatcher(api.table(local=True))
    try:
        text, again = capabilities_text(local, raw), capabilities_text(local, raw)
    finally:
        local.shutdown(wait=True)
    expected = {**sample_caps(), "netConfigDirty": "False"}
    assert text == json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False)
    assert again == text


def test_capabilities_text_raw_must_be_a_boolean(api: HostApi, superd: FakeSuperd) -> None:
    local = JsonRpcDispatcher(api.table(local=True))
    try:
        answer = call(local, "Host.getNetworkCapabilitiesText", {"raw": "yes"})
    finally:
        local.shutdown(wait=True)
    assert answer["error"]["code"] == 21


def test_capabilities_text_is_local_only(rpc: JsonRpcDispatcher, superd: FakeSuperd) -> None:
    assert call(rpc, "Host.getNetworkCapabilitiesText")["error"]["code"] == -32601
    assert superd.verbs() == []


def test_unknown_setup_parameter_is_invalid_params(rpc: JsonRpcDispatcher) -> None:
    params = {**setup(VM_NETWORK), "force": True}
    assert call(rpc, "Host.setupNetworks", params)["error"]["code"] == -32602


# -- the superd client ------------------------------------------------------


def test_client_reconnects_once_after_superd_restart(
    client: SuperdClient, superd: FakeSuperd
) -> None:
    assert client.call("ping") is None
    superd.drop_connections()
    assert client.call("ping") is None
    assert superd.connections_accepted == 2


def test_client_resends_a_read_when_the_answer_is_lost(
    client: SuperdClient, superd: FakeSuperd
) -> None:
    client.call("ping")
    superd.hang_up_once.add("netinfo")
    assert client.call("netinfo")["caps"] == sample_caps()
    assert superd.verbs() == ["ping", "netinfo", "netinfo"]


def test_client_never_resends_a_plan_superd_may_have_applied(
    client: SuperdClient, superd: FakeSuperd
) -> None:
    client.call("ping")
    superd.hang_up_once.add("apply_plan")
    plan = plan_setup_networks(
        VM_NETWORK, {}, NO_CHECK, NetinfoSnapshot.from_caps(sample_caps()), RunningConfig()
    )
    with pytest.raises(NetError) as raised:
        client.call("apply_plan", {"plan": plan.to_dict()})
    assert raised.value.code == ErrorCode.INTERNAL
    assert "old or the new state" in raised.value.message
    assert superd.verbs().count("apply_plan") == 1


def test_client_times_out_and_recovers(client: SuperdClient, superd: FakeSuperd) -> None:
    superd.delay["ping"] = 1.0
    with pytest.raises(NetError, match="did not answer ping"):
        client.call("ping", timeout=0.2)
    superd.delay.clear()
    assert client.call("ping") is None


def test_client_without_superd_raises_a_net_error(sock_dir: Path) -> None:
    client = SuperdClient(sock_dir / "absent.sock")
    with pytest.raises(NetError) as raised:
        client.call("ping")
    assert raised.value.code == ErrorCode.INTERNAL
    assert "superd is not available" in raised.value.message


def test_client_raises_the_error_frame_of_superd(client: SuperdClient, superd: FakeSuperd) -> None:
    superd.fail["ping"] = NetError(ErrorCode.BAD_BONDING, "bond0: bad")
    with pytest.raises(NetError) as raised:
        client.call("ping")
    assert (raised.value.code, raised.value.message) == (ErrorCode.BAD_BONDING, "bond0: bad")


def test_client_refuses_verbs_outside_the_table(client: SuperdClient, superd: FakeSuperd) -> None:
    with pytest.raises(NetError):
        client.call("run_shell", {"command": "true"})
    assert superd.verbs() == []


def test_concurrent_calls_use_separate_connections(
    client: SuperdClient, superd: FakeSuperd
) -> None:
    superd.delay["set_safe_config"] = 0.5
    slow = threading.Thread(target=client.call, args=("set_safe_config",))
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    client.call("ping")
    assert time.monotonic() - started < 0.4
    slow.join(5)
    assert superd.connections_accepted == 2


# -- the local UNIX socket transport -------------------------------------------


def test_unix_socket_serves_newline_delimited_json_rpc(api: HostApi, sock_dir: Path) -> None:
    path = sock_dir / "frontd.sock"
    local_rpc = JsonRpcDispatcher(api.table(local=True))
    server = UnixJsonRpcServer(local_rpc)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        listener = bind_unix_socket(path)
        asyncio.run_coroutine_threadsafe(server.start(listener), loop).result(5)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        lines = [
            {"jsonrpc": "2.0", "id": 1, "method": "Host.ping2"},
            {"jsonrpc": "2.0", "method": "Host.ping2"},  # a notification: no answer
            {"jsonrpc": "2.0", "id": 2, "method": "Host.planNetworks", "params": setup(VM_NETWORK)},
        ]
        payload = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        payload += b'{"jsonrpc": "2.0", "id": 3, "method": "Host.nope"}'  # last, no newline
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(path))
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)  # half-close: answers still come
            data = b""
            while chunk := client.recv(65536):
                data += chunk
        answers = {a["id"]: a for a in map(json.loads, data.decode().splitlines())}
        assert sorted(answers) == [1, 2, 3]
        assert answers[1]["result"] is True
        assert answers[2]["result"]["operations"][0]["op"] == "add_network"
        assert answers[3]["error"]["code"] == -32601
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        local_rpc.shutdown(wait=True)
