"""setupNetworks as superd runs it, in-process.

plan (already validated by frontd, re-validated on arrival) → begin →
record the plan's intent in the running configuration → apply each
operation through the configurator → drop what it removed → verify (kernel
read back against the plan) → commit.

Intent first: every added network or bond is written to the running
configuration *before* the first operation, every removed one dropped
*after* the last (one flush each way, however many networks), so a failure
midway leaves a running configuration that names everything that may exist
in the kernel. Rollback is objectified: the pre-change running configuration
is turned into an ordinary request, planned against the current state (what
the transaction removed so far counted as gone) with the same pure pipeline,
and applied; then the running configuration is restored exactly and the
original error re-raised.

A NIC a network takes over (a bridge port, or a bridgeless network's own
device) loses the addresses it had; they are read before the change
(:meth:`NetworkSetup.apply`) and given back after any rollback of it
(:meth:`NetworkSetup.restore_taken`), which the running configuration alone
could not do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from configurators.registry import Configurators
from persistence.unified import UnifiedPersistence
from shared import faults
from shared.errors import ErrorCode, NetError
from shared.netmodel.ownership import named_devices
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from superd.applier import NetworkApplier
from superd.verify import plan_mismatches

log = logging.getLogger("netreload.setup")

ReadCaps = Callable[[Mapping], dict]


class NetworkSetup:
    def __init__(
        self,
        persistence: UnifiedPersistence,
        configurators: Configurators,
        read_caps: ReadCaps,
        read_owned: Callable[[], frozenset[str]] | None = None,
        *,
        close_caps: Callable[[], None] | None = None,
    ) -> None:
        """``read_owned``: the devices with netreload's mark (default: as the
        configurators read them); ``close_caps`` releases what ``read_caps``
        holds (its socket)."""
        self.persistence = persistence
        self.configurators = configurators
        self.read_caps = read_caps
        self._close_caps = close_caps
        # the devices with netreload's mark, read after read_caps (same state)
        self.read_owned = read_owned if read_owned is not None else configurators.owned_devices
        # (networks, bonds) whose removal the transaction applied so far
        self._removed: tuple[list[str], list[str]] = ([], [])
        # addresses of the NICs the last change took over, as they were
        self._taken: dict[str, list[str]] = {}

    def close(self) -> None:
        """Release the configurators' and the netinfo reader's sockets."""
        try:
            self.configurators.close()
        finally:
            if self._close_caps is not None:
                self._close_caps()

    def running(self) -> RunningConfig:
        return RunningConfig.from_dict(self.persistence.running.snapshot())

    def capabilities(self) -> dict:
        return self.read_caps(self.persistence.running.snapshot())

    def plan(self, networks: object, bondings: object, options: object) -> Plan:
        running = self.running()
        caps = self.read_caps(running.to_dict())
        netinfo = NetinfoSnapshot.from_caps(caps, self.read_owned())
        return plan_setup_networks(networks, bondings, options, netinfo, running)

    def adopt_named_devices(self, *configs: Mapping) -> list[str]:
        """The upgrade rule (``shared.netmodel.ownership``): mark the devices
        the running configuration (and ``configs``: an interrupted
        transaction's ``before``) names that exist unmarked."""
        named: dict[str, str] = {}
        for config in (self.persistence.running.snapshot(), *configs):
            named.update(named_devices(config))
        adopted = self.configurators.adopt(named)
        if adopted:
            log.warning(
                "marked %d devices of the running configuration as netreload's (made"
                " before devices were marked, or just before a crash): %s",
                len(adopted), ", ".join(adopted),
            )  # fmt: skip
        return adopted

    def sync_host_qos(self) -> list[str]:
        """The kernel's HFSC trees brought to the running configuration's
        hostQos (restore-nets: a tree lost while every device stayed)."""
        return self.configurators.sync_host_qos(self.persistence.running.snapshot()["networks"])

    def setup_networks(self, networks: object, bondings: object, options: object) -> Plan:
        plan = self.plan(networks, bondings, options)
        self.apply(plan)
        return plan

    def apply(self, plan: Plan, pending: bool = False) -> None:
        """Apply, verify, commit; or roll back and raise. ``pending``: a
        connectivity check follows, the configurators keep what undoes the
        change as a whole until :meth:`confirm` or :meth:`undo_pending`."""
        if plan.is_empty:
            return  # minimal change: an unchanged request writes nothing
        # shared, read-only (a write replaces the store's snapshot, never
        # changes it): a copy would cost the whole host on every change
        before = self.persistence.running.shared_snapshot()[1]
        # what a configurator cannot build as asked, refused before any change
        self.configurators.check_bonds({
            op["name"]: op["attrs"] for op in plan.operations
            if op["op"] in ("add_bond", "edit_bond")
        })  # fmt: skip
        if not plan.options.get("_inRollback"):
            taken = nics_taken(plan.operations)
            self._taken = self.configurators.addresses_of(taken) if taken else {}
        self.configurators.begin()
        try:
            self._apply_operations(plan, before)
            self._verify(plan)
        except Exception as error:
            log.warning("setupNetworks failed, rolling back: %s", error)
            self.configurators.rollback()
            self._roll_back_to(before)
            self.restore_taken()
            if isinstance(error, NetError):
                raise
            raise NetError(ErrorCode.FAILED_IFUP, f"setupNetworks failed: {error}") from error
        finally:
            self._removed = ([], [])  # a big removal's names, held after it, kept memory
        self.configurators.commit(pending)

    def confirm(self) -> None:
        """The connectivity check passed: the pending change is final. It is
        in place and the engine reached the host, so a configurator failing
        to drop its undo (NetworkManager unreachable for a moment) is logged,
        not turned into a failed request."""
        try:
            self.configurators.confirm()
        except NetError as error:
            log.error("confirming the change to its configurators failed: %s", error)

    def undo_pending(self) -> None:
        """Connectivity lost: the configurators undo the pending change as a
        whole where they can (a NetworkManager checkpoint rolled back); the
        objectified rollback follows."""
        try:
            self.configurators.undo_pending()
        except NetError as error:
            log.error("undoing the change through its configurators failed: %s", error)

    def _apply_operations(self, plan: Plan, before: Mapping) -> None:
        fail_after = faults.failure_point()
        applier = NetworkApplier(self.configurators, plan.running, plan.shapes)
        intent = _intent(plan.operations)
        # Every addition is recorded before the first kernel change, every
        # removal dropped after the last: one flush each way.
        self._removed = ([], [])
        self.persistence.running.update(intent.networks, intent.bonds)
        for count, op in enumerate(plan.operations):
            if fail_after is not None and count == fail_after:
                raise NetError(ErrorCode.FAILED_IFUP, f"injected failure before operation {count}")
            applier.apply(op, before.get("bonds", {}))
            if op["op"] == "remove_network":
                self._removed[0].append(op["name"])
            elif op["op"] == "remove_bond":
                self._removed[1].append(op["name"])
        applier.finish()  # what a configurator buffered (OVSDB edits)
        self.persistence.running.update(
            removed_networks=intent.removed_networks, removed_bonds=intent.removed_bonds
        )

    def restore_taken(self) -> None:
        """The last change was undone: its NICs get their addresses back."""
        taken, self._taken = self._taken, {}
        try:
            self.configurators.restore_addresses(taken)
        except NetError as error:
            log.error("rollback: giving NICs their addresses back failed: %s", error)

    def _verify(self, plan: Plan) -> None:
        caps = self.read_caps(plan.running)
        problems = plan_mismatches(plan.operations, plan.running, caps)
        if problems:
            raise NetError(ErrorCode.FAILED_IFUP, "verification failed: " + "; ".join(problems))

    def _roll_back_to(self, before: Mapping) -> None:
        # Removals already applied are still in the running configuration
        # (dropped only after the last operation) but gone from the kernel:
        # drop them first, so that the rollback plans to add them back.
        removed_nets, removed_bonds = self._removed
        self.persistence.running.update(removed_networks=removed_nets, removed_bonds=removed_bonds)
        now = self.persistence.running.snapshot()
        networks, bondings = rollback_request(before, now)
        try:
            plan = self.plan(networks, bondings, {"connectivityCheck": False, "_inRollback": True})
            applier = NetworkApplier(self.configurators, plan.running)
            for op in plan.operations:
                try:
                    applier.apply(op, now.get("bonds", {}))
                except Exception as error:  # keep undoing what can be undone
                    log.error("rollback: %s %s failed: %s", op["op"], op.get("name"), error)
            try:
                applier.finish()
            except Exception as error:
                log.error("rollback: sending buffered changes failed: %s", error)
        except NetError as error:
            log.error("rollback could not be planned: %s", error)
        finally:
            self.persistence.replace_running(before.get("networks", {}), before.get("bonds", {}))


@dataclass
class Intent:
    """What a plan's operations write to and drop from the running config."""

    networks: dict = field(default_factory=dict)
    bonds: dict = field(default_factory=dict)
    removed_networks: list = field(default_factory=list)
    removed_bonds: list = field(default_factory=list)


def _intent(operations: list[dict]) -> Intent:
    intent = Intent()
    for op in operations:
        kind, name = op["op"], op.get("name")
        if kind == "add_network":
            intent.networks[name] = op["attrs"]
        elif kind in ("add_bond", "edit_bond"):
            intent.bonds[name] = op["attrs"]
    for op in operations:  # a removal followed by an addition is an edit
        kind, name = op["op"], op.get("name")
        if kind == "remove_network" and name not in intent.networks:
            intent.removed_networks.append(name)
        elif kind == "remove_bond" and name not in intent.bonds:
            intent.removed_bonds.append(name)
    return intent


def nics_taken(operations: list[dict]) -> list[str]:
    """The NICs added networks sit on untagged: bridge ports, or bridgeless
    networks' own devices (a VLAN device is new; a bond keeps its
    addresses)."""
    return sorted({
        op["attrs"]["nic"]
        for op in operations
        if op["op"] == "add_network" and op["attrs"].get("nic") and "vlan" not in op["attrs"]
    })  # fmt: skip


def rollback_request(before: Mapping, now: Mapping) -> tuple[dict, dict]:
    """The request that takes the running configuration ``now`` back to ``before``."""

    def diff(old: Mapping, new: Mapping) -> dict:
        out: dict = {}
        for name in sorted(set(old) | set(new)):
            if name not in old:
                out[name] = {"remove": True}
            elif new.get(name) != old[name]:
                out[name] = dict(old[name])
        return out

    return (
        diff(before.get("networks", {}), now.get("networks", {})),
        diff(before.get("bonds", {}), now.get("bonds", {})),
    )

