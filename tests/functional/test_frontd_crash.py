"""A daemon killed (SIGKILL) in the middle of an engine's setupNetworks.

frontd killed:
superd does not need frontd to end a transaction: it finishes the change on
its own, or — when the change waited for a connectivity confirmation that
can no longer come — rolls it back on its own. The engine's request fails
clearly (its connection to frontd is gone, no answer), and once frontd is
back the engine sees the host as superd left it and can go on.

The lab of ``test_end_to_end`` (``demo.lab.Lab``). To kill
frontd *during* the kernel changes, superd is started with
``NETRELOAD_TEST_PAUSE_AT_STEP`` (``shared.faults``): it stops itself before
its k-th write; the test kills frontd, then lets superd continue.

superd killed (``NETRELOAD_TEST_KILL_AT_STEP``): the engine gets an error
answer from frontd at once; the restarted superd undoes the half-made change
before serving and the engine hears of it (``transaction_recovered``). (Every
kill point is swept in ``test_crash_recovery``.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.engine import Engine
from demo.lab import Lab
from shared.faults import KILL_ENV, PAUSE_ENV

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

NET = {"nic": "veth_0", "bridged": True, "ipaddr": "192.0.2.7", "netmask": "255.255.255.0"}


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(prefix="nrk-") as the_lab:
        try:
            yield the_lab
        finally:
            for name in ("superd", "frontd"):
                print(f"----- {name} log -----\n{the_lab.log(name)[-4000:]}")


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def links(lab: Lab) -> set[str]:
    return {link["ifname"] for link in lab.ip_json("link", "show")}


def process_state(pid: int) -> str:
    """The one-letter state of ``/proc/<pid>/stat`` (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def superd_pid(lab: Lab) -> int:
    """superd itself (``ip netns exec`` execs it, the pid is the same)."""
    assert lab.superd is not None
    return lab.superd.pid


def call_in_background(engine: Engine, params: dict) -> tuple[threading.Thread, list]:
    outcome: list = []

    def call() -> None:
        try:
            outcome.append(engine.call("Host.setupNetworks", params, timeout=20))
        except Exception as error:  # the engine process reports the lost connection
            outcome.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    return thread, outcome


def test_frontd_killed_during_apply_superd_finishes_the_change(lab: Lab) -> None:
    lab.start_superd(env={PAUSE_ENV: "4"})  # stops itself before its 4th write
    lab.start_frontd()
    engine = lab.engine()
    params = {"networks": {"net_a": NET}, "bondings": {}, "options": {"connectivityCheck": False}}
    thread, outcome = call_in_background(engine, params)
    wait_until(lambda: process_state(superd_pid(lab)) == "T")
    assert lab.frontd is not None
    lab.frontd.kill()
    lab.frontd.wait(10)
    lab.frontd = None
    os.kill(superd_pid(lab), signal.SIGCONT)
    thread.join(30)
    assert outcome and isinstance(outcome[0], Exception), outcome  # a clear failure
    assert "closed the STOMP connection" in str(outcome[0])
    wait_until(lambda: "net_a" in links(lab))
    wait_until(lambda: not (lab.run_dir / "transaction.journal").exists())
    assert set(lab.running_config()["nets"]) == {"net_a"}
    addresses = lab.ip_json("addr", "show", "dev", "net_a")[0]["addr_info"]
    assert any(a["local"] == "192.0.2.7" for a in addresses)
    lab.start_frontd()  # the engine comes back and sees the change done
    caps = lab.engine().result("Host.getCapabilities")
    assert "net_a" in caps["networks"]


def test_frontd_killed_during_connectivity_wait_superd_rolls_back(lab: Lab) -> None:
    lab.start()
    engine = lab.engine()
    before_links, before_running = links(lab), lab.running_config()
    options = {"connectivityCheck": True, "connectivityTimeout": 3}
    params = {"networks": {"net_a": NET}, "bondings": {}, "options": options}
    thread, outcome = call_in_background(engine, params)
    wait_until(lambda: "net_a" in links(lab))  # applied: superd waits for a confirmation
    assert lab.frontd is not None
    lab.frontd.kill()
    lab.frontd.wait(10)
    lab.frontd = None
    thread.join(30)
    assert outcome and isinstance(outcome[0], Exception), outcome
    # no confirmation can come: superd rolls back by itself after the timeout
    wait_until(lambda: "net_a" not in links(lab))
    wait_until(lambda: not (lab.run_dir / "transaction.journal").exists())
    assert links(lab) == before_links
    assert lab.running_config() == before_running
    assert lab.superd is not None and lab.superd.poll() is None
    lab.start_frontd()
    engine = lab.engine()
    assert "net_a" not in engine.result("Host.getCapabilities")["networks"]
    params["options"] = {"connectivityCheck": False}
    assert engine.call("Host.setupNetworks", params).get("result") == {"code": 0, "message": "Done"}
    assert json.loads((lab.run_dir / "netconf" / "nets" / "net_a").read_text())["nic"] == "veth_0"


def test_superd_killed_mid_change_recovers_and_the_engine_hears_of_it(lab: Lab) -> None:
    lab.start_superd(env={KILL_ENV: "6"})
    lab.start_frontd()
    before_links = links(lab)
    params = {"networks": {"net_a": NET}, "bondings": {}, "options": {"connectivityCheck": False}}
    engine = lab.engine()
    answer = engine.call("Host.setupNetworks", params, timeout=30)
    assert "error" in answer, answer  # superd's connection died: frontd says so
    assert lab.superd is not None
    assert lab.superd.wait(10) == -signal.SIGKILL
    assert (lab.run_dir / "transaction.journal").exists()
    lab.superd = None
    lab.start_superd()  # recovers before READY=1
    assert links(lab) == before_links
    assert lab.running_config()["nets"] == {}
    assert not (lab.run_dir / "transaction.journal").exists()

    def recovered() -> list[dict]:
        return [
            event
            for note in engine.events()
            for event in note.get("params", {}).get("events", [])
            if event["kind"] == "transaction_recovered"
        ]

    wait_until(lambda: recovered(), timeout=30)
    assert recovered()[0]["verb"] == "apply_plan"


def test_a_recovery_while_no_engine_listens_reaches_the_first_engine_that_subscribes(
    lab: Lab,
) -> None:
    lab.start_superd(env={KILL_ENV: "6"})
    lab.start_frontd()
    params = {"networks": {"net_a": NET}, "bondings": {}, "options": {"connectivityCheck": False}}
    first = lab.engine()
    assert "error" in first.call("Host.setupNetworks", params, timeout=30)
    assert lab.superd is not None and lab.superd.wait(10) == -signal.SIGKILL
    lab.superd = None
    first.close()
    lab.stop_frontd()  # the whole host restarts: no engine is connected
    lab.start_superd()
    lab.start_frontd()
    relayed = lab.cli("events", "--count", "1", "--timeout", "20", "--json")
    assert json.loads(relayed.stdout)["kind"] == "transaction_recovered", relayed
    engine = lab.engine()  # subscribes to jms.queue.events only now
    wait_until(lambda: bool(engine.events()), timeout=20)
    (note,) = engine.events()
    (event,) = note["params"]["events"]
    assert event["kind"] == "transaction_recovered" and event["verb"] == "apply_plan"
