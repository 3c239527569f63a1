"""netreload's devices held down, answered by superd's live monitor.

``superd.admin_state.marked_down(names, live)`` answers from the monitor's
state (no dump of the host's links) once the monitor has applied every
event queued before the question (``LiveNetinfo.current``): a change made
just before is in the answer even when its event was not read yet. When
the monitor cannot vouch for its state (a resync failed, or it stopped),
the kernel is read instead.

The monitor watches the test's namespace from here (``LiveNetinfo(netns=)``)
for the first tests: its answer cannot come from this process's own
namespace, which has none of the devices. The fallback runs in a child
under ``ip netns exec``, where the kernel read sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from superd.admin_state import marked_down
from superd.monitor import LiveNetinfo
from tests.functional.conftest import HostNs
from tests.functional.monitor_lab import monitor_config, watching
from tests.functional.ns_exec import run_json

PREFIX = "helddown2-"
DEVICES = [
    "link add mine type bridge", "link set mine alias netreload",
    "link add mine_up type bridge", "link set mine_up alias netreload", "link set mine_up up",
    "link add theirs type bridge", "link set veth_0 down",
]  # fmt: skip
ASKED = ["mine", "mine_up", "theirs", "veth_0", "absent"]


def is_up_in(live: LiveNetinfo, name: str) -> bool:
    link = next(x for x in live.snapshot().links.values() if x["name"] == name)
    return bool(link["flags"] & 0x1)


def test_the_monitor_answers_only_marked_devices_held_down(
    make_host_ns: Callable[..., HostNs], tmp_path: Path
) -> None:
    host = make_host_ns(2, prefix=PREFIX)
    host.batch(DEVICES)
    with watching(host.name, monitor_config(tmp_path)) as (live, _):
        assert marked_down(ASKED, live) == {"mine"}


def test_a_device_set_down_whose_event_is_not_read_yet_is_answered_down(
    make_host_ns: Callable[..., HostNs], tmp_path: Path
) -> None:
    host = make_host_ns(2, prefix=PREFIX)
    host.batch(DEVICES)
    with watching(host.name, monitor_config(tmp_path)) as (live, _):
        live.sync()
        with live.held():  # the monitor leaves the notifications queued
            host.ip("link", "set", "mine_up", "down")
            assert is_up_in(live, "mine_up")  # the state of before: stale
            assert marked_down(ASKED, live) == {"mine", "mine_up"}


FALLBACK = """
import json, subprocess, sys, threading
from pathlib import Path

from netlink import query
from superd.admin_state import marked_down
from superd.monitor import LiveNetinfo
from tests.functional.monitor_lab import monitor_config
from tests.functional.test_monitor_answer_timeout import SilenceableSocket

query.ANSWER_TIMEOUT = 0.5  # a resync without answer fails fast
ns, root = sys.argv[1], Path(sys.argv[2])
silent = threading.Event()
live = LiveNetinfo(monitor_config(root), socket_factory=lambda: SilenceableSocket(ns, silent))
live.start(timeout=30)
out = {}
try:
    silent.set()
    try:
        live.resync(timeout=30)
    except Exception:
        pass  # out of sync: it retries, and fails while the kernel is silent
    with live.held():  # the change unread: the monitor's state says "up"
        subprocess.run(["ip", "link", "set", "mine_up", "down"], check=True)
        out["resyncing"] = sorted(marked_down(["mine", "mine_up", "theirs"], live))
finally:
    live.close()
subprocess.run(["ip", "link", "set", "mine", "up"], check=True)
out["stopped"] = sorted(marked_down(["mine", "mine_up", "theirs"], live))
print(json.dumps(out))
"""


def test_a_monitor_that_cannot_vouch_for_its_state_leaves_the_answer_to_the_kernel(
    make_host_ns: Callable[..., HostNs], tmp_path: Path
) -> None:
    host = make_host_ns(2, prefix=PREFIX)
    host.batch(DEVICES)
    out = run_json(host.name, FALLBACK, host.name, str(tmp_path), timeout=120)
    assert out == {"resyncing": ["mine", "mine_up"], "stopped": ["mine_up"]}
