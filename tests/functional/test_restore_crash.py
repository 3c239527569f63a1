"""superd killed (SIGKILL) inside restore-nets at boot: the restore still happens.

restore-nets runs once at boot (its systemd unit is a oneshot). Undoing an
interrupted one would leave the host without its networks — and the engine
without its host — so:

* recovery finishes it: once its journal is written, the next superd
  rebuilds the persistent configuration (``superd.repair.recover_transaction``);
* ``restore-nets --direct`` asks again while superd is away (killed before
  the journal, or restarting), until ``--retry-for`` runs out.

A "boot" here: a fresh namespace with the same NICs and superd's run folder
emptied (``/run`` is a tmpfs); the persistent configuration under ``lib``
stays. The sweep learns what an uninterrupted restore makes of the kernel,
then kills restore-nets at each of its steps in turn (``shared.faults``),
starts superd again and asserts the kernel and running configuration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.faults import KILL_ENV, LOG_ENV
from shared.wire import encode_frame, recv_frame
from tests.functional.conftest import HostNs, destroy_host_ns, socket_folder
from tests.functional.superd_daemon import REPO, Superd, error_of, make_plan
from tests.functional.test_crash_recovery import kernel_state, running_docs

NICS = 4
PERSISTED = {
    "mgmt": {"nic": "veth_0", "bridged": True, "ipaddr": "192.0.2.2", "prefix": 24,
             "gateway": "192.0.2.1", "defaultRoute": True},
    "store": {"nic": "veth_1", "bridged": False, "ipaddr": "198.51.100.2", "prefix": 24,
              "ipv6addr": "2001:db8:1::2/64"},
    "vms": {"nic": "veth_2", "bridged": True, "mtu": 1400},
}  # fmt: skip


@pytest.fixture
def superd(make_host_ns: Callable[..., HostNs], tmp_path: Path) -> Iterator[Superd]:
    with socket_folder("nrr-sock-") as sock_dir:
        daemon = Superd(make_host_ns(NICS, prefix="nrr-"), tmp_path, sock_dir)
        try:
            yield daemon
        finally:
            daemon.kill()


def reboot(superd: Superd, make_host_ns: Callable[..., HostNs]) -> None:
    """A host that just booted: NICs unconfigured, /run empty, /var/lib kept."""
    destroy_host_ns(superd.host)
    superd.host = make_host_ns(NICS, prefix="nrr-")
    shutil.rmtree(superd.root / "run")
    (superd.root / "run").mkdir()


def restore_nets(superd: Superd) -> dict | None:
    """superd's answer to restore_nets, or None if it died first."""
    conn = superd.connect()
    try:
        conn.sock.sendall(encode_frame({"id": 1, "verb": "restore_nets", "args": {}}))
        return recv_frame(conn.sock)
    except OSError:
        return None
    finally:
        conn.close()


def booted_state(superd: Superd) -> tuple[dict, dict]:
    return kernel_state(superd.host.name), running_docs(superd.root)


def persist(superd: Superd) -> None:
    superd.start()
    conn = superd.connect()
    options = {"commitOnSuccess": True, "connectivityCheck": False}
    conn.result("apply_plan", plan=make_plan(conn, PERSISTED, options))
    conn.close()
    superd.stop()


def recovery_events(superd: Superd) -> list[dict]:
    conn = superd.connect()
    try:
        events = conn.result("events", after=-1, timeout=0)["events"]
    finally:
        conn.close()
    return [e for e in events if e["kind"] in ("transaction_recovered", "recovery_failed")]


def test_superd_killed_at_each_step_of_restore_nets_finishes_it_at_start(
    superd: Superd, make_host_ns: Callable[..., HostNs]
) -> None:
    persist(superd)
    # what an uninterrupted restore at boot makes, and how many steps it takes
    reboot(superd, make_host_ns)
    booted = booted_state(superd)
    steps_log = superd.root / "steps.log"
    superd.env[LOG_ENV] = str(steps_log)
    superd.start()
    answer = restore_nets(superd)
    assert answer is not None and answer["ok"], error_of(answer)
    superd.stop()
    del superd.env[LOG_ENV]
    steps = len(steps_log.read_text().splitlines())
    restored = booted_state(superd)
    assert set(restored[1]["nets"]) == set(PERSISTED)
    assert steps >= 10, steps
    finished = 0
    for step in range(1, steps + 1):
        reboot(superd, make_host_ns)
        superd.env[KILL_ENV] = str(step)
        superd.start()
        assert restore_nets(superd) is None, f"superd not killed at step {step} of {steps}"
        assert superd.proc is not None and superd.proc.wait(timeout=30) == -9
        superd.proc = None
        del superd.env[KILL_ENV]
        started = (superd.root / "run" / "transaction.journal").exists()
        superd.start()  # recovers before READY=1
        assert not (superd.root / "run" / "transaction.journal").exists()
        where = f"killed at step {step} of {steps}"
        if not started:  # killed before the restore's journal: it never began
            assert booted_state(superd) == booted, where
            assert recovery_events(superd) == [], where
        else:
            assert booted_state(superd) == restored, where
            (event,) = recovery_events(superd)
            assert event["kind"] == "transaction_recovered", where
            assert event["verb"] == "restore_nets" and event["outcome"] == "completed", where
            assert event["networks"] == sorted(PERSISTED), where
            finished += 1
        superd.stop()
    assert finished >= steps - 1  # all but a kill before the journal was written
    print(f"\nrestore-nets crash sweep: {steps} kills, {finished} finished at start-up")


def test_restore_nets_direct_asks_again_when_superd_dies_before_it_began(
    superd: Superd, make_host_ns: Callable[..., HostNs]
) -> None:
    persist(superd)
    reboot(superd, make_host_ns)
    superd.env[KILL_ENV] = "1"  # before the restore's journal: nothing to recover
    superd.start()
    cli = subprocess.Popen(
        ["ip", "netns", "exec", superd.host.name, sys.executable, "-m", "frontd.cli",
         "--config", str(superd.config), "restore-nets", "--direct", "--retry-for", "60",
         "--json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert superd.proc is not None and superd.proc.wait(timeout=30) == -9
        superd.proc = None
        del superd.env[KILL_ENV]
        time.sleep(1.5)  # the service manager's restart delay: the CLI waits it out
        superd.start()
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err
    assert "asking again" in err
    assert json.loads(out)["networks"] == sorted(PERSISTED)
    assert set(running_docs(superd.root)["nets"]) == set(PERSISTED)
    links = kernel_state(superd.host.name)["links"]
    assert links["mgmt"][3] == "bridge" and links["veth_0"][1] == "mgmt"
