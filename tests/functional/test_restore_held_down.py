"""restore-nets finishes netreload's own devices that the kernel holds down.

The iproute2 configurator creates a bridge down, marks it, and sets it up
last (``test_bridge_marked_before_up.py``); superd killed in between leaves
a bridge the running and persistent configurations both describe, that the
capabilities report shows complete (it has no link state) and that is down.
The rebuild (restore-nets, the recovery of an interrupted restore-nets or
transaction) reads the admin state of the networks' own bridges and VLAN
devices and rebuilds those held down (``superd.admin_state``).

Only netreload's devices: a NIC the administrator set down stays down.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.conftest import HostNs, socket_folder
from tests.functional.ns_exec import run_json
from tests.functional.superd_daemon import Superd, error_of
from tests.functional.test_crash_recovery import kernel_state
from tests.functional.test_restore_crash import NICS, persist, restore_nets


@pytest.fixture
def superd(make_host_ns: Callable[..., HostNs], tmp_path: Path) -> Iterator[Superd]:
    with socket_folder("nrd-sock-") as sock_dir:
        daemon = Superd(make_host_ns(NICS, prefix="nrd-"), tmp_path, sock_dir)
        try:
            yield daemon
        finally:
            daemon.kill()


def set_down(ns: str, device: str) -> None:
    subprocess.run(["ip", "-n", ns, "link", "set", device, "down"], check=True)


def is_up(ns: str, device: str) -> bool:
    return kernel_state(ns)["links"][device][2]


def restored(superd: Superd) -> None:
    superd.start()
    answer = restore_nets(superd)
    assert answer is not None and answer["ok"], error_of(answer)
    superd.stop()


def test_a_persisted_bridge_held_down_at_start_is_brought_up_by_restore_nets(
    superd: Superd,
) -> None:
    persist(superd)  # "vms": a bridge on veth_2, up, persisted and running
    ns = superd.host.name
    before = kernel_state(ns)
    set_down(ns, "vms")  # as superd killed between its creation and its up leaves it
    assert not is_up(ns, "vms")
    restored(superd)
    assert kernel_state(ns) == before  # up again, with its port, MTU, the rest unchanged


def test_a_nic_the_admin_set_down_stays_down_after_restore_nets(superd: Superd) -> None:
    persist(superd)
    ns = superd.host.name
    set_down(ns, "veth_2")  # the port of "vms": the administrator's, not netreload's
    restored(superd)
    assert not is_up(ns, "veth_2")
    assert is_up(ns, "vms")


READ_DOWN = """
import json, sys
from superd.admin_state import marked_down
print(json.dumps(sorted(marked_down(sys.argv[1:]))))
"""


def test_only_marked_devices_held_down_are_read_as_down(host_ns: HostNs) -> None:
    # one by one (a few names) and by one dump (past ONE_BY_ONE) alike
    many = [f"br{i}" for i in range(20)]
    host_ns.batch(
        ["link add mine type bridge", "link set mine alias netreload",
         "link add mine_up type bridge", "link set mine_up alias netreload",
         "link set mine_up up", "link add theirs type bridge", "link set veth_0 down"]
        + [f"link add {name} type bridge" for name in many]
        + [f"link set {name} alias netreload" for name in many[::2]]
    )  # fmt: skip
    few = ["mine", "mine_up", "theirs", "veth_0", "absent"]
    assert run_json(host_ns.name, READ_DOWN, *few) == ["mine"]
    assert run_json(host_ns.name, READ_DOWN, *few, *many) == sorted(["mine", *many[::2]])
