"""superd's life as a process (``superd_daemon``'s daemon): SIGTERM (also
during a connectivity wait: rolled back), a second superd on its socket, a
restart that writes nothing to the kernel, and restore-nets after a reboot.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import pytest

from tests.functional.conftest import HostNs, destroy_host_ns, ip_json, netlink_events
from tests.functional.superd_daemon import (
    NO_CHECK,
    Client,
    Superd,
    assert_closed,
    assert_restore_nets_rebuilds_net_a_alone,
    bridge_net,
    error_of,
    is_bridge,
    make_plan,
    net_a_held_in_its_connectivity_wait,
    save_net_a_then_apply_net_b,
    wait_until,
)


def test_sigterm_exits_zero_and_removes_the_socket(superd: Superd, client: Client) -> None:
    client.result("ping")
    assert superd.stop() == 0
    assert superd.notified(b"STOPPING=1", timeout=1)
    assert not superd.socket.exists()
    assert "superd stopped" in superd.log_text()
    assert_closed(client)


def test_second_superd_on_the_same_socket_refuses_to_start(superd: Superd) -> None:
    second = superd.spawn()
    try:
        assert second.wait(timeout=60) == 1
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=30)
    assert "another superd listens" in superd.log_text()
    conn = superd.connect()  # the first one still serves, its socket untouched
    try:
        assert conn.result("ping") == "pong"
    finally:
        conn.close()


def test_sigterm_during_connectivity_wait_rolls_back(superd: Superd, client: Client) -> None:
    before = superd.kernel_state()
    applying, answers, _ = net_a_held_in_its_connectivity_wait(superd, client, 30)
    started = time.monotonic()
    assert superd.stop() == 0
    assert time.monotonic() - started < 15, "the wait was cut short"
    applying.join(10)
    assert answers and error_of(answers[0])[0] == 10, answers
    assert superd.kernel_state() == before
    assert not any((superd.root / "run" / "netconf" / "nets").iterdir())


def test_restart_leaves_the_network_untouched(superd: Superd) -> None:
    first = superd.connect()
    first.result("apply_plan", plan=make_plan(first, {"net_a": bridge_net("veth_0")}, NO_CHECK))
    first.close()
    ns = superd.host.name
    # The kernel's own link-local (DAD) events are not superd's.
    wait_until(lambda: not ip_json(ns, "-6", "addr", "show", "tentative"))
    time.sleep(0.3)
    state = superd.kernel_state()
    with netlink_events(ns) as events:
        assert superd.stop() == 0
        superd.start()
    assert events == [], "superd wrote to the kernel while stopping or starting"
    assert superd.kernel_state() == state
    second = superd.connect()
    try:
        assert second.result("ping") == "pong"
        assert set(second.result("netinfo")["running"]["networks"]) == {"net_a"}
    finally:
        second.close()
    assert superd.kernel_state() == state


@pytest.mark.parametrize("wipe_run_dir", [True, False], ids=["run-wiped", "run-survived"])
def test_restore_nets_after_reboot_rebuilds_the_persistent_config(
    superd: Superd, make_ns: Callable[[], HostNs], wipe_run_dir: bool
) -> None:
    save_net_a_then_apply_net_b(superd)
    # "Reboot": a fresh namespace with the same NICs, /run wiped (or not).
    destroy_host_ns(superd.host)
    superd.host = make_ns()
    if wipe_run_dir:
        shutil.rmtree(superd.root / "run" / "netconf")
    superd.start()
    ns = superd.host.name
    assert not is_bridge(ns, "net_a") and not is_bridge(ns, "net_b")
    assert_restore_nets_rebuilds_net_a_alone(superd)
