"""netreload never takes over, changes or deletes a device it did not create.

The real daemons (``demo.lab.Lab``: superd and frontd in a host
namespace, the engine over STOMP/TLS from its own namespace). The host
holds what libvirt makes for its default network: a bridge ``virbr0`` with
192.168.122.1/24, not netreload's. Every device netreload creates carries
its mark (``IFLA_IFALIAS`` "netreload", ``shared.netmodel.ownership``);
only marked devices are ever adopted or deleted. Assertions are on the
kernel read back with ``ip -j``.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.engine import Engine
from demo.lab import Lab
from shared.faults import PAUSE_ENV
from shared.netmodel.ownership import OWNER_ALIAS

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

FOREIGN, FOREIGN_ADDR = "virbr0", "192.168.122.1/24"
LOST = {"connectivityCheck": True, "connectivityTimeout": 2}  # the engine stays silent


def request(networks: dict, **options: object) -> dict:
    return {"networks": networks, "bondings": {}, "options": {**LOST, **options}}


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The lab, with ``veth_0``, ``veth_1`` (control) and as many more NICs
    as an indirect parameter asks for (2 in all unless given)."""
    with Lab(prefix="nro-", nics=getattr(request, "param", 2)) as the_lab:
        try:
            yield the_lab
        finally:  # shown by pytest when the test failed
            for name in ("superd", "frontd", "engine0"):
                text = the_lab.log(name)
                if text:
                    print(f"----- {name} log -----\n{text[-6000:]}")


def add_foreign_bridge(lab: Lab) -> None:
    """libvirt's default network, made behind netreload's back."""
    lab.ip("link", "add", FOREIGN, "type", "bridge")
    lab.ip("addr", "add", FOREIGN_ADDR, "dev", FOREIGN)
    lab.ip("link", "set", FOREIGN, "up")


def link(lab: Lab, name: str) -> dict | None:
    found = [entry for entry in lab.ip_json("-d", "link", "show") if entry["ifname"] == name]
    return found[0] if found else None


def ipv4(lab: Lab, name: str) -> list[str]:
    return [
        f"{a['local']}/{a['prefixlen']}"
        for entry in lab.ip_json("-4", "addr", "show")
        if entry["ifname"] == name
        for a in entry.get("addr_info", [])
    ]


def assert_foreign_bridge_intact(lab: Lab) -> None:
    bridge = link(lab, FOREIGN)
    assert bridge is not None, f"{FOREIGN} was deleted"
    assert bridge["linkinfo"]["info_kind"] == "bridge"
    assert "UP" in bridge["flags"]
    assert "ifalias" not in bridge, f"{FOREIGN} was marked as netreload's"
    assert ipv4(lab, FOREIGN) == [FOREIGN_ADDR]
    assert "master" not in (link(lab, "veth_0") or {}), "veth_0 was put into virbr0"


def test_network_named_like_another_agents_bridge_is_refused_with_28(lab: Lab) -> None:
    add_foreign_bridge(lab)
    lab.start()
    engine: Engine = lab.engine()
    answer = engine.call("Host.setupNetworks", request({FOREIGN: {"nic": "veth_0"}}))
    assert answer["error"]["code"] == 28, answer
    assert "Network already exists" in answer["error"]["message"]
    assert answer["seconds"] < 2, "refused before any change, not after a connectivity wait"
    assert_foreign_bridge_intact(lab)
    assert lab.running_config() == {"nets": {}, "bonds": {}}


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def test_another_agents_bridge_appearing_during_a_change_survives_its_rollback(
    lab: Lab,
) -> None:
    """The bridge appears after the request was validated (superd paused at
    the first durable write of the change): the configurator refuses to
    take it over, and the rollback leaves it as it is."""
    lab.start_superd(env={PAUSE_ENV: "1"})
    lab.start_frontd()
    engine: Engine = lab.engine()
    answers: list[dict] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            engine.call("Host.setupNetworks", request({FOREIGN: {"nic": "veth_0"}}), timeout=60)
        )
    )
    sender.start()
    try:
        assert lab.superd is not None
        deadline = time.monotonic() + 30
        while not _stopped(lab.superd.pid):
            assert time.monotonic() < deadline, "superd did not reach the change"
            time.sleep(0.05)
        add_foreign_bridge(lab)
    finally:
        if lab.superd is not None:
            lab.superd.send_signal(signal.SIGCONT)
        sender.join(60)
    (answer,) = answers
    assert answer["error"]["code"] == 28, answer
    assert_foreign_bridge_intact(lab)
    assert lab.running_config() == {"nets": {}, "bonds": {}}


def test_devices_netreload_creates_carry_its_mark_and_go_with_their_network(
    lab: Lab,
) -> None:
    add_foreign_bridge(lab)
    lab.start()
    engine: Engine = lab.engine()
    answer = engine.call("Host.setupNetworks", request({"net1": {"nic": "veth_0"}}), ping=0.2)
    assert answer.get("result", {}).get("code") == 0, answer
    assert (link(lab, "net1") or {}).get("ifalias") == OWNER_ALIAS
    caps = engine.result("Host.getNetworkCapabilities")
    assert "net1" in caps["bridges"] and FOREIGN in caps["bridges"]
    assert "owned" not in caps, "the mark stays between superd and frontd"
    answer = engine.call("Host.setupNetworks", request({"net1": {"remove": True}}), ping=0.2)
    assert answer.get("result", {}).get("code") == 0, answer
    assert link(lab, "net1") is None
    assert_foreign_bridge_intact(lab)


def test_superd_marks_the_bridges_its_running_configuration_names_at_start(lab: Lab) -> None:
    """The upgrade rule: a bridge an older version made (no mark) is
    netreload's when its running configuration names it; another agent's
    bridge is not."""
    add_foreign_bridge(lab)
    lab.start()
    engine: Engine = lab.engine()
    answer = engine.call("Host.setupNetworks", request({"net1": {"nic": "veth_0"}}), ping=0.2)
    assert answer.get("result", {}).get("code") == 0, answer
    lab.stop_superd()
    lab.ip("link", "set", "dev", "net1", "alias", "")  # as an older version left it
    assert "ifalias" not in (link(lab, "net1") or {})
    lab.start_superd()
    assert (link(lab, "net1") or {}).get("ifalias") == OWNER_ALIAS
    answer = engine.call("Host.setupNetworks", request({"net1": {"remove": True}}), ping=0.2)
    assert answer.get("result", {}).get("code") == 0, answer
    assert link(lab, "net1") is None
    assert_foreign_bridge_intact(lab)


@pytest.mark.parametrize("lab", [3], indirect=True)
def test_restore_nets_leaves_out_only_the_network_whose_bridge_another_agent_made(
    lab: Lab,
) -> None:
    """After a reboot another agent made a bridge named like one persistent
    network before restore-nets ran: that network is not taken over (28,
    naming it), and the other persistent network is restored all the same."""
    lab.start()
    engine: Engine = lab.engine()
    networks = {"net1": {"nic": "veth_0"}, "net2": {"nic": "veth_2"}}
    answer = engine.call("Host.setupNetworks", request(networks), ping=0.2)
    assert answer.get("result", {}).get("code") == 0, answer
    assert engine.result("Host.setSafeNetworkConfig") is True
    engine.close()
    lab.reboot_host()  # namespace rebuilt with the same NICs, run dir wiped
    lab.ip("link", "add", "net1", "type", "bridge")
    lab.ip("addr", "add", FOREIGN_ADDR, "dev", "net1")
    lab.start_superd()
    restored = lab.cli("restore-nets", "--direct")
    assert restored.returncode == 28, (restored.stdout, restored.stderr)
    assert "network net1" in restored.stderr
    bridge = link(lab, "net1")
    assert bridge is not None and "ifalias" not in bridge
    assert ipv4(lab, "net1") == [FOREIGN_ADDR]
    assert "master" not in (link(lab, "veth_0") or {})
    assert (link(lab, "net2") or {}).get("ifalias") == OWNER_ALIAS
    assert (link(lab, "veth_2") or {}).get("master") == "net2"
