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
worker thread for its whole life: one for network changes, and — without a
live netinfo — one (its own netlink socket) for netinfo reads, which
therefore never wait for a change.

With a live netinfo (``superd.monitor``, what the daemon runs) the netinfo
verb is served from its cache in the caller's thread (no netlink request),
and the writer's NetworkSetup plans against the cache once the monitor has
caught up with the kernel, while its verification (and rollback planning)
reads the kernel: a full dump done by the monitor, which refreshes the cache
at the same time.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from persistence.atomic import libc
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.event_log import wait_args
from shared.netmodel.plan import Plan
from shared.wire import VERBS, RawJson
from superd.event_hub import EventHub
from superd.monitor import LiveNetinfo
from superd.repair import repair_plan
from superd.setup_networks import NetworkSetup, rollback_request
from superd.verify import bond_mismatches, network_mismatches

log = logging.getLogger("netreload.superd.verbs")

T = TypeVar("T")
Handler = Callable[[dict], Any]
CoreFactory = Callable[[Config], NetworkSetup]

ROLLBACK_OPTIONS = {"connectivityCheck": False, "_inRollback": True}
RESTORE_OPTIONS = {"connectivityCheck": False}
DONE = {"code": 0, "message": "Done"}
REPAIR_WAIT = 120.0  # seconds a restore action waits for a running change
BIG_CHANGE = 100  # operations after which superd hands memory back


def release_memory() -> None:
    """Hand what a large change left behind (its plan, its notifications,
    a thousand-device dump) back to the system: superd stays resident."""
    gc.collect()
    trim = getattr(libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


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


class LiveCaps:
    """``read_caps`` of the writer's NetworkSetup with a live netinfo.

    Outside a transaction (planning, restore's check): the cache, after
    :meth:`LiveNetinfo.sync` (every change acknowledged so far is in it), as
    a private copy. Inside one (verification, rollback planning): a full
    dump, exact. ``fallback`` (a direct read on the writer's own socket)
    serves when the monitor does not answer.
    """

    def __init__(self, live: LiveNetinfo, fallback: Callable[[Mapping], dict]) -> None:
        self.live = live
        self.fallback = fallback
        self.direct = 0  # > 0 inside a transaction

    def __call__(self, running: Mapping) -> dict:
        try:
            if self.direct:
                return self.live.fresh_capabilities(running)
            self.live.sync()
            return copy.deepcopy(self.live.capabilities(running))
        except Exception as error:  # the monitor's trouble must not fail the change
            log.error("live netinfo unavailable (%s): reading the kernel directly", error)
            return self.fallback(running)


class LiveNetworkSetup(NetworkSetup):
    """A NetworkSetup reading the live netinfo (see :class:`LiveCaps`)."""

    def __init__(self, core: NetworkSetup, live: LiveNetinfo) -> None:
        self.caps_source = LiveCaps(live, core.read_caps)
        super().__init__(core.persistence, core.configurator, self.caps_source)

    def apply(self, plan: Plan) -> None:
        self.caps_source.direct += 1
        try:
            with self.caps_source.live.held():
                super().apply(plan)
        finally:
            self.caps_source.direct -= 1


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

    def __init__(
        self,
        config: Config,
        core_factory: CoreFactory | None = None,
        live: LiveNetinfo | None = None,
        hub: EventHub | None = None,
    ) -> None:
        if core_factory is None:
            from superd.oneshot import build_setup

            core_factory = build_setup
        factory = core_factory
        self.connectivity = ConnectivityMonitor()
        self._busy = threading.Lock()
        self._closing = False
        self.live = live
        self.hub = hub
        if hub is not None:
            hub.restore = self.repair_networks
        if live is not None:
            self._writer = CoreWorker("superd-net", lambda: LiveNetworkSetup(factory(config), live))
            self._reader: CoreWorker | None = None
            # The writer's store: its shared snapshot is safe from any thread.
            self._running_view = self._writer.call(lambda core: core.persistence.running)
            if hub is not None:  # events name networks: from memory, not 1000 files
                hub.running = lambda: self._running_view.shared_snapshot()[1]
        else:
            self._writer = CoreWorker("superd-net", lambda: factory(config))
            try:
                self._reader = CoreWorker("superd-netinfo", lambda: factory(config))
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
            "events": self.events,
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
        if self.hub is not None:
            self.hub.log.close()
        self._writer.close()
        if self._reader is not None:
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

    def _quiet(self) -> contextlib.AbstractContextManager:
        """superd's own changes are not events."""
        return self.hub.quiet() if self.hub is not None else contextlib.nullcontext()

    # -- concurrent verbs -------------------------------------------------
    def ping(self, args: dict) -> str:
        return "pong"

    def netinfo(self, args: dict) -> dict:
        if self._reader is None:
            assert self.live is not None
            if not self.live.alive:
                raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "netinfo: the monitor stopped")
            generation, running = self._running_view.shared_snapshot()
            token, caps = self.live.report(running, generation, known=args.get("known"))
            if caps is None:  # the caller holds this very report
                return {"token": token, "unchanged": True}
            return {"token": token, "caps": RawJson(caps), "running": running}

        def read(core: NetworkSetup) -> dict:
            running = core.persistence.running.snapshot()
            return {"caps": core.read_caps(running), "running": running}

        return self._reader.call(read)

    def events(self, args: dict) -> dict:
        """Long poll of the event log (see ``superd.event_log``)."""
        if self.hub is None:
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "events: superd has no live netinfo")
        return self.hub.log.wait(*wait_args(args))

    def confirm_connectivity(self, args: dict) -> dict:
        self.connectivity.confirm()
        return dict(DONE)

    # -- network-changing verbs (one at a time) ----------------------------
    def apply_plan(self, args: dict) -> dict:
        plan = plan_from_wire(args)
        big = len(plan.operations) >= BIG_CHANGE
        try:
            return self._apply_plan(plan)
        finally:
            del plan
            if big:  # a collection costs tens of ms: only where it pays
                release_memory()

    def _apply_plan(self, plan: Plan) -> dict:
        with self._exclusive("apply_plan"):
            return self._writer.call(lambda core: self._transaction(core, plan))

    def set_safe_config(self, args: dict) -> dict:
        with self._exclusive("set_safe_config"):
            self._writer.call(lambda core: core.persistence.set_safe_config())
        return dict(DONE)

    def restore_nets(self, args: dict) -> dict:
        with self._exclusive("restore_nets"), self._quiet():
            return self._writer.call(self._restore)

    def repair_networks(self, names: set[str]) -> None:
        """The ``restore`` event action (its own thread): rebuild ``names``
        once no other change runs; the outcome is an event."""
        deadline = time.monotonic() + REPAIR_WAIT
        while not self._busy.acquire(timeout=0.2):
            if self._closing or time.monotonic() > deadline:
                log.warning("restore of %s given up: superd busy or closing", sorted(names))
                return
        try:
            with self._quiet():
                plan, broken = self._writer.call(lambda core: repair_plan(core, names))
                if plan is not None:
                    log.info("restore action: rebuilding %s", ", ".join(broken))
                    self._writer.call(lambda core: core.apply(plan))
            outcome = {"kind": "networks_restored", "networks": broken}
        except Exception as error:
            log.error("restore action for %s failed: %s", sorted(names), error)
            outcome = {"kind": "restore_failed", "networks": sorted(names), "message": str(error)}
        finally:
            self._busy.release()
        if self.hub is not None and outcome["networks"]:
            self.hub.emit([outcome])

    # -- jobs, run in the writer thread -----------------------------------
    def _transaction(self, core: NetworkSetup, plan: Plan) -> dict:
        started = time.monotonic()
        before = core.persistence.running.snapshot()
        check_plan_base(plan, before)
        log.info("apply_plan: %d operations", len(plan.operations))
        with self._quiet():  # not the connectivity wait: the host lives on meanwhile
            core.apply(plan)
        options = plan.options
        if not plan.is_empty and options["connectivityCheck"] and not options["_inRollback"]:
            timeout = options["connectivityTimeout"]
            log.info("apply_plan: waiting up to %ss for confirm_connectivity", timeout)
            if not self.connectivity.wait(started, timeout):
                log.warning("apply_plan: connectivity check failed, rolling back")
                with self._quiet():
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
        # what a configurator kept on its own (OVSDB bridges) and running does not name
        dropped = core.configurator.remove_unrecorded(running)
        if dropped:
            log.info("restore_nets: removed %s left from before", ", ".join(dropped))
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
