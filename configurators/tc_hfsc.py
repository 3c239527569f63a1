"""Host network QoS on the kernel: HFSC trees through netlink (pyroute2's tc).

The tree each NIC or bond should hold is computed purely
(``shared.netmodel.host_qos.wanted_trees``) from the running
configuration; :class:`HfscApplier.sync` reads what the kernel holds,
rebuilds the trees that differ, removes netreload's trees no network asks
for any more, and reads the result back (a difference is 29, and the
transaction rolls back). Called at the end of every transaction, a
rollback's and restore-nets' included, it is idempotent: a tree already as
wanted is not touched.

A tree is rebuilt whole (root qdisc deleted and added again, which drops
its classes, filters and leaf qdiscs): an edit of one network's curves
briefly resets the device's queues, as the production agent's class
replacement does. Only a root qdisc with netreload's handle is ever
deleted; a device whose root qdisc another agent set (any handle but the
kernel's default 0 and netreload's) is not shaped: 29.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from netlink import constants, query
from shared.errors import ErrorCode, NetError
from shared.netmodel.host_qos import (
    CURVES,
    DEFAULT_MINOR,
    LEAF_QDISC,
    ROOT_MAJOR,
    DeviceQos,
    KernelCurve,
    devices_to_change,
    wanted_trees,
)

log = logging.getLogger("netreload.tc")

ROOT_HANDLE = ROOT_MAJOR << 16
TC_H_ROOT = 0xFFFFFFFF
ETH_P_ALL = 0x0003
_ATTR_CURVE = {f"TCA_HFSC_{c.netlink.upper()}": name for name, c in CURVES.items()}


def _minor(handle: int) -> int:
    return handle & 0xFFFF


def _attrs(msg: Any) -> dict[str, Any]:
    return dict(msg.get("attrs", ()))


def _curves(options: Any) -> dict[str, KernelCurve]:
    out: dict[str, KernelCurve] = {}
    for name, value in (options or {}).get("attrs", ()):
        kind = _ATTR_CURVE.get(name)
        if kind is not None and (value["m1"] or value["d"] or value["m2"]):
            out[kind] = (value["m1"], value["d"], value["m2"])
    return out


@contextlib.contextmanager
def _quiet_pyroute2() -> Iterator[None]:
    """pyroute2 0.9.7 encodes the ``meta`` ematch but cannot decode it back
    (it logs a traceback per filter): its decoding is not used (a filter
    is known by its preference, which is its VLAN tag, and its class)."""
    logger = logging.getLogger("pyroute2.netlink")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def root_qdiscs(ipr: Any, raw: socket.socket | None = None) -> dict[int, Mapping[str, Any]]:
    """{ifindex: its root qdisc} of every device (one dump); through
    ``raw``, a NETLINK_ROUTE socket, when given (pyroute2 takes ~50 ms to
    parse the thousand noqueue qdiscs of a host of a thousand bridges)."""
    if raw is not None:
        try:
            dumped = [msg.body for msg in query.dump(raw, constants.RTM_GETQDISC)]
        except OSError as exc:
            raise NetError(ErrorCode.FAILED_IFUP, f"hostQos: dump qdiscs: {exc}") from None
        return {
            qdisc["index"]: {"kind": qdisc["kind"], "handle": qdisc["handle"]}
            for qdisc in dumped
            if qdisc["parent"] == TC_H_ROOT
        }
    return {
        msg["index"]: {"kind": _attrs(msg).get("TCA_KIND"), "handle": msg["handle"]}
        for msg in ipr.get_qdiscs()
        if msg["parent"] == TC_H_ROOT
    }


def is_ours(root: Mapping[str, Any] | None) -> bool:
    return root is not None and root["kind"] == "hfsc" and root["handle"] == ROOT_HANDLE


def read_tree(ipr: Any, index: int) -> DeviceQos:
    """The classes and VLAN filters under netreload's root qdisc of a device."""
    classes = {}
    for msg in ipr.get_classes(index=index):
        attrs = _attrs(msg)
        if attrs.get("TCA_KIND") != "hfsc" or msg["handle"] >> 16 != ROOT_MAJOR:
            continue
        curves = _curves(attrs.get("TCA_OPTIONS"))
        if curves:  # the root class has none
            classes[_minor(msg["handle"])] = curves
    filters = {}
    with _quiet_pyroute2():
        messages = list(ipr.get_filters(index=index, parent=ROOT_HANDLE))
    for msg in messages:
        attrs = _attrs(msg)
        options = attrs.get("TCA_OPTIONS")
        if attrs.get("TCA_KIND") != "basic" or not options:
            continue
        classid = dict(options.get("attrs", ())).get("TCA_BASIC_CLASSID")
        if classid is not None and classid >> 16 == ROOT_MAJOR:
            filters[msg["info"] >> 16] = _minor(classid)  # its preference: the tag
    return DeviceQos(classes, filters)


def read_trees(ipr: Any, indexes: Mapping[str, int]) -> dict[str, DeviceQos | None]:
    """{device: its tree of netreload's, or None} for the named devices."""
    roots = root_qdiscs(ipr)
    return {
        name: read_tree(ipr, index) if is_ours(roots.get(index)) else None
        for name, index in indexes.items()
    }


class HfscApplier:
    """Brings the kernel's HFSC trees to what the running configuration's
    networks ask for, through ``ipr`` (a pyroute2 IPRoute)."""

    def __init__(self, ipr: Any, raw: socket.socket | None = None) -> None:
        self.ipr = ipr
        self.raw = raw  # for the root qdisc dump (see root_qdiscs)

    def _request(self, device: str, what: str, *args: Any, **kwargs: Any) -> None:
        try:
            self.ipr.tc(*args, **kwargs)
        except NetlinkError as exc:
            raise NetError(
                ErrorCode.FAILED_IFUP, f"{device}: hostQos: {what}: {exc.args[-1]}"
            ) from None

    def sync(self, networks: Mapping[str, Mapping], links: Mapping[str, int]) -> list[str]:
        """Apply ``networks``' hostQos; ``links``: {name: ifindex} of the
        devices that exist. The devices whose tree changed."""
        wanted = wanted_trees(networks)
        roots = root_qdiscs(self.ipr, self.raw)
        names = {index: name for name, index in links.items()}
        ours = {names[i] for i, root in roots.items() if is_ours(root) and i in names}
        present = {d for d in wanted if d in links}
        current = {
            d: read_tree(self.ipr, links[d]) if d in ours else None for d in present | ours
        }
        missing = sorted(set(wanted) - present)
        if missing:  # a NIC gone (unplugged): its networks are reported missing
            log.warning("hostQos: no device %s to shape", ", ".join(missing))
        build, drop = devices_to_change({d: wanted[d] for d in present}, current)
        for device in drop:
            self._request(device, "delete root qdisc", "del", "hfsc", links[device],
                          handle=ROOT_HANDLE, parent=TC_H_ROOT)  # fmt: skip
        for device in build:
            self._build(device, links[device], roots.get(links[device]), wanted[device])
        for device in build:
            got = read_tree(self.ipr, links[device])
            if got != wanted[device]:
                raise NetError(
                    ErrorCode.FAILED_IFUP,
                    f"{device}: hostQos: the kernel holds {got.to_dict()}, not"
                    f" {wanted[device].to_dict()}",
                )
        if build or drop:
            log.info("hostQos: built %s, removed %s", build or "-", drop or "-")
        return build + drop

    def _build(
        self, device: str, index: int, root: Mapping[str, Any] | None, tree: DeviceQos
    ) -> None:
        if root is not None and root["handle"] not in (0, ROOT_HANDLE):
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"{device}: hostQos: its root qdisc {root['kind']} {root['handle'] >> 16:x}:"
                " is another agent's: not replaced",
            )
        if is_ours(root):
            self._request(device, "delete root qdisc", "del", "hfsc", index,
                          handle=ROOT_HANDLE, parent=TC_H_ROOT)  # fmt: skip
        self._request(device, "add hfsc root qdisc", "add", "hfsc", index,
                      handle=ROOT_HANDLE, parent=TC_H_ROOT, default=DEFAULT_MINOR)  # fmt: skip
        for minor, curves in sorted(tree.classes.items()):
            kwargs = {
                CURVES[kind].netlink: {"m1": c[0], "d": c[1], "m2": c[2]}
                for kind, c in curves.items()
            }
            self._request(device, f"add class {ROOT_MAJOR:x}:{minor:x}", "add-class", "hfsc",
                          index, handle=ROOT_HANDLE | minor, parent=ROOT_HANDLE,
                          **kwargs)  # fmt: skip
            self._request(device, f"add {LEAF_QDISC} under {minor:x}", "add", LEAF_QDISC,
                          index, handle=minor << 16, parent=ROOT_HANDLE | minor)  # fmt: skip
        for tag, minor in sorted(tree.filters.items()):
            match = [{"kind": "meta", "object": {"kind": "vlan_tag", "opnd": "eq"}, "value": tag}]
            self._request(device, f"add filter for VLAN {tag}", "add-filter", "basic", index,
                          parent=ROOT_HANDLE, prio=tag, protocol=ETH_P_ALL,
                          classid=ROOT_HANDLE | minor, match=match)  # fmt: skip
