"""setupNetworks as superd runs it, in-process.

plan (already validated by frontd, re-validated on arrival) → begin →
for each operation: record intent in the running configuration, apply through
the configurator → verify (kernel read back against the plan) → commit.

Intent first: an added network or bond is written to the running
configuration *before* it is applied, and a removed one is dropped *after*,
so a failure midway leaves a running configuration that names everything
that may exist in the kernel. Rollback is objectified: the pre-change running
configuration is turned into an ordinary request, planned against the
current state with the same pure pipeline, and applied; then the running
configuration is restored exactly and the original error re-raised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

from configurators.base import Configurator
from persistence.unified import UnifiedPersistence
from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from superd.applier import NetworkApplier
from superd.verify import plan_mismatches

log = logging.getLogger("netreload.setup")

# Test-only fault injection: fail after this many applied operations. The
# product never sets it; it can only make a transaction fail.
FAIL_AFTER_ENV = "NETRELOAD_TEST_FAIL_AFTER_OPS"

ReadCaps = Callable[[Mapping], dict]


class NetworkSetup:
    def __init__(
        self,
        persistence: UnifiedPersistence,
        configurator: Configurator,
        read_caps: ReadCaps,
    ) -> None:
        self.persistence = persistence
        self.configurator = configurator
        self.read_caps = read_caps

    def running(self) -> RunningConfig:
        return RunningConfig.from_dict(self.persistence.running.snapshot())

    def capabilities(self) -> dict:
        return self.read_caps(self.persistence.running.snapshot())

    def plan(self, networks: object, bondings: object, options: object) -> Plan:
        running = self.running()
        netinfo = NetinfoSnapshot.from_caps(self.read_caps(running.to_dict()))
        return plan_setup_networks(
            networks, bondings, options, netinfo, running, self.configurator.name
        )

    def setup_networks(self, networks: object, bondings: object, options: object) -> Plan:
        plan = self.plan(networks, bondings, options)
        self.apply(plan)
        return plan

    def apply(self, plan: Plan) -> None:
        if plan.is_empty:
            return  # minimal change: an unchanged request writes nothing
        before = self.persistence.running.snapshot()
        self.configurator.begin()
        try:
            self._apply_operations(plan, before)
            self._verify(plan)
        except Exception as error:
            log.warning("setupNetworks failed, rolling back: %s", error)
            self.configurator.rollback()
            self._roll_back_to(before)
            if isinstance(error, NetError):
                raise
            raise NetError(ErrorCode.FAILED_IFUP, f"setupNetworks failed: {error}") from error
        self.configurator.commit()

    def _apply_operations(self, plan: Plan, before: Mapping) -> None:
        fail_after = _injected_failure_point()
        applier = NetworkApplier(self.configurator, plan.running)
        running = self.persistence.running
        for count, op in enumerate(plan.operations):
            if fail_after is not None and count == fail_after:
                raise NetError(ErrorCode.FAILED_IFUP, f"injected failure before operation {count}")
            kind, name = op["op"], op.get("name")
            if kind == "add_network":
                running.set_network(name, op["attrs"])
            elif kind in ("add_bond", "edit_bond"):
                running.set_bond(name, op["attrs"])
            applier.apply(op, before.get("bonds", {}))
            if kind == "remove_network":
                running.remove_network(name)
            elif kind == "remove_bond":
                running.remove_bond(name)

    def _verify(self, plan: Plan) -> None:
        caps = self.read_caps(plan.running)
        problems = plan_mismatches(plan.operations, plan.running, caps)
        if problems:
            raise NetError(ErrorCode.FAILED_IFUP, "verification failed: " + "; ".join(problems))

    def _roll_back_to(self, before: Mapping) -> None:
        now = self.persistence.running.snapshot()
        networks, bondings = rollback_request(before, now)
        try:
            plan = self.plan(networks, bondings, {"connectivityCheck": False, "_inRollback": True})
            applier = NetworkApplier(self.configurator, plan.running)
            for op in plan.operations:
                try:
                    applier.apply(op, now.get("bonds", {}))
                except Exception as error:  # keep undoing what can be undone
                    log.error("rollback: %s %s failed: %s", op["op"], op.get("name"), error)
        except NetError as error:
            log.error("rollback could not be planned: %s", error)
        finally:
            self.persistence.replace_running(before.get("networks", {}), before.get("bonds", {}))


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


def _injected_failure_point() -> int | None:
    value = os.environ.get(FAIL_AFTER_ENV)
    return int(value) if value and value.isdigit() else None
