"""The hotplug watcher reads the kernel's uevents itself
(:func:`superd.hotplug.parse_uevent`): the ``net`` subsystem's, as pyudev
gave them (action, sys_name, IFINDEX, DEVPATH); a new device's queue
uevents and anything not in the kernel's format are dropped before any
decoding."""

from __future__ import annotations

from superd.hotplug import parse_uevent


def uevent(action: str, devpath: str, subsystem: str, **fields: str) -> bytes:
    items = [f"{action}@{devpath}", f"ACTION={action}", f"DEVPATH={devpath}"]
    items += [f"SUBSYSTEM={subsystem}", *(f"{k}={v}" for k, v in fields.items()), "SEQNUM=7"]
    return "\0".join(items).encode() + b"\0"


def test_a_new_bridge_is_its_action_name_ifindex_and_devpath() -> None:
    data = uevent("add", "/devices/virtual/net/bn0", "net", DEVTYPE="bridge", INTERFACE="bn0",
                  IFINDEX="12")  # fmt: skip
    assert parse_uevent(data) == ("add", "bn0", 12, "/devices/virtual/net/bn0")


def test_a_nic_on_a_bus_keeps_its_devpath() -> None:
    path = "/devices/pci0000:00/0000:00:03.0/net/eth1"
    data = uevent("remove", path, "net", INTERFACE="eth1", IFINDEX="3")
    assert parse_uevent(data) == ("remove", "eth1", 3, path)


def test_a_device_queue_is_dropped() -> None:
    assert parse_uevent(uevent("add", "/devices/virtual/net/bn0/queues/rx-0", "queues")) is None


def test_a_message_without_the_kernel_header_is_dropped() -> None:
    data = uevent("add", "/devices/virtual/net/bn0", "net", IFINDEX="12")
    assert parse_uevent(b"libudev\0" + data.partition(b"\0")[2]) is None


def test_a_uevent_without_an_ifindex_has_none() -> None:
    assert parse_uevent(uevent("add", "/devices/virtual/net/x", "net")) == (
        "add", "x", None, "/devices/virtual/net/x",
    )  # fmt: skip


def test_a_bang_in_the_sysfs_name_stands_for_a_slash_as_in_libudev() -> None:
    assert parse_uevent(uevent("add", "/devices/virtual/net/a!b", "net"))[1] == "a/b"
