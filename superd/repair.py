"""The ``restore`` event action: rebuild running networks the kernel lost part of.

When a NIC that carried a network disappears, the kernel drops it from the
network's bridge (or deletes the VLAN device on it); when the NIC comes back
nothing puts it there again. Re-sending the network would plan nothing (it
is unchanged in the running configuration), so the repair is one plan that
removes each broken network and adds it again with the same attributes: one
transaction, rolled back as a whole if it fails, the running configuration
the same before and after.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.netmodel.plan import Plan
from superd.setup_networks import NetworkSetup
from superd.verify import network_mismatches

OPTIONS = {"connectivityCheck": False}


def repair_plan(core: NetworkSetup, names: Iterable[str]) -> tuple[Plan | None, list[str]]:
    """(the plan, the networks it rebuilds); (None, []) when none is broken."""
    running = core.persistence.running.snapshot()
    nets = running.get("networks", {})
    caps = core.read_caps(running)
    broken = sorted(n for n in set(names) if n in nets and network_mismatches(n, nets[n], caps))
    if not broken:
        return None, []
    removal = core.plan({name: {"remove": True} for name in broken}, {}, OPTIONS)
    removes = [op for op in removal.operations if op["op"] == "remove_network"]
    adds = [{"op": "add_network", "name": n, "attrs": dict(nets[n])} for n in broken]
    data = {**removal.to_dict(), "operations": removes + adds, "running": running}
    return Plan.from_dict(data), broken
