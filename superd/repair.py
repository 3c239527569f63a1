"""Rebuilding networks: the ``restore`` event action, restore-nets, recovery.

:func:`rebuild` makes kernel and running configuration hold exactly a wanted
configuration (the persistent one for restore-nets, the journal's ``before``
for the recovery of an interrupted transaction).

The ``restore`` event action (:func:`repair_plan`) rebuilds running networks
the kernel lost part of.

When a NIC that carried a network disappears, the kernel drops it from the
network's bridge (or deletes the VLAN device on it); when the NIC comes back
nothing puts it there again. Re-sending the network would plan nothing (it
is unchanged in the running configuration), so the repair is one plan that
removes each broken network and adds it again with the same attributes: one
transaction, rolled back as a whole if it fails, the running configuration
the same before and after.

A bond's NIC that disappears is released by the kernel, and not enslaved
again when it comes back; the bond stays up on its other NICs, with its
networks. Rebuilding those would cut the bond's traffic to re-add one NIC:
the repair is an ``edit_bond`` of the bond as it runs, whose configurator
enslaves what the bond lacks (MTU and up as setupNetworks builds it) and
leaves the rest as it is. It is made once every NIC the bond names is back
(the configurator asks for all of them), for a bond the kernel still has.

Broken, for both: a device the network needs is missing or not as asked
(the capabilities report), or a bridge or VLAN device of its own that
netreload marked is administratively down (read apart,
:mod:`superd.admin_state`: the report has no link state). The iproute2
configurator sets a new bridge or bond up last, after marking it; superd
killed in between leaves one down that the report shows complete. The
rebuild reads the bonds too: a marked bond held down is rebuilt, with the
networks on it (a bond in use cannot be removed); its NICs are the
administrator's, one held down is no reason to rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from shared.errors import NetError
from shared.netmodel.ownership import network_devices, taken_over
from shared.netmodel.plan import PLAN_VERSION, Plan
from shared.netmodel.snapshot import NetinfoSnapshot
from superd.admin_state import marked_down
from superd.setup_networks import NetworkSetup
from superd.verify import bond_mismatches, network_mismatches

if TYPE_CHECKING:
    from superd.monitor import LiveNetinfo

log = logging.getLogger("netreload.superd.repair")

OPTIONS = {"connectivityCheck": False}


def repair_plan(core: NetworkSetup, names: Iterable[str]) -> tuple[Plan | None, list[str]]:
    """(the plan, what it repairs: the networks it rebuilds, then the bonds
    it makes whole); (None, []) when nothing named is broken. ``names``:
    networks and bonds of the running configuration (a name that is both is
    checked as both: each is repaired only if broken)."""
    running = core.persistence.running.snapshot()
    nets, bonds = running.get("networks", {}), running.get("bonds", {})
    caps = core.read_caps(running)
    named = [n for n in set(names) if n in nets]
    down = marked_down(devices_of(nets, named), live_of(core))
    broken = sorted(n for n in named if network_mismatches(n, nets[n], caps, down))
    incomplete = sorted(
        b for b in set(names) if b in bonds and lacks_returned_nics(b, bonds[b], caps)
    )
    if not broken and not incomplete:
        return None, []
    removes: list[dict] = []
    if broken:
        removal = core.plan({name: {"remove": True} for name in broken}, {}, OPTIONS)
        removes = [op for op in removal.operations if op["op"] == "remove_network"]
    # the bond as it runs: the configurator's ensure enslaves what it lacks
    # and leaves the rest (options, MTU, other NICs, networks) as it is
    edits = [{"op": "edit_bond", "name": b, "attrs": dict(bonds[b])} for b in incomplete]
    adds = [{"op": "add_network", "name": n, "attrs": dict(nets[n])} for n in broken]
    data = {"version": PLAN_VERSION, "operations": removes + edits + adds, "options": OPTIONS,
            "running": running}  # fmt: skip
    return Plan.from_dict(data), broken + incomplete


def lacks_returned_nics(name: str, attrs: Mapping, caps: Mapping) -> bool:
    """Whether the kernel's bond ``name`` lacks NICs it should enslave that
    are all there now (came back). A bond the kernel lacks, or whose NICs
    are not all back, is not made whole by enslaving (the configurator asks
    for every NIC); an OVS bond's ports come back through OVSDB."""
    bond = caps.get("bondings", {}).get(name)
    if bond is None or attrs.get("switch") == "ovs":
        return False
    wanted = set(attrs.get("nics", ()))
    return bool(wanted - set(bond.get("slaves", ()))) and wanted <= caps.get("nics", {}).keys()


def restore_request(persistent: Mapping, running: Mapping) -> tuple[dict, dict]:
    """Every persistent network/bond, and a removal for every other running one."""

    def merge(wanted: Mapping, current: Mapping) -> dict:
        out: dict = {name: {"remove": True} for name in current if name not in wanted}
        out.update({name: dict(attrs) for name, attrs in wanted.items()})
        return out

    return (
        merge(persistent.get("networks", {}), running.get("networks", {})),
        merge(persistent.get("bonds", {}), running.get("bonds", {})),
    )


def live_of(core: NetworkSetup) -> LiveNetinfo | None:
    """The monitor the writer's core reads (``superd.cores.LiveNetworkSetup``,
    not imported: oneshot has none), asked which devices are held down."""
    return getattr(getattr(core, "caps_source", None), "live", None)


def devices_of(nets: Mapping[str, Mapping], names: Iterable[str]) -> set[str]:
    """The bridges and VLAN devices networks ``names`` have of their own."""
    return {device for name in names for device in network_devices(name, nets[name])}


def unchanged(persistent: Mapping, running: Mapping) -> list[str]:
    """The running networks equal to their persistent copy: the ones a plan
    would skip, whatever the kernel holds."""
    wanted = persistent.get("networks", {})
    nets = running.get("networks", {})
    return [name for name, attrs in nets.items() if wanted.get(name) == attrs]


def unchanged_bonds(persistent: Mapping, running: Mapping) -> list[str]:
    """The running legacy bonds (kernel devices: not OVS's) equal to their
    persistent copy."""
    wanted = persistent.get("bonds", {})
    bonds = running.get("bonds", {})
    return [name for name, attrs in bonds.items()
            if wanted.get(name) == attrs and attrs.get("switch") != "ovs"]  # fmt: skip


def broken_entries(
    persistent: Mapping, running: Mapping, caps: Mapping, down: Collection[str] = ()
) -> tuple[dict, dict]:
    """Running entries equal to their persistent copy that the kernel lacks,
    or whose own devices it holds down (``down``: a creation cut short
    before the device was set up, :mod:`superd.admin_state`), and every
    running network on such a bond (a bond in use cannot be removed).

    The planner would skip them as unchanged; restore removes them first so
    that they are added again (a running configuration that outlived the
    kernel state it describes, e.g. a run dir that survived a reboot).
    """
    nets_running = running.get("networks", {})
    nets = {
        name: {"remove": True}
        for name in unchanged(persistent, running)
        if network_mismatches(name, nets_running[name], caps, down)
    }
    bonds = {
        name: {"remove": True}
        for name, attrs in running.get("bonds", {}).items()
        if persistent.get("bonds", {}).get(name) == attrs
        and bond_mismatches(name, attrs, caps, down)
    }
    if bonds:
        nets.update({name: {"remove": True} for name, attrs in nets_running.items()
                     if attrs.get("bonding") in bonds})  # fmt: skip
    return nets, bonds


def stale_default_routes(wanted: Mapping, running: Mapping) -> dict:
    """Running networks holding the default route that are not as wanted:
    removed with the broken ones, first. A change interrupted while writing
    its intent, as the default route moved, leaves two holders in the
    running configuration, and no plan against it would be valid."""
    return {
        name: {"remove": True}
        for name, attrs in running.get("networks", {}).items()
        if attrs.get("defaultRoute") and wanted.get("networks", {}).get(name) != attrs
    }


class Rebuilt(NamedTuple):
    #: how many operations the rebuild took
    operations: int
    #: what it left out: {"network NAME" / "bond NAME": the refusal}
    skipped: dict[str, NetError]


def without_taken_over(
    core: NetworkSetup, wanted: Mapping, running: Mapping, caps: Mapping
) -> tuple[dict, dict]:
    """(``wanted`` minus the networks and bonds whose devices another agent
    holds, those left out). One taken name must not keep the host from
    the rest of its networks at boot; the left-out ones that are running
    stay as they run."""
    netinfo = NetinfoSnapshot.from_caps(caps, core.read_owned())
    nets, bonds = taken_over(wanted, running, netinfo.device_kinds(), netinfo.owned)
    if not nets and not bonds:
        return dict(wanted), {}
    kept: dict = {"networks": {}, "bonds": {}}
    for key, skipped in (("networks", nets), ("bonds", bonds)):
        for name, attrs in wanted.get(key, {}).items():
            if name not in skipped:
                kept[key][name] = attrs
            elif name in running.get(key, {}):
                kept[key][name] = running[key][name]
    left_out = {f"network {n}": e for n, e in nets.items()}
    left_out.update({f"bond {n}": e for n, e in bonds.items()})
    return kept, left_out


def rebuild(core: NetworkSetup, wanted: Mapping, what: str) -> Rebuilt:
    """Kernel and running configuration made to hold exactly ``wanted``'s
    networks and bonds, but those whose devices another agent holds."""
    running = core.persistence.running.snapshot()
    # what a configurator kept on its own (OVSDB bridges) that running does not name
    dropped = core.configurators.remove_unrecorded(running)
    if dropped:
        log.info("%s: removed %s left from before", what, ", ".join(dropped))
    # teams whose teamd is gone: started again first (what sat on them is
    # then missing, and rebuilt below as any broken network)
    repaired = core.configurators.repair_bonds(running)
    if repaired:
        log.info("%s: teamd restarted for %s", what, ", ".join(repaired))
    caps = core.read_caps(running)
    wanted, skipped = without_taken_over(core, wanted, running, caps)
    for name, error in skipped.items():
        log.error("%s: %s left out: %s", what, name, error)
    # the report has no link state: netreload's own devices held down read apart
    down = marked_down(
        devices_of(running.get("networks", {}), unchanged(wanted, running))
        | set(unchanged_bonds(wanted, running)),
        live_of(core),
    )
    broken_nets, broken_bonds = broken_entries(wanted, running, caps, down)
    broken_nets.update(stale_default_routes(wanted, running))
    operations = 0
    if broken_nets or broken_bonds:
        log.info(
            "%s: re-creating %s (missing from the kernel, held down, or a stale"
            " default-route holder)",
            what, ", ".join(sorted(broken_nets) + sorted(broken_bonds)),
        )  # fmt: skip
        plan = core.plan(broken_nets, broken_bonds, OPTIONS)
        core.apply(plan)
        operations += len(plan.operations)
        running = core.persistence.running.snapshot()
    networks, bondings = restore_request(wanted, running)
    plan = core.plan(networks, bondings, OPTIONS)
    log.info("%s: %d operations", what, len(plan.operations))
    core.apply(plan)
    # an unchanged plan applies nothing: host QoS removed behind netreload's
    # back (no device missing) is rebuilt here
    shaped = core.sync_host_qos()
    if shaped:
        log.info("%s: host QoS rebuilt on %s", what, ", ".join(shaped))
    return Rebuilt(operations + len(plan.operations) + len(shaped), skipped)


def recovered_event(verb: str, outcome: str, held: Mapping) -> dict:
    """The event of a transaction recovered at start-up (``recover_transaction``)."""
    return {
        "kind": "transaction_recovered",
        "verb": verb,
        "outcome": outcome,
        "networks": sorted(held.get("networks", {})),
        "bonds": sorted(held.get("bonds", {})),
    }


def restore_answer(rebuilt: Rebuilt, held: Mapping) -> dict:
    """restore_nets's answer beyond success: what was rebuilt, what netreload
    now holds, and what another agent's devices kept out (frontd and the CLI
    fail on it)."""
    return {
        "operations": rebuilt.operations,
        "networks": sorted(held.get("networks", {})),
        "bonds": sorted(held.get("bonds", {})),
        "skipped": {name: error.to_dict() for name, error in rebuilt.skipped.items()},
    }


def recover_transaction(core: NetworkSetup, verb: str, before: Mapping) -> tuple[str, Mapping, int]:
    """(``"completed"`` or ``"rolled_back"``, the configuration now held, how
    many operations that took) for the interrupted ``verb``."""
    if verb == "restore_nets":
        try:
            operations = rebuild(core, core.persistence.restore_source(), "recovery").operations
            return "completed", core.persistence.running.snapshot(), operations
        except (NetError, OSError, ValueError) as error:
            log.error("finishing the interrupted restore_nets failed (%s): undoing it", error)
    operations = rebuild(core, before, "recovery").operations
    # exactly the document set the interrupted transaction started from
    core.persistence.replace_running(before.get("networks", {}), before.get("bonds", {}))
    return "rolled_back", before, operations
