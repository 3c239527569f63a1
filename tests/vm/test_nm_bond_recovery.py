"""Bonds and VLANs under ``net_configurator = nm`` through crashes and reboots.

superd runs as a daemon (``test_nm_superd``'s ``NmSuperd``) in the test's
namespace, NetworkManager on a private bus there (``nm_lab``); the NICs are
veth pairs (NetworkManager takes a dummy device for a software device of its
own). The functional lane checks the same behaviours for bridges and NICs
(its kernel has no bonding module); here they are checked on a bond carrying
a bridged network and VLAN networks:

* setSafeNetworkConfig, a "reboot" (NetworkManager restarted with its
  in-memory profiles gone, the namespace and every device in it deleted, a
  fresh one with the same NICs) and restore-nets: the same kernel state
  (links, addresses, routes, the bond's options and slaves, the VLANs'
  parents and ids) and the same netreload-marked profiles;
* superd SIGKILLed during a bond + VLAN change (at four of its steps, each
  right after a NetworkManager call: ``kill_points``; the functional lane
  sweeps every step of a bridge change): after the restart's recovery, the
  old state or the new one, no NetworkManager checkpoint left, no stray
  profile;
* the checkpoint such a crash left (also during the connectivity wait) is
  rolled back by the recovery.

Assertions read the kernel back (``ip -j -d``, the bonding driver's sysfs
files) and NetworkManager's view through ``nmcli`` and ``dbus-send`` on the
private bus, never netreload's own client. Each request costs seconds in the
emulated guest: the changes are kept to a few networks.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ns_ip_json, ns_sysfs_read

from shared.wire import encode_frame
from tests.functional.conftest import create_host_ns, destroy_host_ns, socket_folder
from tests.functional.nm_lab import NmLab, why_no_nm
from tests.functional.superd_daemon import make_plan
from tests.functional.test_nm_superd import (
    NmSuperd,
    kill_at_each_step,
    profiles,
    send,
)

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))

NICS = 3
MARK = "org.ovirt.netreload"  # the user-setting key of netreload's profiles

#: bond1 over veth_0 and veth_1: a bridged network on it, a bridgeless VLAN
#: network and a bridged one
BONDED = (
    {
        "onbond": {"bonding": "bond1", "ipaddr": "10.1.0.1", "prefix": 24},
        "vraw": {"bonding": "bond1", "vlan": 10, "bridged": False,
                 "ipaddr": "10.10.0.1", "prefix": 24, "mtu": 1400},
        "vbr": {"bonding": "bond1", "vlan": 20, "ipaddr": "10.20.0.1", "prefix": 24},
    },
    {"bond1": {"nics": ["veth_0", "veth_1"], "options": "mode=active-backup miimon=150"}},
)  # fmt: skip


class VmSuperd(NmSuperd):
    """superd and its NetworkManager in a namespace of their own, with
    ``NICS`` NICs. As a context, it also deletes that namespace afterwards:
    the one superd is in by then (a "reboot" replaces it).

    Its start-up in the emulated guest (imports over 9p without KVM, the
    recovery's NetworkManager calls) takes tens of seconds on a busy
    machine, not the few the host's functional lane allows."""

    def __init__(self, root: Path, sock_dir: Path) -> None:
        host = create_host_ns(NICS, prefix="nrvm-nmr-")
        try:
            super().__init__(host, root, sock_dir, NmLab(host.name, root / "nm"))
        except BaseException:
            destroy_host_ns(host)
            raise

    def start(self, timeout: float = 240.0) -> None:
        super().start(timeout)

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            destroy_host_ns(self.host)


@pytest.fixture
def superd(vm_kernel_modules, tmp_path: Path) -> Iterator[NmSuperd]:
    with socket_folder("nrvm-sock-") as sock_dir, VmSuperd(tmp_path, sock_dir) as daemon:
        yield daemon


# -- read-backs ---------------------------------------------------------------------


def bonds_and_vlans(ns: str) -> dict[str, tuple]:
    """Each bond's mode, miimon and slaves (sysfs) and each VLAN's parent
    and id (``ip -j -d``)."""
    out: dict[str, tuple] = {}
    for entry in ns_ip_json(ns, "link", "show"):
        kind = entry.get("linkinfo", {}).get("info_kind")
        name = entry["ifname"]
        if kind == "bond":
            out[name] = tuple(
                ns_sysfs_read(ns, name, f"bonding/{attr}") for attr in ("mode", "miimon", "slaves")
            )
        elif kind == "vlan":
            out[name] = (entry["link"], entry["linkinfo"]["info_data"]["id"])
    return out


#: the settings read back of each profile, by its type
SETTINGS = {
    "bond": "connection.master,ipv4.method,ipv4.addresses,bond.options",
    "vlan": "connection.master,ipv4.method,ipv4.addresses,vlan.parent,vlan.id",
}
OTHER_SETTINGS = "connection.master,ipv4.method,ipv4.addresses"


def state(daemon: NmSuperd) -> tuple[dict, dict, dict]:
    """The kernel (links, addresses, routes; bonds and VLANs) and
    NetworkManager's profiles: each one's type, active device and the
    settings that say what it makes (master, addresses, bond options, VLAN)."""
    ns, lab = daemon.host.name, daemon.lab
    held = {
        name: (kind, device, lab.connection(name, SETTINGS.get(kind, OTHER_SETTINGS)))
        for name, (kind, device) in profiles(lab).items()
    }
    return daemon.kernel_state(), bonds_and_vlans(ns), held


def marked(lab: NmLab, name: str) -> bool:
    """Whether NetworkManager's profile ``name`` carries netreload's mark
    (its ``user`` setting, read with GetSettings over the private bus)."""
    out = lab.nmcli("-t", "-e", "no", "-f", "NAME,DBUS-PATH", "connection", "show")
    path = dict(line.rsplit(":", 1) for line in out.splitlines())[name]
    reply = subprocess.run(
        ["dbus-send", f"--bus={lab.address}", "--print-reply",
         "--dest=org.freedesktop.NetworkManager", path,
         "org.freedesktop.NetworkManager.Settings.Connection.GetSettings"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return f'"{MARK}"' in reply


def kill_points(steps: list[str]) -> list[int]:
    """The steps (1-based) the gating sweep kills at, a few of the change's
    (a kill costs a minute or more in the emulated guest), each just after a
    NetworkManager call: the first CheckpointCreate (the checkpoint taken,
    its path not yet written: the recovery finds it by its rollback
    timeout), the first Update2 (a profile changed), the first and the last
    ActivateConnection (bond1 re-activated; every device activated, not yet
    verified). The steps after the activations (marks, sysctls written back)
    depend on what NetworkManager left as it was: their count may differ
    from one run to the next."""
    chosen = set()
    for kind, index in (("CheckpointCreate", 0), ("Update2", 0), ("ActivateConnection", 0),
                        ("ActivateConnection", -1)):  # fmt: skip
        calls = [i for i, line in enumerate(steps) if line.endswith(f"NetworkManager {kind}")]
        chosen.add(calls[index] + 2)
    return sorted(chosen)


# -- setSafeNetworkConfig, reboot, restore-nets ---------------------------------------


def test_restore_nets_after_reboot_rebuilds_the_bonded_networks(
    superd: NmSuperd, tmp_path: Path
) -> None:
    """The safe configuration (bond1 with a bridged network and two VLAN
    networks) comes back after a reboot exactly as it was, not the change
    made after it (bond1's options and slaves, a VLAN network removed)."""
    send(superd, BONDED)
    conn = superd.connect()
    conn.result("set_safe_config")
    conn.close()
    safe = state(superd)
    send(
        superd,
        (
            {"vraw": {"remove": True}},
            {"bond1": {"nics": ["veth_0", "veth_2"], "options": "mode=active-backup miimon=300"}},
        ),
    )
    assert state(superd) != safe
    assert superd.stop() == 0
    # "Reboot": NetworkManager stopped (its in-memory profiles gone), the
    # namespace and with it bond1, its VLANs and bridges deleted, a fresh
    # one with the same NICs, /run wiped, NetworkManager started there.
    superd.lab.stop_nm()
    destroy_host_ns(superd.host)
    superd.host = create_host_ns(NICS, prefix="nrvm-nmr-")
    superd.lab.netns = superd.host.name
    shutil.rmtree(superd.root / "run" / "netconf")
    superd.lab.start_nm()
    assert profiles(superd.lab) == {}
    superd.start()
    conn = superd.connect()
    try:
        assert conn.result("restore_nets")["code"] == 0
        assert set(conn.result("netinfo")["running"]["bonds"]) == {"bond1"}
    finally:
        conn.close()
    assert state(superd) == safe
    ns = superd.host.name
    assert ns_sysfs_read(ns, "bond1", "bonding/miimon") == "150"
    held = profiles(superd.lab)
    assert held["bond1"] == ("bond", "bond1") and held["bond1.10"] == ("vlan", "bond1.10")
    assert all(marked(superd.lab, name) for name in held)
    assert superd.lab.checkpoints() == []


# -- superd killed ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(vm_kernel_modules, tmp_path_factory) -> Iterator[dict]:
    """bond1 (a bridged network, a VLAN network) changed at once: its
    options and a slave swapped, the VLAN network re-addressed, a bridged
    VLAN network added on it; superd SIGKILLed before each of the steps
    ``kill_points`` picks, restarted. What NetworkManager held at each kill
    is recorded."""
    old = (
        {
            "onbond": BONDED[0]["onbond"],
            "vraw": {"bonding": "bond1", "vlan": 10, "bridged": False,
                     "ipaddr": "10.10.0.1", "prefix": 24},
        },
        {"bond1": {"nics": ["veth_0", "veth_1"], "options": "mode=active-backup miimon=150"}},
    )  # fmt: skip
    change = (
        {
            "vraw": {"bonding": "bond1", "vlan": 10, "bridged": False,
                     "ipaddr": "10.10.0.2", "prefix": 24},
            "vbr": BONDED[0]["vbr"],
        },
        {"bond1": {"nics": ["veth_0", "veth_2"], "options": "mode=active-backup miimon=300"}},
    )  # fmt: skip
    revert = ({"vraw": old[0]["vraw"], "vbr": {"remove": True}}, old[1])
    root = tmp_path_factory.mktemp("sweep")
    with socket_folder("nrvm-sock-") as sock_dir, VmSuperd(root, sock_dir) as daemon:
        seen: dict = {"held": {}}
        send(daemon, old)

        def killed(label: str) -> None:
            seen["held"][label] = daemon.lab.checkpoints()

        seen["kills"], seconds = kill_at_each_step(
            daemon, change, revert, state, pick=kill_points, killed=killed
        )
        print(f"nm bond kill sweep: {seen['kills']} kills in {seconds:.0f} s")
        seen["audits"] = daemon.lab.audits()
        yield seen


def test_superd_killed_during_a_bond_and_vlan_change_recovers_old_or_new_state(sweep) -> None:
    """After each kill and restart: the old state or the new one (kernel,
    bond options and slaves, VLANs, profiles and their settings), no
    checkpoint, no stray profile (``kill_at_each_step`` asserts it after
    each kill)."""
    assert sweep["kills"] == len(sweep["held"]) == 4


def test_checkpoint_left_by_a_crash_mid_bond_change_is_rolled_back_by_the_recovery(
    sweep,
) -> None:
    """Killed after NetworkManager took the change's checkpoint (before
    its path was written, after bond1's profile was updated, after devices
    were re-activated): the checkpoint was still held at each kill, and the
    recovery rolled it back."""
    taken = {label: held for label, held in sweep["held"].items() if held}
    assert len(taken) == 4, sweep["held"]
    rollbacks = [line for line in sweep["audits"] if 'op="checkpoint-rollback"' in line]
    for label, held in taken.items():
        (path,) = held
        assert any(path in line and 'result="success"' in line for line in rollbacks), label


def test_superd_killed_during_the_connectivity_wait_of_a_bond_change_rolls_it_back(
    superd: NmSuperd,
) -> None:
    """A bond change (options, a slave swapped, a VLAN network added) waits
    for the engine's connectivity check with its checkpoint held; superd
    killed then: the recovery rolls the checkpoint back, the old state is
    back, no checkpoint and no stray profile left."""
    send(superd, BONDED)
    before = state(superd)
    conn = superd.connect()
    plan = make_plan(
        conn,
        {"v30": {"bonding": "bond1", "vlan": 30, "bridged": False}},
        {"connectivityCheck": True, "connectivityTimeout": 120},
        {"bond1": {"nics": ["veth_0", "veth_2"], "options": "mode=active-backup miimon=300"}},
    )
    conn.sock.sendall(encode_frame({"id": 9, "verb": "apply_plan", "args": {"plan": plan}}))
    superd.wait_for_the_connectivity_wait()
    assert ns_sysfs_read(superd.host.name, "bond1", "bonding/miimon") == "300"
    held = superd.lab.checkpoints()
    assert held
    assert superd.proc is not None
    superd.proc.kill()  # a crash: SIGKILL, not superd's SIGTERM rollback
    superd.reap_killed()
    conn.close()
    superd.start()  # recovers before it is ready
    rollbacks = [line for line in superd.lab.audits() if 'op="checkpoint-rollback"' in line]
    assert all(any(path in line for line in rollbacks) for path in held)
    assert state(superd) == before
    assert superd.lab.checkpoints() == []
