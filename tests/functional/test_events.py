"""Host events end to end: the kernel changes, the engine hears of it.

The lab of ``test_end_to_end`` (``demo.lab.Lab``): superd and
frontd in an ``nrv-*-host`` namespace, stomp.py subscribed to
``jms.queue.events`` from the ``nrv-*-engine`` namespace over mutual TLS.
Changes are made out of band with ``ip`` in the host namespace, the way an
administrator, a cable or a hotplug would; a NIC is "plugged" by moving a
veth from the engine namespace into the host one, and "unplugged" by moving
it back. Each test asserts on the notification the engine received and, for
the actions, on the kernel read back with ``ip -j``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator

import pytest

from demo.engine import Engine
from demo.lab import MGMT_NET as NET
from demo.lab import MGMT_NET_ATTRS as NET_ATTRS
from demo.lab import Lab, run_ip
from tests.functional.contract import assert_caps_contract
from tests.functional.nm_lab import TIMEOUT, NmLab, why_no_nm

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

NET_CHANGED = "|net|host_conn|no_id"


def _lab(extra_config: str = "", configurator: str = "iproute2") -> Iterator[Lab]:
    """The lab, its changes made by ``configurator``: for ``nm`` a private
    NetworkManager in the host namespace (``nm_lab``), stopped after superd."""
    with Lab(prefix="nrv-", extra_config=extra_config) as the_lab:
        nm = None
        try:
            if configurator == "nm":
                why = why_no_nm()
                if why is not None:
                    pytest.skip(why)
                nm = NmLab(the_lab.host_ns, the_lab.root / "nm")
                nm.start()
                text = the_lab.config_path.read_text()
                the_lab.config_path.write_text(
                    text.replace("net_configurator = iproute2", "net_configurator = nm")
                    + f"[nm]\nbus = {nm.address}\ntimeout = {TIMEOUT}\n"
                )
            the_lab.start()
            yield the_lab
        finally:
            for name in ("superd", "frontd", "engine0"):
                text = the_lab.log(name)
                if text:
                    print(f"----- {name} log -----\n{text[-5000:]}")
            if nm is not None:
                the_lab.stop_frontd()
                the_lab.stop_superd()
                nm.stop()


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from _lab()


#: the tests where netreload changes the host: the same events whichever
#: configurator made the change
@pytest.fixture(params=["iproute2", "nm"])
def changing_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from _lab(configurator=request.param)


@pytest.fixture(params=["iproute2", "nm"])
def restoring_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    yield from _lab("[events]\nnic_added = restore\n", configurator=request.param)


def host_events(engine: Engine) -> list[dict]:
    """The details of every network-changed notification, in order."""
    found = []
    for note in engine.events():
        assert note["jsonrpc"] == "2.0" and "id" not in note
        if note["method"] == NET_CHANGED:
            assert isinstance(note["params"]["notify_time"], int)
            found += note["params"].get("events", [])
    return found


def wait_event(engine: Engine, match: Callable[[dict], bool], timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        hits = [e for e in host_events(engine) if match(e)]
        if hits:
            return hits[0]
        assert time.monotonic() < deadline, f"no such event; got {host_events(engine)}"
        time.sleep(0.1)


def apply(engine: Engine, networks: dict) -> None:
    request = {"networks": networks, "bondings": {}, "options": {"connectivityCheck": False}}
    assert engine.result("Host.setupNetworks", request) == {"code": 0, "message": "Done"}


def plug(lab: Lab, nic: str) -> None:
    """A new NIC: a veth made in the engine namespace, moved into the host."""
    run_ip("-n", lab.engine_ns, "link", "add", nic, "type", "veth", "peer", "name", f"p{nic}")
    run_ip("-n", lab.engine_ns, "link", "set", nic, "netns", lab.host_ns)


def unplug(lab: Lab, nic: str) -> None:
    lab.ip("link", "set", nic, "netns", lab.engine_ns)


def replug(lab: Lab, nic: str) -> None:
    run_ip("-n", lab.engine_ns, "link", "set", nic, "netns", lab.host_ns)


def test_a_nic_plugged_in_reaches_the_engine(lab: Lab) -> None:
    engine = lab.engine()
    plug(lab, "veth_7")
    event = wait_event(engine, lambda e: e["kind"] == "nic_added" and e["device"] == "veth_7")
    ifindex = lab.ip_json("link", "show", "veth_7")[0]["ifindex"]
    assert event["ifindex"] == ifindex
    assert event["networks"] == [] and event["bonds"] == []


def test_a_nic_set_down_names_the_network_it_carries(changing_lab: Lab) -> None:
    lab = changing_lab
    engine = lab.engine()
    apply(engine, {NET: NET_ATTRS})
    lab.ip("link", "set", "veth_0", "down")
    event = wait_event(engine, lambda e: e["kind"] == "admin_down" and e["device"] == "veth_0")
    assert event["networks"] == [NET]


def test_a_nic_losing_its_carrier_is_link_down_and_getting_it_back_link_up(
    changing_lab: Lab,
) -> None:
    lab = changing_lab
    engine = lab.engine()
    apply(engine, {NET: NET_ATTRS})
    run_ip("-n", lab.engine_ns, "link", "set", "p_0", "down")  # the switch port, say
    down = wait_event(engine, lambda e: e["kind"] == "link_down" and e["device"] == "veth_0")
    assert down["networks"] == [NET]
    run_ip("-n", lab.engine_ns, "link", "set", "p_0", "up")
    wait_event(engine, lambda e: e["kind"] == "link_up" and e["device"] == "veth_0")


def test_an_address_added_out_of_band_reaches_the_engine(lab: Lab) -> None:
    engine = lab.engine()
    lab.ip("addr", "add", "203.0.113.7/24", "dev", "veth_0")
    wait_event(engine, lambda e: e == {**e, "kind": "address_added", "device": "veth_0",
                                       "address": "203.0.113.7/24"})  # fmt: skip


def test_netreloads_own_changes_are_one_notification_without_details(changing_lab: Lab) -> None:
    lab = changing_lab
    engine = lab.engine()
    apply(engine, {"quiet": {"bridged": True, "ipaddr": "203.0.113.9", "prefix": 24}})
    lab.ip("addr", "add", "203.0.113.7/24", "dev", "veth_0")  # a marker after it
    wait_event(engine, lambda e: e.get("address") == "203.0.113.7/24")
    assert [e for e in host_events(engine) if e.get("device") == "quiet"] == []
    assert any(n["method"] == NET_CHANGED and "events" not in n["params"]
               for n in engine.events())  # fmt: skip


def test_a_nic_unplugged_is_reported_and_later_requests_still_work(changing_lab: Lab) -> None:
    lab = changing_lab
    engine = lab.engine()
    apply(engine, {NET: NET_ATTRS})
    unplug(lab, "veth_0")
    event = wait_event(engine, lambda e: e["kind"] == "nic_removed" and e["device"] == "veth_0")
    assert event["networks"] == [NET]
    caps = assert_caps_contract(engine.result("Host.getNetworkCapabilities"), answer=True)
    assert caps["networks"][NET]["missing_nics"] == ["veth_0"]
    assert "veth_0" not in caps["nics"]
    # Another network, then removing the one that lost its NIC: both work.
    apply(engine, {"other": {"bridged": True}})
    apply(engine, {NET: {"remove": True}})
    assert NET not in {link["ifname"] for link in lab.ip_json("link", "show")}
    assert set(lab.running_config()["nets"]) == {"other"}


def test_restore_action_puts_a_returning_nic_back_under_its_network(
    restoring_lab: Lab,
) -> None:
    lab = restoring_lab
    engine = lab.engine()
    apply(engine, {NET: NET_ATTRS})
    running = lab.running_config()
    unplug(lab, "veth_0")
    wait_event(engine, lambda e: e["kind"] == "nic_removed")
    replug(lab, "veth_0")
    done = wait_event(engine, lambda e: e["kind"] == "networks_restored", timeout=30)
    assert done["networks"] == [NET]
    nic = lab.ip_json("link", "show", "veth_0")[0]
    assert nic["master"] == NET and "UP" in nic["flags"]
    address = lab.ip_json("-4", "addr", "show", "dev", NET)[0]["addr_info"][0]
    assert f"{address['local']}/{address['prefixlen']}" == "198.51.100.10/24"
    assert lab.ip_json("-4", "route", "show", "default")[0]["dev"] == NET
    assert lab.running_config() == running


def test_the_cli_follows_events(lab: Lab) -> None:
    # 60 s: the `ip addr add` waits for RTNL, which a namespace being
    # dismantled elsewhere on the machine holds ~16 s per 1,000 bridges
    follower = lab.cli_popen("--json", "events", "--count", "1", "--timeout", "60")
    try:
        time.sleep(1.5)  # the CLI's first poll sets its position
        lab.ip("addr", "add", "203.0.113.8/24", "dev", "veth_0")
        out, err = follower.communicate(timeout=75)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    event = json.loads(out.strip().splitlines()[0])
    assert event["kind"] == "address_added" and event["address"] == "203.0.113.8/24"
    assert isinstance(event["seq"], int) and isinstance(event["time"], int)
