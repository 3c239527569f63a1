"""How many states the live netinfo publishes for one small change of
superd's own (each state is a copy-on-write of the host-sized mappings a
batch writes, a touched-set logged, the listeners called): a refresh
applies the queued notifications and reads the named links again in one
batch, published once."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.functional.conftest import HostNs
from tests.functional.monitor_lab import autoconf, force_batch, monitor_config, watching


def test_a_refresh_after_queued_events_publishes_one_state(host: HostNs, tmp_path: Path) -> None:
    config = monitor_config(tmp_path)
    force_batch(host.name, ["link add nrlbr1 type bridge"])
    with watching(host.name, config) as (live, _ipr):
        live.sync()
        with live.held():  # superd's own change: its notifications wait
            force_batch(
                host.name, ["link add nrlbr0 type bridge", "addr add 10.0.0.1/24 dev nrlbr0"]
            )
            for name in ("nrlbr0", "nrlbr1"):  # no event: only the read again sees it
                subprocess.run(["ip", "netns", "exec", host.name, "sysctl", "-qw",
                                f"net.ipv6.conf.{name}.autoconf=0"], check=True)  # fmt: skip
            before = live.version
            state = live.refresh({"nrlbr0", "nrlbr1"})
        assert state.version == before + 1
        (index,) = [i for i, x in state.links.items() if x["name"] == "nrlbr0"]
        assert [a["address"] for a in state.addresses[index]] == ["10.0.0.1"]
        assert autoconf(live, "nrlbr0") == 0 and autoconf(live, "nrlbr1") == 0
        assert state.touched is not None and index in state.touched


def test_notifications_wait_while_held(host: HostNs, tmp_path: Path) -> None:
    """A change superd makes under held() is applied by the refresh that
    follows it, as one batch: none of its notifications is drained in the
    middle of it (the monitor was polling the socket when held() began)."""
    config = monitor_config(tmp_path)
    with watching(host.name, config) as (live, _ipr):
        live.sync()
        before = live.version
        with live.held():
            force_batch(
                host.name, ["link add nrlbr0 type bridge", "addr add 10.0.0.1/24 dev nrlbr0"]
            )
            time.sleep(0.3)  # the monitor's chance to wake on them
            assert live.version == before
            force_batch(host.name, ["link set nrlbr0 up"])
            state = live.refresh({"nrlbr0"})
        assert state.version == before + 1
        (index,) = [i for i, x in state.links.items() if x["name"] == "nrlbr0"]
        assert state.links[index]["flags"] & 0x1  # IFF_UP: the whole change in it
