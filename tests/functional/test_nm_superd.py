"""superd with ``net_configurator = nm``: a real NetworkManager on a private
bus in the test's namespace (``nm_lab``), superd as a daemon (``superd_daemon``'s
``Superd``). Assertions read the kernel (``ip -j``) and NetworkManager
(``nmcli`` on the private bus), never netreload's own client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest

from shared.faults import FAIL_AFTER_ENV, KILL_ENV, LOG_ENV
from shared.wire import encode_frame
from tests.functional.conftest import HostNs, destroy_host_ns
from tests.functional.nm_lab import TIMEOUT, NmLab, why_no_nm
from tests.functional.superd_daemon import (
    NO_CHECK,
    Client,
    Superd,
    apply_in_background,
    assert_restore_nets_rebuilds_net_a_alone,
    bridge_net,
    error_of,
    links,
    make_plan,
    save_net_a_then_apply_net_b,
)

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))


class NmSuperd(Superd):
    """superd configured with ``net_configurator = nm`` on ``lab``'s bus.
    As a context, it starts ``lab`` before superd and stops it after."""

    def __init__(self, host: HostNs, root: Path, sock_dir: Path, lab: NmLab) -> None:
        super().__init__(host, root, sock_dir)
        self.lab = lab
        text = self.config.read_text().replace(
            "net_configurator = iproute2", "net_configurator = nm"
        )
        self.config.write_text(text + f"[nm]\nbus = {lab.address}\ntimeout = {TIMEOUT}\n")

    def __enter__(self) -> Self:
        try:
            self.lab.start()
        except BaseException:
            self.lab.stop()
            raise
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self.lab.stop()


@pytest.fixture
def make_ns(make_host_ns: Callable[..., HostNs]) -> Callable[[], HostNs]:
    return lambda: make_host_ns(2, prefix="nrs-")


@pytest.fixture
def superd(make_ns: Callable[[], HostNs], tmp_path: Path, sock_dir: Path) -> Iterator[NmSuperd]:
    host = make_ns()
    with NmSuperd(host, tmp_path, sock_dir, NmLab(host.name, tmp_path / "nm")) as daemon:
        yield daemon


def profiles(lab: NmLab) -> dict[str, tuple[str, str]]:
    """NetworkManager's profiles but the loopback's: {id: (type, device)}."""
    return {
        name: (entry["type"], entry["device"])
        for name, entry in lab.connections().items()
        if entry["type"] != "loopback"
    }


def state(daemon: NmSuperd) -> tuple[dict, dict]:
    return daemon.kernel_state(), profiles(daemon.lab)


def test_profiles_are_in_memory_and_named_after_their_devices(superd: NmSuperd) -> None:
    conn = superd.connect()
    plan = make_plan(conn, {"net_a": bridge_net("veth_0", ipaddr="192.0.2.5", prefix=24)}, NO_CHECK)
    assert conn.result("apply_plan", plan=plan)["code"] == 0
    conn.close()
    lab = superd.lab
    assert profiles(lab) == {"net_a": ("bridge", "net_a"), "veth_0": ("802-3-ethernet", "veth_0")}
    bridge = lab.connection("net_a", "connection.autoconnect,connection.master,ipv4.addresses")
    assert bridge["connection.autoconnect"] == "no"
    assert bridge["ipv4.addresses"] == "192.0.2.5/24"
    assert lab.connection("veth_0", "connection.master")["connection.master"] == "net_a"
    assert list(lab.keyfiles.iterdir()) == []  # in memory only
    assert lab.device_states()["veth_0"] == "connected"
    assert links(superd.host.name)["veth_0"]["master"] == "net_a"
    assert lab.checkpoints() == []  # destroyed on commit


def test_created_bridge_carries_netreloads_mark(superd: NmSuperd) -> None:
    conn = superd.connect()
    conn.result("apply_plan", plan=make_plan(conn, {"net_a": bridge_net("veth_0")}, NO_CHECK))
    conn.close()
    assert links(superd.host.name)["net_a"].get("ifalias") == "netreload"


def test_an_edited_networks_bridge_keeps_its_device_and_mark_without_marking_again(
    superd: NmSuperd,
) -> None:
    """NetworkManager reactivates the updated profile on the same device: no
    second mark (on an up bridge, a NETDEV_CHANGE: benchmarks/README.md, round 9)."""
    net = bridge_net("veth_0", ipaddr="192.0.2.5", prefix=24)
    send(superd, ({"net_a": net}, {}))
    before = links(superd.host.name)["net_a"]
    log = superd.root / "edit-steps.log"
    superd.stop()
    superd.env[LOG_ENV] = str(log)
    superd.start()
    send(superd, ({"net_a": {**net, "ipaddr": "192.0.2.6"}}, {}))
    after = links(superd.host.name)["net_a"]
    assert after["ifindex"] == before["ifindex"]
    assert after.get("ifalias") == "netreload"
    assert superd.lab.connection("net_a", "ipv4.addresses")["ipv4.addresses"] == "192.0.2.6/24"
    steps = log.read_text().splitlines()
    assert any("NetworkManager ActivateConnection" in step for step in steps)  # it was sent
    assert not [step for step in steps if "mark as netreload's" in step]


def old_replaced_by_net_a(superd: NmSuperd, timeout: int) -> tuple[Client, tuple, dict]:
    """``old``, a bridge on veth_1, applied; then a connection, the state,
    and the plan replacing ``old`` with net_a (192.0.2.5/24 on veth_0) under
    a connectivity check of ``timeout`` seconds."""
    conn = superd.connect()
    conn.result("apply_plan", plan=make_plan(conn, {"old": bridge_net("veth_1")}, NO_CHECK))
    plan = make_plan(
        conn,
        {"net_a": bridge_net("veth_0", ipaddr="192.0.2.5", prefix=24), "old": {"remove": True}},
        {"connectivityCheck": True, "connectivityTimeout": timeout},
    )
    return conn, state(superd), plan


def test_unconfirmed_connectivity_rolls_back_kernel_and_profiles(superd: NmSuperd) -> None:
    conn, before, plan = old_replaced_by_net_a(superd, 2)
    code, message = error_of(conn.call("apply_plan", plan=plan))
    assert code == 10 and "connectivity" in message
    assert state(superd) == before
    assert superd.lab.checkpoints() == []
    assert set(conn.result("netinfo")["running"]["networks"]) == {"old"}
    conn.close()


def test_checkpoint_is_kept_across_the_connectivity_wait_and_rolled_back(
    superd: NmSuperd,
) -> None:
    """The checkpoint of the change outlives its commit: while superd waits
    for confirm_connectivity NetworkManager still holds it, and lost
    connectivity is rolled back through it (NetworkManager's own audit
    says so), then verified: old kernel state and profiles, none left."""
    conn, before, plan = old_replaced_by_net_a(superd, 20)
    conn.sock.settimeout(180)  # a loaded machine: the rollback may take a while
    waiting, answers = apply_in_background(conn, plan)
    lab = superd.lab
    superd.wait_for_the_connectivity_wait()
    held = lab.checkpoints()
    waiting.join(180)
    conn.close()
    assert len(held) == 1
    assert answers, "no answer to apply_plan"
    code, message = error_of(answers[0])
    assert code == 10 and "connectivity" in message
    rollbacks = [line for line in lab.audits() if 'op="checkpoint-rollback"' in line]
    assert any(held[0] in line and 'result="success"' in line for line in rollbacks)
    assert state(superd) == before
    assert lab.checkpoints() == []


def test_confirmed_connectivity_destroys_the_checkpoint_and_keeps_the_change(
    superd: NmSuperd,
) -> None:
    conn = superd.connect()
    plan = make_plan(
        conn,
        {"net_a": bridge_net("veth_0", ipaddr="192.0.2.5", prefix=24)},
        {"connectivityCheck": True, "connectivityTimeout": 60},
    )
    applying, answers = apply_in_background(conn, plan)
    lab = superd.lab
    superd.wait_for_the_connectivity_wait()
    held = lab.checkpoints()
    other = superd.connect()
    try:
        assert other.result("confirm_connectivity")["code"] == 0
    finally:
        other.close()
    applying.join(30)
    conn.close()
    assert answers and answers[0]["ok"], answers
    destroyed = [line for line in lab.audits() if 'op="checkpoint-destroy"' in line]
    assert any(held[0] in line and 'result="success"' in line for line in destroyed)
    assert lab.checkpoints() == []
    assert profiles(lab) == {"net_a": ("bridge", "net_a"), "veth_0": ("802-3-ethernet", "veth_0")}
    assert links(superd.host.name)["veth_0"]["master"] == "net_a"


def test_superd_killed_during_the_connectivity_wait_recovers_through_the_checkpoint(
    superd: NmSuperd,
) -> None:
    """Killed while the change's checkpoint is held: recovery rolls it back
    (NetworkManager's audit says so) and rebuilds; old state, none left."""
    conn, before, plan = old_replaced_by_net_a(superd, 60)
    conn.sock.sendall(encode_frame({"id": 99, "verb": "apply_plan", "args": {"plan": plan}}))
    lab = superd.lab
    superd.wait_for_the_connectivity_wait()
    held = lab.checkpoints()
    assert superd.proc is not None
    superd.proc.kill()  # a crash: SIGKILL (SIGTERM is superd's own rollback)
    superd.reap_killed()
    conn.close()
    superd.start()  # recovers before it is ready
    rollbacks = [line for line in lab.audits() if 'op="checkpoint-rollback"' in line]
    assert any(held[0] in line and 'result="success"' in line for line in rollbacks)
    assert state(superd) == before
    assert lab.checkpoints() == []


def test_failure_midway_restores_kernel_and_profiles(superd: NmSuperd) -> None:
    conn = superd.connect()
    conn.result(
        "apply_plan",
        plan=make_plan(
            conn, {"old": bridge_net("veth_1", ipaddr="198.51.100.1", prefix=24)}, NO_CHECK
        ),
    )
    conn.close()
    before = state(superd)
    superd.stop()
    superd.env[FAIL_AFTER_ENV] = "2"  # fail before the third operation
    superd.start()
    conn = superd.connect()
    try:
        networks = {
            "net_a": bridge_net("veth_0"),
            "old": {"remove": True},
            "net_c": {"ipaddr": "10.9.0.1", "prefix": 24},
            "net_d": {},
        }
        code, message = error_of(conn.call("apply_plan", plan=make_plan(conn, networks, NO_CHECK)))
        assert code == 29 and "injected" in message
        assert set(conn.result("netinfo")["running"]["networks"]) == {"old"}
    finally:
        conn.close()
    assert state(superd) == before
    assert superd.lab.checkpoints() == []


def test_failed_activation_is_29_and_changes_nothing(superd: NmSuperd) -> None:
    """A blocking DHCP network with no DHCP server never activates."""
    config = superd.config.read_text().replace(f"timeout = {TIMEOUT}", "timeout = 3")
    superd.config.write_text(config)
    superd.stop()
    superd.start()
    before = state(superd)
    conn = superd.connect()
    try:
        plan = make_plan(
            conn, {"net_a": bridge_net("veth_0", bootproto="dhcp", blockingdhcp=True)}, NO_CHECK
        )
        code, message = error_of(conn.call("apply_plan", plan=plan))
        assert code == 29 and "could not activate net_a" in message
    finally:
        conn.close()
    assert state(superd) == before
    assert superd.lab.checkpoints() == []


def test_restore_nets_after_reboot_rebuilds_from_nothing(
    superd: NmSuperd, make_ns: Callable[[], HostNs]
) -> None:
    save_net_a_then_apply_net_b(superd)
    # "Reboot": NetworkManager stopped (its in-memory profiles gone), a fresh
    # namespace with the same NICs, /run wiped, NetworkManager started there.
    superd.lab.stop_nm()
    destroy_host_ns(superd.host)
    superd.host = make_ns()
    superd.lab.netns = superd.host.name
    shutil.rmtree(superd.root / "run" / "netconf")
    superd.lab.start_nm()
    assert profiles(superd.lab) == {}
    superd.start()
    assert_restore_nets_rebuilds_net_a_alone(superd)
    assert profiles(superd.lab) == {
        "net_a": ("bridge", "net_a"),
        "veth_0": ("802-3-ethernet", "veth_0"),
    }


def test_restore_nets_drops_its_strays_and_leaves_the_administrators_profile(
    superd: NmSuperd,
) -> None:
    conn = superd.connect()
    conn.result("apply_plan", plan=make_plan(conn, {"net_a": bridge_net("veth_0")}, NO_CHECK))
    conn.result("set_safe_config")
    conn.result("apply_plan", plan=make_plan(conn, {"net_b": bridge_net("veth_1")}, NO_CHECK))
    superd.lab.nmcli(
        "connection",
        "add",
        "type",
        "bridge",
        "ifname",
        "adminbr",
        "con-name",
        "adminbr",
        "autoconnect",
        "no",
    )
    # superd's running configuration forgets net_b (a crash before it was
    # recorded, say): its profiles are strays NetworkManager still holds
    superd.stop()
    for kind in ("nets",):
        (superd.root / "run" / "netconf" / kind / "net_b").unlink()
    superd.start()
    conn = superd.connect()
    try:
        assert conn.result("restore_nets")["code"] == 0
    finally:
        conn.close()
    held = profiles(superd.lab)
    assert "adminbr" in held
    assert "net_b" not in held and "veth_1" not in held
    assert {"net_a", "veth_0"} <= set(held)


#: NETRELOAD_SOAK=1 (``make soak``): the kill sweep over a 20-network change
SOAK = os.environ.get("NETRELOAD_SOAK") == "1"
SWEEP_NETWORKS = int(os.environ.get("NETRELOAD_NM_SWEEP_NETWORKS", "20" if SOAK else "4"))


def sweep_change(size: int) -> tuple[dict, dict, dict]:
    """(the networks before, a change of ``size`` networks, its revert):
    one network edited (address and MTU), one removed, one added on the
    removed one's NIC, the others added as bridges without a NIC."""
    old = {
        "keep": bridge_net("veth_0", ipaddr="10.1.0.1", prefix=24),
        "gone": bridge_net("veth_1", ipaddr="10.2.0.1", prefix=24),
    }
    change = {
        "keep": bridge_net("veth_0", ipaddr="10.1.0.2", prefix=24, mtu=1400),
        "gone": {"remove": True},
        "new0": bridge_net("veth_1", ipaddr="10.4.0.1", prefix=24),
    }
    for n in range(1, size - 2):
        change[f"new{n}"] = {"ipaddr": f"10.3.{n}.1", "prefix": 24}
    revert = {**old, **{name: {"remove": True} for name in change if name.startswith("new")}}
    return old, change, revert


#: a request: (networks, bondings)
Request = tuple[dict, dict]


def send(daemon: NmSuperd, request: Request) -> None:
    conn = daemon.connect()
    try:
        networks, bondings = request
        conn.result("apply_plan", plan=make_plan(conn, networks, NO_CHECK, bondings))
    finally:
        conn.close()


def kill_at_each_step(
    daemon: NmSuperd,
    change: Request,
    revert: Request,
    state: Callable[[NmSuperd], object] = state,
    pick: Callable[[list[str]], list[int]] | None = None,
    killed: Callable[[str], None] | None = None,
) -> tuple[int, float]:
    """The kill sweep of ``change`` from the state ``daemon`` is in (and
    back by ``revert``): superd SIGKILLed before each durable step of the
    change in turn (NetworkManager calls among them; ``pick``: the step
    numbers, 1-based, chosen from the step labels), restarted (its recovery
    runs before it is ready): each time the state is the old one or the new
    one, and NetworkManager holds no checkpoint. ``killed(step label)`` is
    called after each kill, before the restart. (kills, seconds)."""
    before = state(daemon)
    log = daemon.root / "steps.log"
    log.unlink(missing_ok=True)
    daemon.stop()
    daemon.env[LOG_ENV] = str(log)
    daemon.start()
    send(daemon, change)
    after = state(daemon)
    daemon.stop()
    del daemon.env[LOG_ENV]
    daemon.start()
    steps = log.read_text().splitlines()
    assert any("NetworkManager" in line for line in steps)
    send(daemon, revert)
    assert state(daemon) == before
    chosen = list(range(1, len(steps) + 1)) if pick is None else pick(steps)
    started = time.monotonic()
    trial = daemon.root / "trial-steps.log"
    for step in chosen:
        daemon.stop()
        trial.unlink(missing_ok=True)
        daemon.env.update({KILL_ENV: str(step), LOG_ENV: str(trial)})
        daemon.start()
        conn = daemon.connect()
        networks, bondings = change
        try:  # killed before it answers
            answer = conn.call("apply_plan", plan=make_plan(conn, networks, NO_CHECK, bondings))
        except (AssertionError, OSError):
            answer = None
        conn.close()
        if answer is not None and daemon.proc is not None and daemon.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.proc.wait(timeout=10)  # a step after the answer
            assert daemon.proc.poll() is not None, (
                f"the change ended without step {step} ({steps[step - 1]}): {answer}; "
                f"this time:\n{trial.read_text() if trial.exists() else ''}"
                f"the first time:\n{log.read_text()}"
            )
        daemon.reap_killed()
        if killed is not None:
            killed(steps[step - 1])
        del daemon.env[KILL_ENV], daemon.env[LOG_ENV]
        daemon.start()  # recovers before it is ready
        now = state(daemon)
        assert now in (before, after), f"killed at step {steps[step - 1]}"
        assert daemon.lab.checkpoints() == [], f"killed at step {steps[step - 1]}"
        if now == after:  # completed before the kill: back to before for the next round
            send(daemon, revert)
        assert state(daemon) == before
    return len(chosen), time.monotonic() - started


def test_superd_killed_at_each_step_leaves_old_or_new_state(superd: NmSuperd) -> None:
    """A change of SWEEP_NETWORKS networks (20 under NETRELOAD_SOAK=1; one
    removed, one edited, the others added), superd SIGKILLed before each of
    its durable steps (NetworkManager calls among them); the restarted
    superd recovers: the old state exactly, no checkpoint left, no stray
    profile."""
    old, change, revert = sweep_change(SWEEP_NETWORKS)
    send(superd, (old, {}))
    kills, seconds = kill_at_each_step(superd, (change, {}), (revert, {}))
    print(f"nm kill sweep: {len(change)} networks, {kills} kills in {seconds:.0f} s")


def test_networkmanager_unreachable_is_33_and_changes_nothing(superd: NmSuperd) -> None:
    conn = superd.connect()
    conn.result("apply_plan", plan=make_plan(conn, {"old": bridge_net("veth_1")}, NO_CHECK))
    before = superd.kernel_state()
    running = conn.result("netinfo")["running"]
    superd.lab.stop_nm()
    try:
        plan = make_plan(conn, {"net_a": bridge_net("veth_0"), "old": {"remove": True}}, NO_CHECK)
        code, message = error_of(conn.call("apply_plan", plan=plan))
        assert code == 33 and "NetworkManager" in message
        assert conn.result("netinfo")["running"] == running
    finally:
        conn.close()
    assert superd.kernel_state() == before


def test_networkmanager_down_when_superd_starts_is_33_and_changes_nothing(
    superd: NmSuperd,
) -> None:
    conn = superd.connect()
    conn.result("apply_plan", plan=make_plan(conn, {"old": bridge_net("veth_1")}, NO_CHECK))
    conn.close()
    before = superd.kernel_state()
    superd.lab.stop_nm()
    superd.stop()
    superd.start()  # serves without NetworkManager: netinfo is the kernel's
    conn = superd.connect()
    try:
        running = conn.result("netinfo")["running"]
        plan = make_plan(conn, {"net_a": bridge_net("veth_0"), "old": {"remove": True}}, NO_CHECK)
        code, message = error_of(conn.call("apply_plan", plan=plan))
        assert code == 33 and "NetworkManager" in message
        assert conn.result("netinfo")["running"] == running
    finally:
        conn.close()
    assert superd.kernel_state() == before
