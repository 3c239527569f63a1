"""superd's verbs: the fixed table of what frontd may ask, plain data in and out.

apply_plan runs the privileged half of setupNetworks (frontd ran
canonicalize → build model → validate → plan):

    re-validate the plan (Plan.from_dict) → check it against the running
    configuration (a stale plan is refused) → apply (NetworkSetup: intent,
    configurator, verify, commit or objectified rollback) → connectivity check
    (wait for confirm_connectivity; none → objectified rollback, code 10) →
    persist (commitOnSuccess → set_safe_config)

Only one network-changing verb (apply_plan, restore_nets, set_safe_config)
runs at a time; another one arriving meanwhile is refused at once with
RESOURCE_UNAVAILABLE (40). ping, netinfo and confirm_connectivity run
concurrently with it.

pyroute2 keeps its sockets per thread, so each NetworkSetup lives in one
worker thread for its whole life: one for network changes, one (its own
netlink socket) for netinfo reads, which therefore never wait for a change.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import Plan
from shared.wire import VERBS
from superd.setup_networks import NetworkSetup, rollback_request
from superd.verify import bond_mismatches, network_mismatches

log = logging.getLogger("netreload.superd.verbs")

T = TypeVar("T")
Handler = Callable[[dict], Any]
CoreFactory = Callable[[Config], NetworkSetup]

ROLLBACK_OPTIONS = {"connectivityCheck": False, "_inRollback": True}
RESTORE_OPTIONS = {"connectivityCheck": False}
DONE = {"code": 0, "message": "Done"}


class CoreWorker:
    """One thread owning one NetworkSetup; jobs run there, one at a time."""

    def __init__(self, name: str, factory: Callable[[], NetworkSetup]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        try:
            self._core: NetworkSetup = self._executor.submit(factory).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    def call(self, job: Callable[[NetworkSetup], T]) -> T:
        try:
            future = self._executor.submit(job, self._core)
        except RuntimeError:  # shut down between the dispatch check and now
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "superd is shutting down") from None
        return future.result()

    def close(self) -> None:
        """Wait for the running job, then close the core in its own thread."""
        with contextlib.suppress(Exception):
            self._executor.submit(lambda: self._core.configurator.close()).result()
        self._executor.shutdown(wait=True)


class ConnectivityMonitor:
    """When the engine was last heard from (confirm_connectivity)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._last: float | None = None
        self._aborted = False

    def confirm(self) -> float:
        with self._cond:
            self._last = time.monotonic()
            self._cond.notify_all()
            return self._last

    def wait(self, since: float, timeout: float) -> bool:
        """True when a confirmation at or after ``since`` arrives within
        ``timeout`` seconds from now; False on timeout or :meth:`abort`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._last is None or self._last < since:
                remaining = deadline - time.monotonic()
                if self._aborted or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def abort(self) -> None:
        """Make every wait fail now (shutdown: roll back rather than hang)."""
        with self._cond:
            self._aborted = True
            self._cond.notify_all()


def plan_from_wire(args: Mapping) -> Plan:
    """The plan argument, re-validated; anything malformed is BAD_PARAMS."""
    if "plan" not in args:
        raise NetError(ErrorCode.BAD_PARAMS, "apply_plan: missing argument plan")
    try:
        return Plan.from_dict(args["plan"])
    except NetError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise NetError(ErrorCode.BAD_PARAMS, f"plan: malformed ({error})") from None


def check_plan_base(plan: Plan, running: Mapping) -> None:
    """Refuse a plan computed against another running configuration.

    Replaying the operations on ``running`` must be possible (nothing removed
    that is not there with the same attributes, nothing added twice) and must
    give the plan's expected running configuration.
    """
    nets = dict(running.get("networks", {}))
    bonds = dict(running.get("bonds", {}))
    for op in plan.operations:
        kind, name = op["op"], op.get("name")
        if kind == "remove_network":
            ok = nets.pop(name, None) == op["attrs"]
        elif kind == "add_network":
            ok = name not in nets
            nets[name] = op["attrs"]
        elif kind == "remove_bond":
            ok = bonds.pop(name, None) == op["attrs"]
        elif kind in ("add_bond", "edit_bond"):
            ok = (name in bonds) == (kind == "edit_bond")
            bonds[name] = op["attrs"]
        else:
            ok = True  # set_mtu: a device, not configuration
        if not ok:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"plan: {kind} {name} does not fit the running configuration (stale plan)",
            )
    expected = plan.running
    if expected and (expected.get("networks") != nets or expected.get("bonds") != bonds):
        raise NetError(
            ErrorCode.BAD_PARAMS,
            "plan: its expected running configuration does not follow from its operations "
            "and the current one (stale plan)",
        )


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


def broken_entries(persistent: Mapping, running: Mapping, caps: Mapping) -> tuple[dict, dict]:
    """Running entries equal to their persistent copy that the kernel lacks.

    The planner would skip them as unchanged; restore removes them first so
    that they are added again (a running configuration that outlived the
    kernel state it describes, e.g. a run dir that survived a reboot).
    """
    nets = {
        name: {"remove": True}
        for name, attrs in running.get("networks", {}).items()
        if persistent.get("networks", {}).get(name) == attrs
        and network_mismatches(name, attrs, caps)
    }
    bonds = {
        name: {"remove": True}
        for name, attrs in running.get("bonds", {}).items()
        if persistent.get("bonds", {}).get(name) == attrs and bond_mismatches(name, attrs, caps)
    }
    return nets, bonds


class Verbs:
    """The verb table and the state the verbs share."""

    def __init__(self, config: Config, core_factory: CoreFactory | None = None) -> None:
        if core_factory is None:
            from superd.oneshot import build_setup

            core_factory = build_setup
        self.connectivity = ConnectivityMonitor()
        self._busy = threading.Lock()
        self._closing = False
        self._writer = CoreWorker("superd-net", lambda: core_factory(config))
        try:
            self._reader = CoreWorker("superd-netinfo", lambda: core_factory(config))
        except BaseException:
            self._writer.close()
            raise
        self.table: dict[str, Handler] = {
            "ping": self.ping,
            "netinfo": self.netinfo,
            "apply_plan": self.apply_plan,
            "confirm_connectivity": self.confirm_connectivity,
            "set_safe_config": self.set_safe_config,
            "restore_nets": self.restore_nets,
        }
        assert set(self.table) == set(VERBS), "verb table out of step with shared.wire"

    def dispatch(self, verb: str, args: dict) -> Any:
        handler = self.table.get(verb)
        if handler is None:
            raise NetError(ErrorCode.BAD_PARAMS, f"unknown verb {verb[:40]!r}")
        if self._closing:
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "superd is shutting down")
        return handler(args)

    def close(self) -> None:
        """Refuse new work, cut connectivity waits short (they roll back),
        wait for the running change, close the cores."""
        self._closing = True
        self.connectivity.abort()
        self._writer.close()
        self._reader.close()

    @contextlib.contextmanager
    def _exclusive(self, verb: str) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            log.warning("%s refused: another network change is in progress", verb)
            raise NetError(
                ErrorCode.RESOURCE_UNAVAILABLE,
                f"{verb}: another network change is in progress",
            )
        try:
            yield
        finally:
            self._busy.release()

    # -- concurrent verbs -------------------------------------------------
    def ping(self, args: dict) -> str:
        return "pong"

    def netinfo(self, args: dict) -> dict:
        def read(core: NetworkSetup) -> dict:
            running = core.persistence.running.snapshot()
            return {"caps": core.read_caps(running), "running": running}

        return self._reader.call(read)

    def confirm_connectivity(self, args: dict) -> dict:
        self.connectivity.confirm()
        return dict(DONE)

    # -- network-changing verbs (one at a time) ----------------------------
    def apply_plan(self, args: dict) -> dict:
        plan = plan_from_wire(args)
        with self._exclusive("apply_plan"):
            return self._writer.call(lambda core: self._transaction(core, plan))

    def set_safe_config(self, args: dict) -> dict:
        with self._exclusive("set_safe_config"):
            self._writer.call(lambda core: core.persistence.set_safe_config())
        return dict(DONE)

    def restore_nets(self, args: dict) -> dict:
        with self._exclusive("restore_nets"):
            return self._writer.call(self._restore)

    # -- jobs, run in the writer thread -----------------------------------
    def _transaction(self, core: NetworkSetup, plan: Plan) -> dict:
        started = time.monotonic()
        before = core.persistence.running.snapshot()
        check_plan_base(plan, before)
        log.info("apply_plan: %d operations", len(plan.operations))
        core.apply(plan)
        options = plan.options
        if not plan.is_empty and options["connectivityCheck"] and not options["_inRollback"]:
            timeout = options["connectivityTimeout"]
            log.info("apply_plan: waiting up to %ss for confirm_connectivity", timeout)
            if not self.connectivity.wait(started, timeout):
                log.warning("apply_plan: connectivity check failed, rolling back")
                failure = self._roll_back(core, before)
                message = "connectivity check failed"
                if failure:
                    message += f"; rollback failed too, the new configuration stays: {failure}"
                raise NetError(ErrorCode.LOST_CONNECTION, message)
        if options["commitOnSuccess"]:
            core.persistence.set_safe_config()
        log.info("apply_plan: done")
        return {**DONE, "operations": len(plan.operations)}

    @staticmethod
    def _roll_back(core: NetworkSetup, before: Mapping) -> str | None:
        """Objectified rollback: the pre-change running configuration, as a
        request, planned and applied like any other. None, or why it failed."""
        networks, bondings = rollback_request(before, core.persistence.running.snapshot())
        try:
            core.apply(core.plan(networks, bondings, ROLLBACK_OPTIONS))
        except NetError as error:
            # NetworkSetup left kernel and running configuration in step (in
            # the new state); the engine is told through the code 10 answer.
            log.error("rollback after the connectivity check failed: %s", error)
            return str(error)
        core.persistence.replace_running(before.get("networks", {}), before.get("bonds", {}))
        return None

    @staticmethod
    def _restore(core: NetworkSetup) -> dict:
        persistent = core.persistence.restore_source()
        running = core.persistence.running.snapshot()
        broken_nets, broken_bonds = broken_entries(persistent, running, core.read_caps(running))
        if broken_nets or broken_bonds:
            log.info(
                "restore_nets: re-creating %s missing from the kernel",
                ", ".join(sorted(broken_nets) + sorted(broken_bonds)),
            )
            core.apply(core.plan(broken_nets, broken_bonds, RESTORE_OPTIONS))
            running = core.persistence.running.snapshot()
        networks, bondings = restore_request(persistent, running)
        plan = core.plan(networks, bondings, RESTORE_OPTIONS)
        log.info("restore_nets: %d operations", len(plan.operations))
        core.apply(plan)
        return {
            **DONE,
            "operations": len(plan.operations),
            "networks": sorted(persistent.get("networks", {})),
            "bonds": sorted(persistent.get("bonds", {})),
        }
