"""End to end: the real daemons, driven by stomp.py playing the engine.

Each test gets a ``demo.lab.Lab`` (the same lab ``make demo``
uses): an ``nre-*-host`` namespace with the NICs veth_0 and veth_1, an
``nre-*-engine`` namespace with their peers p_0 and p_1, the control path
veth_1 192.0.2.10/24 ↔ p_1 192.0.2.1/24 set out of band, a test CA with host
and engine certificates, superd (root) and frontd (dropped to ``nobody``)
running in the host namespace, and stomp.py in its own process in the engine
namespace talking JSON-RPC over STOMP 1.2 / mutual TLS to 192.0.2.10:54321.
Assertions are on the kernel read back with ``ip -n HOST -j`` and on the
running and persistent configuration files. The lab is torn down (processes
killed, namespaces deleted, files removed) whatever happens.
"""

from __future__ import annotations

import errno
import json
import pwd
import shutil
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.engine import Engine, EngineError
from demo.lab import ENGINE_CONTROL_IP, HOST_CONTROL_IP, Lab
from demo.lab import MGMT_NET as NET
from demo.lab import MGMT_NET_ATTRS as NET_ATTRS
from tests.functional.agent import Agent
from tests.functional.conftest import HostNs
from tests.functional.contract import assert_caps_contract
from tests.functional.ns_exec import run_json

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

PING = 0.2  # the engine's Host.ping2 interval while it waits for setupNetworks


def request(networks: dict, timeout: int = 5, **options: object) -> dict:
    return {
        "networks": networks,
        "bondings": {},
        "options": {"connectivityCheck": True, "connectivityTimeout": timeout, **options},
    }


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(prefix="nre-") as the_lab:
        try:
            the_lab.start()
            yield the_lab
        finally:  # shown by pytest when the test failed
            for name in ("superd", "frontd", *(f"engine{i}" for i in range(4))):
                text = the_lab.log(name)
                if text:
                    print(f"----- {name} log -----\n{text[-6000:]}")


@pytest.fixture
def engine(lab: Lab) -> Engine:
    return lab.engine()


def kernel_state(lab: Lab) -> dict:
    """Links (mtu, master, up), addresses and routes, as test_superd compares them."""
    return Agent(HostNs(lab.host_ns, lab.engine_ns), lab.root).kernel_state()


def links(lab: Lab) -> dict[str, dict]:
    return {link["ifname"]: link for link in lab.ip_json("-d", "link", "show")}


def addresses(lab: Lab, device: str) -> list[str]:
    return [
        f"{a['local']}/{a['prefixlen']}"
        for entry in lab.ip_json("addr", "show", "dev", device)
        for a in entry.get("addr_info", [])
        if a["family"] == "inet"
    ]


def default_routes(lab: Lab) -> list[tuple[str, str]]:
    return [(r.get("gateway", ""), r["dev"]) for r in lab.ip_json("-4", "route", "show", "default")]


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def apply_net(engine: Engine) -> dict:
    """setupNetworks of the bridged static network, the engine pinging."""
    answer = engine.call("Host.setupNetworks", request({NET: NET_ATTRS}), ping=PING)
    assert answer.get("result") == {"code": 0, "message": "Done"}, answer
    return answer


def assert_net_in_kernel(lab: Lab) -> None:
    devices = links(lab)
    assert devices[NET]["linkinfo"]["info_kind"] == "bridge"
    assert devices["veth_0"]["master"] == NET
    assert addresses(lab, NET) == ["198.51.100.10/24"]
    assert default_routes(lab) == [("198.51.100.1", NET)]
    # The control path, set out of band, is untouched.
    assert addresses(lab, "veth_1") == [f"{HOST_CONTROL_IP}/24"]


def test_setup_networks_with_the_engine_pinging(lab: Lab, engine: Engine) -> None:
    assert lab.running_config() == {"nets": {}, "bonds": {}}
    answer = apply_net(engine)
    assert answer["pings"] >= 1, "the connectivity wait saw the engine's pings"
    assert_net_in_kernel(lab)
    running = lab.running_config()["nets"]
    assert set(running) == {NET}
    assert running[NET]["ipaddr"] == "198.51.100.10" and running[NET]["defaultRoute"] is True
    wait_until(lambda: any(e["method"] == "|net|host_conn|no_id" for e in engine.events()))


def test_network_capabilities_over_stomp(lab: Lab, engine: Engine) -> None:
    apply_net(engine)
    caps = engine.result("Host.getNetworkCapabilities")
    net = caps["networks"][NET]
    assert net["bridged"] is True and net["iface"] == NET
    assert net["ports"] == ["veth_0"]
    assert net["ipv4addrs"] == ["198.51.100.10/24"]
    assert net["gateway"] == "198.51.100.1" and net["ipv4defaultroute"] is True
    assert caps["bridges"][NET]["ports"] == ["veth_0"]
    assert {"veth_0", "veth_1"} <= set(caps["nics"])
    assert caps["nics"]["veth_1"]["ipv4addrs"] == [f"{HOST_CONTROL_IP}/24"]


def test_engine_reads_the_agents_types_over_stomp(lab: Lab, engine: Engine) -> None:
    """What the engine casts: mtu a string, stp 'on'/'off', southbound,
    netConfigDirty a string, in both verbs' answers."""
    apply_net(engine)
    caps = assert_caps_contract(engine.result("Host.getNetworkCapabilities"), answer=True)
    net, bridge = caps["networks"][NET], caps["bridges"][NET]
    assert (net["mtu"], net["stp"], net["southbound"]) == ("1500", "off", "veth_0")
    assert (bridge["mtu"], bridge["stp"]) == ("1500", "off")
    assert caps["nics"]["veth_0"]["mtu"] == "1500" and caps["nics"]["veth_0"]["speed"] == 0
    assert caps["netConfigDirty"] == "True"  # not committed yet
    everything = engine.result("Host.getCapabilities")
    network_part = {key: everything[key] for key in caps}
    assert assert_caps_contract(network_part, answer=True)["networks"] == caps["networks"]
    assert engine.result("Host.setSafeNetworkConfig") is True
    assert engine.result("Host.getNetworkCapabilities")["netConfigDirty"] == "False"


def test_engine_sets_and_reads_bridge_opts_over_stomp(lab: Lab, engine: Engine) -> None:
    isle = {"custom": {"bridge_opts": "multicast_snooping=0 priority=100"}}
    answer = engine.call("Host.setupNetworks", request({NET: NET_ATTRS, "isle": isle}), ping=PING)
    assert answer.get("result") == {"code": 0, "message": "Done"}, answer
    assert links(lab)["isle"]["linkinfo"]["info_data"]["priority"] == 100
    caps = assert_caps_contract(engine.result("Host.getNetworkCapabilities"), answer=True)
    opts = caps["bridges"]["isle"]["opts"]
    assert (opts["multicast_snooping"], opts["priority"]) == ("0", "100")
    assert caps["networks"]["isle"]["southbound"] is None  # a bridge without a NIC
    before, running = kernel_state(lab), lab.running_config()
    bad = {"custom": {"bridge_opts": "multicast_snooping=0 foo=0"}}
    answer = engine.call("Host.setupNetworks", request({"isle": bad, NET: {"remove": True}}))
    assert answer["error"]["code"] == 21 and "foo" in answer["error"]["message"], answer
    assert kernel_state(lab) == before and lab.running_config() == running


def test_capabilities_over_stomp_report_a_source_routed_networks_gateway(
    lab: Lab, engine: Engine
) -> None:
    storage = {"bridged": True, "ipaddr": "203.0.113.5", "prefix": 24, "gateway": "203.0.113.1"}
    answer = engine.call("Host.setupNetworks", request({NET: NET_ATTRS, "storage": storage}),
                         ping=PING)  # fmt: skip
    assert answer.get("result") == {"code": 0, "message": "Done"}, answer
    nets = engine.result("Host.getNetworkCapabilities")["networks"]
    assert (nets["storage"]["gateway"], nets["storage"]["ipv4defaultroute"]) == (
        "203.0.113.1", False
    )
    assert (nets[NET]["gateway"], nets[NET]["ipv4defaultroute"]) == ("198.51.100.1", True)
    table = str(zlib.adler32(b"storage"))
    assert [r["table"] for r in lab.ip_json("-4", "rule", "show") if r["table"] == table] == [
        table, table
    ]


def test_lost_connectivity_rolls_back(lab: Lab, engine: Engine) -> None:
    apply_net(engine)
    before, running = kernel_state(lab), lab.running_config()
    moved = {**NET_ATTRS, "ipaddr": "198.51.100.20"}
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:  # the new address was really applied, then undone
        while not done.is_set():
            seen.update(
                f"{a['local']}/{a['prefixlen']}"
                for entry in lab.ip_json("-4", "addr", "show")  # one dump: never a missing device
                if entry["ifname"] == NET
                for a in entry.get("addr_info", [])
            )
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answer = engine.call("Host.setupNetworks", request({NET: moved}, timeout=2))  # silent
    finally:
        done.set()
        watcher.join(10)
    assert "198.51.100.20/24" in seen
    assert answer["error"]["code"] == 10, answer
    assert "connectivity" in answer["error"]["message"]
    assert answer["seconds"] >= 2
    assert kernel_state(lab) == before
    assert lab.running_config() == running
    assert_net_in_kernel(lab)
    caps = engine.result("Host.getNetworkCapabilities")
    assert caps["networks"][NET]["ipv4addrs"] == ["198.51.100.10/24"]


def test_set_safe_network_config_persists(lab: Lab, engine: Engine) -> None:
    apply_net(engine)
    assert lab.persistent_config() == {"nets": {}, "bonds": {}}
    assert engine.result("Host.getCapabilities")["netConfigDirty"] == "True"
    assert engine.result("Host.setSafeNetworkConfig") is True
    persistent = lab.persistent_config()
    assert persistent == lab.running_config()
    assert persistent["nets"][NET]["nic"] == "veth_0"
    assert engine.result("Host.getCapabilities")["netConfigDirty"] == "False"


def test_restore_nets_after_a_reboot(lab: Lab, engine: Engine) -> None:
    apply_net(engine)
    assert engine.result("Host.setSafeNetworkConfig") is True
    scratch = {"bridged": True, "ipaddr": "203.0.113.5", "prefix": 24}  # B: never persisted
    answer = engine.call("Host.setupNetworks", request({"scratch": scratch}), ping=PING)
    assert answer.get("result", {}).get("code") == 0, answer
    assert "scratch" in links(lab)
    engine.close()

    assert lab.stop_frontd() == 0 and lab.stop_superd() == 0
    lab.reboot_host()  # namespace rebuilt with the same NICs, run dir wiped
    assert NET not in links(lab) and "scratch" not in links(lab)
    assert addresses(lab, "veth_1") == [f"{HOST_CONTROL_IP}/24"]
    lab.start_superd()
    restored = lab.cli("restore-nets", "--direct")
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout
    assert_net_in_kernel(lab)
    assert "scratch" not in links(lab)
    assert set(lab.running_config()["nets"]) == {NET}

    lab.start_frontd()
    caps = lab.engine().result("Host.getNetworkCapabilities")
    assert set(caps["networks"]) == {NET}
    assert caps["networks"][NET]["ipv4addrs"] == ["198.51.100.10/24"]


def test_superd_restart_while_idle_keeps_frontd_and_the_network(lab: Lab, engine: Engine) -> None:
    apply_net(engine)
    state = kernel_state(lab)
    assert lab.stop_superd() == 0
    # frontd answers at once that superd is away; the STOMP connection stays.
    answer = engine.call("Host.getNetworkCapabilities", timeout=10)
    assert answer["error"]["code"] == 100 and "superd" in answer["error"]["message"], answer
    lab.start_superd()
    caps = engine.result("Host.getNetworkCapabilities")  # the same STOMP connection
    assert caps["networks"][NET]["ipv4addrs"] == ["198.51.100.10/24"]
    assert engine.connected() and lab.frontd is not None and lab.frontd.poll() is None
    assert kernel_state(lab) == state
    assert set(lab.running_config()["nets"]) == {NET}


def test_cli_over_frontds_unix_socket(lab: Lab, tmp_path: Path) -> None:
    caps = lab.cli("caps")
    assert caps.returncode == 0, caps.stderr
    assert "No networks." in caps.stdout and "veth_0" in caps.stdout
    as_json = lab.cli("--json", "caps")
    assert json.loads(as_json.stdout)["nics"]["veth_1"]["ipv4addrs"] == [f"{HOST_CONTROL_IP}/24"]

    path = tmp_path / "request.json"
    path.write_text(json.dumps(request({NET: NET_ATTRS}, timeout=10)))
    before = kernel_state(lab)
    plan = lab.cli("plan", str(path))
    assert plan.returncode == 0, plan.stderr
    assert "add_network" in plan.stdout and NET in plan.stdout
    assert kernel_state(lab) == before, "plan is a dry run"
    assert lab.running_config() == {"nets": {}, "bonds": {}}

    setup = lab.cli_popen("setup-networks", str(path))
    try:
        confirmed = 0
        while setup.poll() is None:  # the admin confirms, as the engine pings
            confirm = lab.cli("confirm")
            assert confirm.returncode == 0, confirm.stderr
            confirmed += 1
            time.sleep(0.2)
        out, err = setup.communicate(timeout=10)
    finally:
        if setup.poll() is None:
            setup.kill()
            setup.communicate()
    assert setup.returncode == 0, err
    assert out.strip() == "Done." and confirmed >= 1
    assert_net_in_kernel(lab)

    safe = lab.cli("set-safe-config")
    assert safe.returncode == 0, safe.stderr
    assert set(lab.persistent_config()["nets"]) == {NET}

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(request({"other": {"nic": "veth_0", "vlan": 5000}})))
    refused = lab.cli("setup-networks", str(bad))
    assert refused.returncode == 26 and json.loads(refused.stderr)["code"] == 26
    assert_net_in_kernel(lab)


# Run in the host namespace, as root: optionally drop privileges exactly as
# frontd does, then try a netlink write.
NETLINK_WRITE = """
import json, sys
from pyroute2 import IPRoute, NetlinkError
if sys.argv[1] == "drop":
    from frontd.main import drop_privileges
    drop_privileges(sys.argv[2])
try:
    with IPRoute() as ipr:
        ipr.link("add", ifname="nre-probe", kind="bridge")
except NetlinkError as error:
    print(json.dumps({"errno": error.code}))
except OSError as error:
    print(json.dumps({"errno": error.errno}))
else:
    print(json.dumps({"errno": 0}))
"""


def netlink_write(lab: Lab, *args: str) -> int:
    return run_json(lab.host_ns, NETLINK_WRITE, *args, timeout=30)["errno"]


def test_frontd_holds_no_netlink_write_capability(lab: Lab) -> None:
    assert lab.frontd is not None
    lines = Path(f"/proc/{lab.frontd.pid}/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines)
    nobody = pwd.getpwnam("nobody")
    assert status["Name"].strip().startswith("python")
    assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
    assert status["Gid"].split() == [str(nobody.pw_gid)] * 4
    assert status["Groups"].split() == []
    for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(status[caps], 16) == 0, f"{caps} {status[caps].strip()}"

    assert netlink_write(lab, "drop", "nobody") == errno.EPERM
    assert "nre-probe" not in links(lab)
    # The probe itself works: as root, in the same namespace, the write succeeds.
    assert netlink_write(lab, "keep") == 0
    assert "nre-probe" in links(lab)
    lab.ip("link", "del", "nre-probe")


def test_engine_talks_over_the_control_path_only(lab: Lab, engine: Engine) -> None:
    # The engine's STOMP connection is the one TCP connection frontd has,
    # from the engine's control address to the host's.
    out = subprocess.run(
        ["ip", "netns", "exec", lab.host_ns, "ss", "-Htn", "state", "established"],
        capture_output=True, text=True, timeout=10,
    ).stdout.split()  # fmt: skip
    assert f"{HOST_CONTROL_IP}:54321" in out
    assert any(field.startswith(f"{ENGINE_CONTROL_IP}:") for field in out)
    with pytest.raises(EngineError) as error:
        engine.result("Host.planNetworks", {"networks": {}})  # local-only verb
    assert error.value.code == -32601
