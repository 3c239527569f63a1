"""What a change reaches, read from its plan or its source alone (pure): the
names its transaction may change, the devices the ownership check looks
up, and whether it is a big change (a malloc window, memory handed back
after the answer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.netmodel.plan import Plan
from shared.netmodel.snapshot import REPORT_SECTIONS, NetinfoSnapshot
from superd.cores import plan_devices

BIG_CHANGE = 100  # operations after which superd hands memory back


def is_big(operations: Sequence[Mapping]) -> bool:
    """A change big enough for a malloc window (``shared.allocator``) and
    for superd to hand its memory back once it is answered."""
    return len(operations) >= BIG_CHANGE


def restore_is_big(persistent: Mapping) -> bool:
    """A restore (restore-nets at boot) that rebuilds as many networks and
    bonds as a big change adds: it runs in a malloc window as a big
    ``apply_plan`` does. Why the additions too: what a big change allocates
    and keeps (the host's state and report, the running configuration)
    must not sit in pymalloc's arenas, or removing the networks later leaves
    those arenas pinned (benchmarks/README.md, round 9: a window around the
    removal alone left 26 arenas after removing 1,000, against 19 with the
    addition in one too and 27 with none)."""
    size = 0
    for section in ("networks", "bonds"):
        entries = persistent.get(section)
        size += len(entries) if isinstance(entries, Mapping) else 0
    return size >= BIG_CHANGE


def plan_names(plan: Plan) -> dict[str, list[str]]:
    """The networks and bonds a plan's transaction may change in the running
    configuration: those its operations name (intent, removals, and their
    rollback)."""
    names: dict[str, list[str]] = {"networks": [], "bonds": []}
    for op in plan.operations:
        if op["op"] in ("add_network", "remove_network"):
            names["networks"].append(op["name"])
        elif op["op"] in ("add_bond", "edit_bond", "remove_bond"):
            names["bonds"].append(op["name"])
    return names


def plan_netinfo(plan: Plan, caps: Mapping, owned: frozenset[str]) -> NetinfoSnapshot:
    """superd's netinfo as the ownership check reads it, restricted to the
    devices the plan's operations name (all that check looks up): the cost
    of the plan, not of the host's report."""
    devices = plan_devices(plan.operations)
    if devices is None:
        return NetinfoSnapshot.from_caps(caps, owned)
    restricted = {
        section: {name: entries[name] for name in devices if name in entries}
        for section in REPORT_SECTIONS
        if isinstance(entries := caps.get(section, {}), Mapping)
    }
    return NetinfoSnapshot.from_caps(
        {**restricted, "nameservers": caps.get("nameservers", [])}, owned & devices
    )
