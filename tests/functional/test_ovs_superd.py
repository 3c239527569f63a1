"""OVS networks through superd the daemon: connectivity rollback, restore-nets,
superd killed at every step of a mixed change.

superd runs in the test's namespace (``superd_daemon.Superd``) with a private
Open vSwitch (``ovs_lab``); assertions read OVSDB back with ``ovs-vsctl``
and the kernel with ``ip -j``.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.faults import KILL_ENV
from shared.wire import encode_frame, recv_frame
from tests.functional.conftest import HostNs, addresses, destroy_host_ns, ip_json
from tests.functional.contract import assert_caps_contract
from tests.functional.ovs_lab import OvsLab, why_no_ovs
from tests.functional.superd_daemon import NO_CHECK, Superd, error_of, make_plan

pytestmark = pytest.mark.skipif(why_no_ovs() is not None, reason=why_no_ovs() or "")


@pytest.fixture
def lab(make_ns: Callable[[], HostNs], tmp_path: Path, sock_dir: Path) -> Iterator[tuple]:
    host = make_ns()
    with OvsLab(host.name, tmp_path / "ovs") as ovs:
        daemon = Superd(host, tmp_path, sock_dir)
        with daemon.config.open("a") as config:
            config.write(f"[ovs]\ndb = {ovs.remote}\ndatapath = netdev\ntimeout = 20\n")
        with daemon:
            yield daemon, ovs


def test_unconfirmed_connectivity_rolls_back_an_ovs_network(lab: tuple) -> None:
    superd, ovs = lab
    conn = superd.connect()
    base = {"base": {"nic": "veth_0", "switch": "ovs", "ipaddr": "192.0.2.1", "prefix": 24}}
    conn.result("apply_plan", plan=make_plan(conn, base, NO_CHECK))
    ovsdb_before, kernel_before = ovs.config_snapshot(), superd.kernel_state()
    added = {"vnet": {"nic": "veth_0", "vlan": 42, "switch": "ovs",
                      "ipaddr": "203.0.113.9", "prefix": 24}}  # fmt: skip
    plan = make_plan(conn, added, {"connectivityCheck": True, "connectivityTimeout": 2})
    code, message = error_of(conn.call("apply_plan", plan=plan))
    assert code == 10 and "connectivity" in message
    assert ovs.config_snapshot() == ovsdb_before
    assert superd.kernel_state() == kernel_before
    assert set(conn.result("netinfo")["running"]["networks"]) == {"base"}
    conn.close()


def test_restore_nets_after_reboot_rebuilds_ovs_networks_and_drops_stale_ones(
    lab: tuple, make_ns: Callable[[], HostNs]
) -> None:
    superd, ovs = lab
    conn = superd.connect()
    kept = {"kept": {"nic": "veth_0", "vlan": 10, "switch": "ovs",
                     "ipaddr": "192.0.2.1", "prefix": 24}}  # fmt: skip
    conn.result("apply_plan", plan=make_plan(conn, kept, NO_CHECK))
    conn.result("set_safe_config")
    stale = {"stale": {"nic": "veth_1", "switch": "ovs"}}
    conn.result("apply_plan", plan=make_plan(conn, stale, NO_CHECK))
    conn.close()
    stale_bridge = ovs.vsctl("port-to-br", "stale").strip()
    assert superd.stop() == 0
    # "Reboot": a fresh namespace, /run wiped, OVSDB kept; ovs-vswitchd
    # starts again in the new namespace and rebuilds what OVSDB holds.
    ovs.stop_vswitchd()
    destroy_host_ns(superd.host)
    superd.host = make_ns()
    ovs.netns = superd.host.name
    ovs.start_vswitchd()
    shutil.rmtree(superd.root / "run" / "netconf")
    assert stale_bridge in ovs.bridges()  # OVSDB kept it on its own
    superd.start()
    conn = superd.connect()
    try:
        assert conn.result("restore_nets")["code"] == 0
        ns = superd.host.name
        assert stale_bridge not in ovs.bridges()
        assert ovs.ports(ovs.vsctl("port-to-br", "kept").strip()) == {"kept", "veth_0"}
        assert addresses(ns, "kept") == {"192.0.2.1/24"}
        assert "stale" not in {link["ifname"] for link in ip_json(ns, "link", "show")}
        info = conn.result("netinfo")
        assert set(info["running"]["networks"]) == {"kept"}
        assert assert_caps_contract(info["caps"])["networks"]["kept"]["ports"] == ["veth_0.10"]
    finally:
        conn.close()


def test_superd_killed_at_each_step_of_a_mixed_change_recovers_ovsdb_and_kernel(
    lab: tuple,
) -> None:
    """SIGKILL before each durable write (kernel request, document, OVSDB
    transaction) of a legacy + OVS request; each restart must bring OVSDB
    (rows and their identities), the kernel and the running configuration
    back to before the request, or — killed after the commit — to after it."""
    superd, ovs = lab
    base = {"base": {"nic": "veth_0", "switch": "ovs", "ipaddr": "192.0.2.1", "prefix": 24}}
    added = {
        "legacy": {"nic": "veth_1", "bridged": True, "ipaddr": "198.51.100.1", "prefix": 24},
        "vnet": {"nic": "veth_0", "vlan": 42, "switch": "ovs",
                 "ipaddr": "203.0.113.9", "prefix": 24},
    }  # fmt: skip
    conn = superd.connect()
    conn.result("apply_plan", plan=make_plan(conn, base, NO_CHECK))
    conn.close()
    old = (ovs.config_snapshot(), superd.kernel_state(), {"base"})
    kills = 0
    superd.stop()
    for step in range(1, 200):
        superd.env[KILL_ENV] = str(step)
        superd.start()  # recovers the previous kill before READY=1
        conn = superd.connect()
        running = set(conn.result("netinfo")["running"]["networks"])
        assert not (superd.root / "run" / "transaction.journal").exists()
        assert (ovs.config_snapshot(), superd.kernel_state(), running) == old, f"step {step - 1}"
        plan = make_plan(conn, added, NO_CHECK)
        try:
            conn.sock.sendall(encode_frame({"id": 9, "verb": "apply_plan", "args": {"plan": plan}}))
            answer = recv_frame(conn.sock)
        except OSError:
            answer = None
        conn.close()
        if answer is not None:  # this step is past the change's last one
            assert answer["ok"], answer
            superd.stop()
            break
        assert superd.proc is not None and superd.proc.wait(30) == -signal.SIGKILL
        superd.proc = None
        kills += 1
    superd.env.pop(KILL_ENV)
    superd.start()
    print(f"\nOVS crash sweep: {kills} kills of a legacy + OVS change, each recovered")
    assert kills >= 5
    assert ovs.vsctl("port-to-br", "vnet") == ovs.vsctl("port-to-br", "base")  # completed
