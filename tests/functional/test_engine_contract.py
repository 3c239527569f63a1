"""The production agent's contract on the wire, on the real daemons.

One ``demo.lab.Lab`` for the module (superd and frontd in the
host namespace); requests come from the engine namespace over STOMP 1.2 /
mutual TLS, framed as the production agent's own client library frames them
(``tests.functional.batch_engine``: a batch of one per call, a UUID reply
queue), or through frontd's UNIX socket. Each test leaves the host as it
found it (its networks removed).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from demo.lab import HOST_CONTROL_IP, Lab, run_ip
from frontd.jsonrpc import MAX_BATCH
from tests.functional.batch_engine import BatchEngine, call, framed_batch

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

NO_ANSWER_WITHIN = 2.0  # s: how long a request that gets no answer is waited for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(prefix="nrc-") as the_lab:
        try:
            the_lab.start()
            yield the_lab
        finally:
            for name in ("superd", "frontd"):
                print(f"----- {name} log -----\n{the_lab.log(name)[-6000:]}")


@pytest.fixture(scope="module")
def engine(lab: Lab) -> BatchEngine:
    return BatchEngine(lab)


def setup_networks(networks: dict, bondings: dict | None = None, **options: object) -> dict:
    params = {
        "networks": networks,
        "bondings": bondings or {},
        "options": {"connectivityCheck": False, **options},
    }
    return call("Host.setupNetworks", params)


def links(lab: Lab) -> set[str]:
    return {link["ifname"] for link in lab.ip_json("link", "show")}


def local_batch(lab: Lab, body: str) -> dict | list:
    """``body`` as one line on frontd's UNIX socket; the answer line, parsed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(lab.run_dir / "frontd.sock"))
        sock.sendall(body.encode() + b"\n")
        return json.loads(sock.makefile("rb").readline())


# -- item 1: JSON-RPC batches ----------------------------------------------------------


def test_a_batch_of_one_is_answered_with_a_plain_response(engine: BatchEngine) -> None:
    ping = call("Host.ping2")
    assert engine.batch(ping) == {"jsonrpc": "2.0", "id": ping["id"], "result": True}


def test_setup_networks_in_a_batch_of_one_changes_the_host(lab: Lab, engine: BatchEngine) -> None:
    request = setup_networks({"batchnet": {"nic": "veth_0", "bridged": True}})
    try:
        answer = engine.batch(request)
        assert answer["result"] == {"code": 0, "message": "Done"}, answer
        assert "batchnet" in links(lab)
        caps = engine.batch(call("Host.getNetworkCapabilities"))["result"]
        assert "batchnet" in caps["networks"]
    finally:
        engine.batch(setup_networks({"batchnet": {"remove": True}}))
    assert "batchnet" not in links(lab)


def test_a_larger_batch_is_answered_with_an_array(engine: BatchEngine) -> None:
    ping, caps, wrong = call("Host.ping2"), call("Host.getNetworkCapabilities"), call("Host.nope")
    answer = engine.batch(ping, caps, wrong)
    assert [item["id"] for item in answer] == [ping["id"], caps["id"], wrong["id"]]
    assert answer[0]["result"] is True
    assert "networks" in answer[1]["result"]
    assert answer[2]["error"]["code"] == -32601


def test_notifications_in_a_batch_get_no_answer(engine: BatchEngine) -> None:
    notification = {"jsonrpc": "2.0", "method": "Host.ping2", "params": {}}
    assert engine.send(framed_batch(notification, notification), NO_ANSWER_WITHIN) is None
    ping = call("Host.ping2")
    assert engine.batch(notification, ping) == [
        {"jsonrpc": "2.0", "id": ping["id"], "result": True}
    ]


def test_an_empty_batch_is_an_invalid_request(engine: BatchEngine) -> None:
    answer = engine.send("[]")
    assert answer["id"] is None and answer["error"]["code"] == -32600


def test_a_batch_over_the_limit_is_refused_and_changes_nothing(
    lab: Lab, engine: BatchEngine
) -> None:
    requests = [setup_networks({f"big{i}": {"nic": "veth_0", "vlan": i + 1}}) for i in range(40)]
    assert len(requests) > MAX_BATCH
    answer = engine.batch(*requests)
    assert answer["error"]["code"] == -32600
    assert f"at most {MAX_BATCH}" in answer["error"]["message"]
    assert not any(name.startswith("veth_0.") for name in links(lab))


def test_the_local_socket_answers_batches_too(lab: Lab) -> None:
    ping = call("Host.ping2")
    assert local_batch(lab, framed_batch(ping)) == {
        "jsonrpc": "2.0",
        "id": ping["id"],
        "result": True,
    }
    two = local_batch(
        lab, framed_batch(call("Host.ping2", request_id="a"), call("Host.ping2", request_id="b"))
    )
    assert [item["id"] for item in two] == ["a", "b"]
    assert local_batch(lab, "[]")["error"]["code"] == -32600


# -- item 6: what the production agent accepts in a request -------------------------------

EXPANDED_V6 = "2001:0db8:0000:0000:0000:0000:0000:0001/64"


def test_an_expanded_ipv6_address_is_applied_and_kept(lab: Lab, engine: BatchEngine) -> None:
    request = setup_networks({"v6net": {"nic": "veth_0", "ipv6addr": EXPANDED_V6}})
    try:
        answer = engine.batch(request)
        assert answer.get("result") == {"code": 0, "message": "Done"}, answer
        (link,) = lab.ip_json("addr", "show", "dev", "v6net")
        global_v6 = [
            (a["local"], a["prefixlen"])
            for a in link["addr_info"]
            if a.get("family") == "inet6" and a.get("scope") == "global"
        ]
        assert global_v6 == [("2001:db8::1", 64)]
        assert lab.running_config()["nets"]["v6net"]["ipv6addr"] == "2001:db8::1/64"
        caps = engine.batch(call("Host.getNetworkCapabilities"))["result"]
        assert "2001:db8::1/64" in caps["networks"]["v6net"]["ipv6addrs"]
    finally:
        engine.batch(setup_networks({"v6net": {"remove": True}}))


def test_a_connectivity_timeout_with_a_fraction_is_cut_as_int_does(
    lab: Lab, engine: BatchEngine
) -> None:
    """The production agent's own functional tests send 0.1 and expect the
    change to be rolled back with code 10 (nobody confirms within 0 s)."""
    request = setup_networks(
        {"quick": {"nic": "veth_0"}}, connectivityCheck=True, connectivityTimeout=0.1
    )
    answer = engine.batch(request)
    assert answer["error"]["code"] == 10, answer
    assert "quick" not in links(lab)
    assert "quick" not in lab.running_config()["nets"]


# -- item 7: the production agent's error codes ------------------------------------------


def test_a_second_untagged_network_on_a_nic_is_bad_params(lab: Lab, engine: BatchEngine) -> None:
    first = engine.batch(setup_networks({"first": {"nic": "veth_0"}}))
    assert first.get("result") == {"code": 0, "message": "Done"}, first
    try:
        answer = engine.batch(setup_networks({"second": {"nic": "veth_0", "bridged": False}}))
        assert answer["error"]["code"] == 21, answer
        assert "single underlying device" in answer["error"]["message"]
        assert "second" not in lab.running_config()["nets"]
    finally:
        engine.batch(setup_networks({"first": {"remove": True}}))


@pytest.mark.parametrize("bond", [{}, {"nics": []}, {"options": "mode=1 miimon=100"}])
def test_a_bond_without_nics_is_bad_params(lab: Lab, engine: BatchEngine, bond: dict) -> None:
    answer = engine.batch(setup_networks({}, {"bond7": bond}))
    assert answer["error"]["code"] == 21, answer
    assert "nics" in answer["error"]["message"]
    assert "bond7" not in links(lab)


# -- item 8: Host.getNetworkStatistics ---------------------------------------------------

COUNTERS = ("rx", "tx", "rxDropped", "txDropped", "rxErrors", "txErrors")


def statistics(engine: BatchEngine) -> dict:
    answer = engine.batch(call("Host.getNetworkStatistics"))
    assert "result" in answer, answer
    return answer["result"]


def test_network_statistics_report_every_device_in_the_agents_types(
    lab: Lab, engine: BatchEngine
) -> None:
    stats = statistics(engine)
    assert {"lo", "veth_0", "veth_1"} <= set(stats["network"])
    assert stats["network"].keys() == {link["ifname"] for link in lab.ip_json("link", "show")}
    for name, entry in stats["network"].items():
        assert entry["name"] == name
        assert entry["state"] in ("up", "down")
        assert all(entry[key].isdecimal() for key in (*COUNTERS, "speed")), entry
        assert entry["duplex"] in ("full", "half", "unknown")
        assert type(entry["sampleTime"]) is float
    assert stats["rxDropped"].isdecimal() and stats["txDropped"].isdecimal()
    assert stats["network"]["lo"]["state"] == "up"


def test_network_statistics_count_what_the_kernel_counts(lab: Lab, engine: BatchEngine) -> None:
    before = statistics(engine)["network"]["veth_1"]
    send = (  # 3 datagrams of 1000 bytes to the host's control address
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range(3): s.sendto(bytes(1000), ({HOST_CONTROL_IP!r}, 9))"
    )
    subprocess.run(
        ["ip", "netns", "exec", lab.engine_ns, sys.executable, "-c", send],
        check=True, capture_output=True, timeout=30,
    )
    after = statistics(engine)["network"]["veth_1"]
    (kernel,) = lab.ip_json("-s", "link", "show", "dev", "veth_1")
    assert int(after["rx"]) >= int(before["rx"]) + 3 * 1000
    assert int(after["rx"]) <= kernel["stats64"]["rx"]["bytes"]
    assert after["sampleTime"] > before["sampleTime"]


def test_network_statistics_report_speed_duplex_and_carrier(lab: Lab, engine: BatchEngine) -> None:
    host_sysfs = ["ip", "netns", "exec", lab.host_ns, "cat"]
    speed = subprocess.run([*host_sysfs, "/sys/class/net/veth_0/speed"], capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    entry = statistics(engine)["network"]["veth_0"]
    assert (entry["state"], entry["speed"], entry["duplex"]) == ("up", speed, "full")
    run_ip("-n", lab.engine_ns, "link", "set", "p_0", "down")  # veth_0 loses its carrier
    try:
        deadline = time.monotonic() + 10
        while (entry := statistics(engine)["network"]["veth_0"])["state"] != "down":
            assert time.monotonic() < deadline, entry
            time.sleep(0.1)
        assert entry["speed"] == "1000"  # unknown without a carrier, as the agent says
    finally:
        run_ip("-n", lab.engine_ns, "link", "set", "p_0", "up")
