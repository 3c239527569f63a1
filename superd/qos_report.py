"""Host QoS in the capabilities report: each network's ``hostQos`` as the
kernel holds it (its class on its NIC's or bond's HFSC tree), in the
engine's units, as the production agent reports it. The overlay is pure;
``read_trees`` asks the kernel (tc dumps), and only for the devices of
networks whose running configuration asks for QoS: a host without hostQos
pays nothing.

A network reports ``hostQos`` only when its class is there: one whose
class was removed behind netreload's back reports none, and the engine
sees the difference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from shared.netmodel.host_qos import DeviceQos, reported_host_qos, shaping


def shaped_devices(running: Mapping) -> set[str]:
    """The NICs and bonds under legacy networks that ask for shaping."""
    return {
        attrs.get("nic") or attrs.get("bonding")
        for attrs in (running.get("networks") or {}).values()
        if shaping(attrs) and attrs.get("switch", "legacy") == "legacy"
        and (attrs.get("nic") or attrs.get("bonding"))
    }  # fmt: skip


def read_trees(running: Mapping, ipr: Any = None) -> dict[str, DeviceQos | None] | None:
    """{device: netreload's tree on it} for ``shaped_devices``; None when
    there are none (no dump done). ``ipr``: a pyroute2 IPRoute of the
    namespace (default: one opened for the call)."""
    devices = shaped_devices(running)
    if not devices:
        return None
    from pyroute2 import IPRoute

    from configurators.tc_hfsc import read_trees as read

    own = ipr is None
    ipr = IPRoute() if own else ipr
    try:
        indexes = {}
        for device in devices:
            found = ipr.link_lookup(ifname=device)
            if found:
                indexes[device] = found[0]
        trees = read(ipr, indexes)
    finally:
        if own:
            ipr.close()
    return {device: trees.get(device) for device in devices}


def digest(trees: Mapping[str, DeviceQos | None]) -> str:
    """A short name of ``trees``, for report caches and tokens."""
    plain = {d: t.to_dict() if t is not None else None for d, t in trees.items()}
    text = json.dumps(plain, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def overlay(caps: dict, trees: Mapping[str, DeviceQos | None], running: Mapping) -> dict:
    """A copy of ``caps`` whose networks carry ``hostQos`` where their
    class exists (entries changed are copies)."""
    networks = dict(caps.get("networks", {}))
    for name, attrs in (running.get("networks") or {}).items():
        lower = attrs.get("nic") or attrs.get("bonding")
        if name not in networks or lower not in trees:
            continue
        reported = reported_host_qos(attrs, trees[lower])
        if reported is not None:
            networks[name] = {**networks[name], "hostQos": reported}
    return {**caps, "networks": networks}
