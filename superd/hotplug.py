"""NIC hotplug: the kernel's uevents for the ``net`` subsystem, through pyudev.

No udevd runs on a minimal host (nor in tests), so the monitor listens to the
kernel's own uevent source, which the kernel sends per network namespace: a
device created in, or moved into, this namespace is an ``add``; deleted or
moved out, a ``remove``; ``move`` is a rename. A uevent says what netlink
does not: where the device sits (``DEVPATH`` under ``/devices/virtual/`` or
on a bus), which tells a real NIC from a virtual device.

The watcher owns one socket and one thread; it hands ``(action, name,
ifindex, devpath)`` to its callback. Without pyudev (the ``events`` extra)
it is simply not available, and NIC presence comes from netlink instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("netreload.superd.hotplug")

OnUevent = Callable[[str, str, "int | None", str], None]
RCVBUF = 4 << 20


def available() -> bool:
    try:
        import pyudev  # noqa: F401
    except ImportError:
        return False
    return True


class HotplugWatcher:
    def __init__(self, on_uevent: OnUevent) -> None:
        import pyudev

        self._on_uevent = on_uevent
        self._monitor: Any = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        self._monitor.filter_by("net")
        self._monitor.set_receive_buffer_size(RCVBUF)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._holds = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="superd-hotplug", daemon=True)

    def start(self) -> None:
        self._monitor.start()  # bound now: nothing after this returns is missed
        self._thread.start()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Leave uevents queued meanwhile (superd's own change: a burst of
        bridges and VLANs, none of them a NIC; decoding them would only
        compete for the CPU). They are handled after."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        if self._thread.is_alive():
            self._stopping = True
            os.write(self._wake_w, b"x")
            self._thread.join(10)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def _run(self) -> None:
        poll = select.poll()
        poll.register(self._monitor.fileno(), select.POLLIN)
        poll.register(self._wake_r, select.POLLIN)
        listening = True
        while True:
            if listening != (self._holds == 0):
                listening = not listening
                poll.modify(self._monitor.fileno(), select.POLLIN if listening else 0)
            ready = {fd for fd, _ in poll.poll()}
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
                if self._stopping:
                    return
            if not listening:
                continue
            while (device := self._monitor.poll(timeout=0)) is not None:
                try:
                    self._dispatch(device)
                except Exception:  # one bad uevent must not stop the watcher
                    log.exception("uevent not understood")

    def _dispatch(self, device: Any) -> None:
        action, name = device.action, device.sys_name
        if action not in ("add", "remove") or not name:
            return
        index = device.get("IFINDEX")
        ifindex = int(index) if index and index.isascii() and index.isdigit() else None
        self._on_uevent(action, name, ifindex, device.get("DEVPATH", ""))
