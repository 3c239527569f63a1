"""A full resync drops what the monitor's event socket queued by replacing
the socket (the kernel frees the queue), not by reading it away: a big
change held thousands of notifications (8,000 at 1,000 networks, ~2 µs
each to read). The new socket joins the groups before the dump, so a
change made afterwards, by anyone, is seen, while held and after."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from superd.monitor import LiveNetinfo
from tests.functional.conftest import HostNs
from tests.functional.monitor_lab import force_batch, monitor_config


class _Counting:
    """A real netlink socket of the monitor's, counting ``recv_into`` (the
    event socket's reads; the dumps use ``recv``)."""

    def __init__(self, sock: Any, reads: list[int]) -> None:
        self._sock, self._reads = sock, reads

    def recv_into(self, *args: Any) -> int:
        self._reads[0] += 1
        return self._sock.recv_into(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _CountingMonitor(LiveNetinfo):
    reads = [0]

    def _request_socket(self) -> Any:
        return _Counting(super()._request_socket(), self.reads)


def _bridges(live: LiveNetinfo) -> set[str]:
    return {x["name"] for x in live.snapshot().links.values() if x["name"].startswith("nrlb")}


def _wait_for(live: LiveNetinfo, name: str, timeout: float = 10.0) -> bool:
    """Whether the monitor sees ``name`` on its own (no sync asked)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in _bridges(live):
            return True
        time.sleep(0.05)
    return False


def test_a_resync_after_a_held_burst_reads_none_of_it(host: HostNs, tmp_path: Path) -> None:
    live = _CountingMonitor(monitor_config(tmp_path), netns=host.name)
    live.start()
    try:
        live.sync()
        with live.held():
            burst = []
            for i in range(100):
                burst += [f"link add nrlb{i} type bridge", f"addr add 10.{i}.0.1/24 dev nrlb{i}",
                          f"link set nrlb{i} up"]  # fmt: skip
            force_batch(host.name, burst)
            live.reads[0] = 0
            live.resync()
            assert live.reads[0] == 0
            assert len(_bridges(live)) == 100
    finally:
        live.close()


def test_a_change_after_a_resync_is_seen_held_and_after(host: HostNs, tmp_path: Path) -> None:
    live = LiveNetinfo(monitor_config(tmp_path), netns=host.name)
    live.start()
    try:
        with live.held():
            force_batch(host.name, ["link add nrlb0 type bridge"])
            live.resync()
            force_batch(host.name, ["link add nrlb1 type bridge"])  # queued on the new socket
            live.refresh(())  # applies what is queued
            assert "nrlb1" in _bridges(live)
        force_batch(host.name, ["link add nrlb2 type bridge"])
        assert _wait_for(live, "nrlb2")  # the new socket is polled: seen unasked
    finally:
        live.close()


class _NoNewSockets(LiveNetinfo):
    """A monitor that can make no socket once started (out of descriptors)."""

    started = False

    def _request_socket(self) -> Any:
        if self.started:
            raise OSError(24, "Too many open files")
        return super()._request_socket()


def test_a_resync_without_a_new_socket_reads_the_old_one_empty(
    host: HostNs, tmp_path: Path
) -> None:
    live = _NoNewSockets(monitor_config(tmp_path), netns=host.name)
    live.start()
    live.started = True
    try:
        with live.held():
            force_batch(host.name, [f"link add nrlb{i} type bridge" for i in range(20)])
            live.resync()
            assert len(_bridges(live)) == 20
        force_batch(host.name, ["link add nrlb20 type bridge"])
        assert _wait_for(live, "nrlb20")  # the old socket still listens
    finally:
        live.close()
