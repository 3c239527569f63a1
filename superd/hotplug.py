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

pyudev opens and binds the socket; the kernel's messages are read and
split here (:func:`parse_uevent`), the way libudev reads a kernel-source
monitor: a big change creates a thousand bridges, each with three uevents
(the device and its two queues), and a pyudev ``Device`` per message (a
ctypes call per field read) cost ~12 us of Python each, taken from the
answer's path when the held uevents are handled after the change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("netreload.superd.hotplug")

OnUevent = Callable[[str, str, "int | None", str], None]
RCVBUF = 4 << 20
NETLINK_KOBJECT_UEVENT = 15
UEVENT_SIZE = 1 << 16  # the kernel's are at most a few KiB
_DONTWAIT = int(socket.MSG_DONTWAIT)  # an IntFlag operation per message is not free


def parse_uevent(data: bytes) -> tuple[str, str, int | None, str] | None:
    """``(action, name, ifindex, devpath)`` of a kernel uevent of the ``net``
    subsystem (``ACTION@DEVPATH`` then ``KEY=VALUE`` fields, NUL-separated),
    as pyudev gives them (``action``, ``sys_name``, ``IFINDEX``,
    ``DEVPATH``); None for any other message (another subsystem: a device's
    queues; one without the fields libudev requires)."""
    if b"\0SUBSYSTEM=net\0" not in data:
        return None  # most: a new device's queues (rx-0, tx-0), told apart cheaply
    header, _, rest = data.partition(b"\0")
    if b"@" not in header:
        return None  # not the kernel's format
    fields = {}
    for item in rest.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            fields[key] = value
    if fields.get(b"SUBSYSTEM") != b"net":
        return None
    action, devpath = fields.get(b"ACTION"), fields.get(b"DEVPATH")
    if not action or not devpath or b"SEQNUM" not in fields:
        return None
    path = devpath.decode("utf-8", errors="replace")
    # libudev's sysname: the path's last part, "!" standing for "/"
    name = path.rpartition("/")[2].replace("!", "/")
    index = fields.get(b"IFINDEX", b"")
    ifindex = int(index) if index.isdigit() else None
    return action.decode("ascii", errors="replace"), name, ifindex, path


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
        self._sock: socket.socket | None = None  # the monitor's, read without libudev
        self._holds = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="superd-hotplug", daemon=True)

    def start(self) -> None:
        self._monitor.start()  # bound now: nothing after this returns is missed
        self._sock = socket.fromfd(
            self._monitor.fileno(), socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT
        )
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
        if self._sock is not None:
            self._sock.close()

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
            self._receive()

    def _receive(self) -> None:
        """Hand over every queued uevent of the ``net`` subsystem."""
        assert self._sock is not None
        while True:
            try:
                data, (sender, _) = self._sock.recvfrom(UEVENT_SIZE, _DONTWAIT)
            except BlockingIOError:
                return
            except OSError as error:  # ENOBUFS: uevents were lost, go on with the next
                log.warning("uevents lost: %s", error)
                continue
            if sender != 0:
                continue  # not sent by the kernel (libudev ignores those too)
            try:
                self._dispatch(data)
            except Exception:  # one bad uevent must not stop the watcher
                log.exception("uevent not understood")

    def _dispatch(self, data: bytes) -> None:
        event = parse_uevent(data)
        if event is None:
            return
        action, name, ifindex, devpath = event
        if action not in ("add", "remove") or not name:
            return
        self._on_uevent(action, name, ifindex, devpath)
