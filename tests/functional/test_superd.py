"""superd's verbs (``superd_daemon``'s daemon, asserted on the kernel read
back with ``ip -j``): ping, netinfo, apply_plan with and without a
connectivity check. Its socket and callers are ``test_superd_socket``'s, its
life as a process ``test_superd_lifecycle``'s.
"""

from __future__ import annotations

import json
import time

from shared.faults import FAIL_AFTER_ENV
from tests.functional.superd_daemon import (
    NO_CHECK,
    Client,
    Superd,
    bridge_net,
    error_of,
    is_bridge,
    links,
    make_plan,
    net_a_held_in_its_connectivity_wait,
)


def test_ping_answers_pong(client: Client) -> None:
    assert client.result("ping") == "pong"


def test_netinfo_reports_caps_and_running(client: Client) -> None:
    info = client.result("netinfo")
    assert set(info) == {"token", "caps", "running", "owned"}
    assert {"veth_0", "veth_1"} <= set(info["caps"]["nics"])
    assert info["running"] == {"networks": {}, "bonds": {}}
    assert info["owned"] == []  # devices with netreload's mark: none yet


def test_netinfo_known_to_the_caller_is_answered_in_a_few_bytes(client: Client) -> None:
    token = client.result("netinfo")["token"]
    assert client.result("netinfo", known=token) == {"token": token, "unchanged": True}
    assert "caps" in client.result("netinfo", known="an older report")


def test_apply_plan_creates_the_bridge(superd: Superd, client: Client) -> None:
    plan = make_plan(client, {"net_a": bridge_net("veth_0")}, NO_CHECK)
    result = client.result("apply_plan", plan=plan)
    assert result["code"] == 0 and result["message"] == "Done"
    assert is_bridge(superd.host.name, "net_a")
    assert links(superd.host.name)["veth_0"]["master"] == "net_a"
    assert set(client.result("netinfo")["running"]["networks"]) == {"net_a"}


def test_unconfirmed_connectivity_rolls_back(superd: Superd, client: Client) -> None:
    before = superd.kernel_state()
    plan = make_plan(
        client,
        {"net_a": bridge_net("veth_0", ipaddr="192.0.2.5", prefix=24)},
        {"connectivityCheck": True, "connectivityTimeout": 2},
    )
    started = time.monotonic()
    code, message = error_of(client.call("apply_plan", plan=plan))
    assert code == 10 and "connectivity" in message
    assert time.monotonic() - started >= 2
    assert superd.kernel_state() == before
    assert client.result("netinfo")["running"] == {"networks": {}, "bonds": {}}


def test_confirmed_connectivity_keeps_the_change(superd: Superd, client: Client) -> None:
    applying, answers, _ = net_a_held_in_its_connectivity_wait(superd, client, 60)
    other = superd.connect()  # the confirmation may come on any connection
    try:
        assert other.result("confirm_connectivity")["code"] == 0
    finally:
        other.close()
    applying.join(30)
    assert answers and answers[0]["ok"], answers
    assert is_bridge(superd.host.name, "net_a")
    assert set(client.result("netinfo")["running"]["networks"]) == {"net_a"}


def test_failed_apply_is_rolled_back_and_reported(superd: Superd) -> None:
    superd.stop()
    superd.env[FAIL_AFTER_ENV] = "1"  # fail before the second operation
    superd.start()
    before = superd.kernel_state()
    conn = superd.connect()
    try:
        networks = {"net_a": bridge_net("veth_0"), "net_b": bridge_net("veth_1")}
        code, message = error_of(conn.call("apply_plan", plan=make_plan(conn, networks, NO_CHECK)))
        assert code == 29 and "injected" in message
        assert conn.result("netinfo")["running"] == {"networks": {}, "bonds": {}}
    finally:
        conn.close()
    assert superd.kernel_state() == before


def test_commit_on_success_persists(superd: Superd, client: Client) -> None:
    plan = make_plan(client, {"net_a": bridge_net("veth_0")}, {**NO_CHECK, "commitOnSuccess": True})
    client.result("apply_plan", plan=plan)
    persisted = superd.root / "lib" / "persistence" / "netconf" / "nets" / "net_a"
    assert json.loads(persisted.read_text())["nic"] == "veth_0"


def test_second_change_during_a_running_one_is_refused(superd: Superd, client: Client) -> None:
    # The first change holds in its connectivity wait until this test
    # confirms it: a second one answered before that was refused at once,
    # not queued behind it (queued, it would wait for the first's end).
    client.sock.settimeout(180)
    applying, answers, plan = net_a_held_in_its_connectivity_wait(superd, client, 120)
    other = superd.connect()
    try:
        for verb, args in (("apply_plan", {"plan": plan}), ("set_safe_config", {}),
                           ("restore_nets", {})):  # fmt: skip
            assert error_of(other.call(verb, **args))[0] == 40
            assert not answers, "refused while the first change runs, not queued after it"
        assert other.result("ping") == "pong"  # concurrent verbs still served
        assert "net_a" in other.result("netinfo")["caps"]["networks"]
        other.result("confirm_connectivity")
    finally:
        other.close()
    applying.join(60)
    assert answers and answers[0]["ok"], answers
