"""superd's verbs: the fixed table of what frontd may ask, plain data in and out.

apply_plan runs the privileged half of setupNetworks (frontd ran
canonicalize → build model → validate → plan):

    re-validate the plan (Plan.from_dict) → check it against the running
    configuration (a stale plan is refused) → journal the running
    configuration it starts from → apply (NetworkSetup: intent, configurator,
    verify, commit or objectified rollback) → connectivity check (wait for
    confirm_connectivity; none → objectified rollback, code 10) → end the
    journal (the commit) → persist (commitOnSuccess → set_safe_config)

A journal found at start-up (superd died inside a transaction) is undone by
:meth:`Verbs.recover` before anything is served.

Only one network-changing verb (apply_plan, restore_nets, set_safe_config)
runs at a time; another one arriving meanwhile is refused at once with
RESOURCE_UNAVAILABLE (40). ping, netinfo, network_stats and
confirm_connectivity run concurrently with it.

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
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from persistence.journal import TransactionJournal
from persistence.sections import plain_snapshot
from shared import netinfo_delta as delta
from shared.allocator import malloc_window
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.event_log import wait_args
from shared.gc_pause import CollectorPause
from shared.netmodel.plan import Plan
from shared.netmodel.plan_checks import check_plan_devices, check_plan_owned
from shared.wire import VERBS, RawJson
from superd import netstats
from superd.connectivity import ConnectivityMonitor
from superd.cores import CoreWorker, LiveNetworkSetup
from superd.event_hub import EventHub
from superd.monitor import READ_OVS, LiveNetinfo
from superd.plan_intake import check_plan_base, final_shapes, plan_from_wire
from superd.plan_scope import is_big, plan_names, plan_netinfo, restore_is_big
from superd.release import ReleaseAfterAnswer, wire_is_big
from superd.repair import rebuild, recover_transaction, recovered_event, repair_plan, restore_answer
from superd.rollback import roll_back_after_lost_connectivity
from superd.setup_networks import NetworkSetup

log = logging.getLogger("netreload.superd.verbs")

Handler = Callable[[dict], Any]
CoreFactory = Callable[[Config], NetworkSetup]

DONE = {"code": 0, "message": "Done"}
REPAIR_WAIT = 120.0  # seconds a restore action waits for a running change


class Verbs:
    """The verb table and the state the verbs share."""

    def __init__(
        self,
        config: Config,
        core_factory: CoreFactory,
        live: LiveNetinfo | None = None,
        hub: EventHub | None = None,
    ) -> None:
        """``core_factory`` makes a NetworkSetup (``superd.compose``); with a
        live netinfo, superd serves netinfo from it and ``hub`` (made with
        :meth:`running_networks` and :meth:`repair_networks`) its events."""
        factory = core_factory
        self.config = config
        self.connectivity = ConnectivityMonitor()
        self.journal = TransactionJournal(config.run_dir)
        self._busy = threading.Lock()
        # (generation, running, kernel state, OVSDB state) netinfo serves
        # during a change
        self._view_lock = threading.Lock()
        self._frozen: tuple[int, dict, Any, Any] | None = None
        # the last netinfo answer given to a caller taking deltas: (token, caps, running, owned)
        # (the answer: token, caps, running, owned; the running configuration's generation)
        self._sent: tuple[tuple[str, dict, dict, frozenset[str]], int] | None = None
        self._sent_lock = threading.Lock()
        # a change's leftovers (the view of before; a big change's memory),
        # handed back once its answer is out
        self._release = ReleaseAfterAnswer()
        self._closing = False
        self.live = live
        self.hub = hub
        if live is not None:
            self._writer = CoreWorker("superd-net", lambda: LiveNetworkSetup(factory(config), live))
            self._reader: CoreWorker | None = None
            # The writer's store: its shared snapshot is safe from any thread.
            self._running_view = self._writer.call(lambda core: core.persistence.running)
            # the report builder judges only the networks each write changed
            live.running_names = self._running_view.changed_between
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
            "network_stats": self.network_stats,
        }
        assert set(self.table) == set(VERBS), "verb table out of step with shared.wire"

    def running_networks(self) -> Mapping[str, Any]:
        """The running configuration from memory (events name networks from
        it: not 1000 files); empty without a live netinfo."""
        if self.live is None:
            return {}
        return self._running_view.shared_snapshot()[1]

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

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """superd's own change: not events, and never seen half made.

        The running configuration names a change's networks before the
        kernel has them (intent first), and the kernel gets them one device
        at a time: netinfo answers meanwhile with the running configuration
        and kernel state of before the change; the first answer after it
        has all of it (the monitor caught up when ``hub.quiet`` ends).
        """
        with self._view_lock:
            if self.live is not None:
                generation, running = self._running_view.shared_snapshot()
                ovs = self.live.ovs_state(running)
                self._frozen = (generation, running, self.live.snapshot(), ovs)
        try:
            with self.hub.quiet() if self.hub is not None else contextlib.nullcontext():
                yield
        finally:
            with self._view_lock:
                frozen, self._frozen = self._frozen, None
            # the view of before: freeing it walks the host's thousands of
            # entries, so it goes once the answer is out
            self._release.drop_after_answer(frozen)
            del frozen

    @contextlib.contextmanager
    def _journaled(self, verb: str, before: Mapping,
                   names: Mapping[str, list[str]] | None = None) -> Iterator[None]:  # fmt: skip
        """The transaction's journal on disk while it runs: ended however it
        ends in-process, left behind only if the process dies. ``names``:
        the only networks and bonds it may change (journaled alone)."""
        self.journal.begin(verb, before, names)
        try:
            yield
        finally:
            self.journal.end()

    def recover(self) -> dict | None:
        """At start-up, before serving: a journal left behind means superd
        died inside a transaction; undo it (or finish an interrupted
        restore-nets, see ``repair.recover_transaction``) in kernel and
        running config. The event reported, or None when there was nothing
        to recover."""
        debris = self._writer.call(lambda core: core.persistence.running.remove_debris())
        if debris:
            log.warning("removed %d files of writes cut short: %s", len(debris), ", ".join(debris))
        # a journal of changes only is completed with the running configuration on disk
        entry = self.journal.pending(
            self._writer.call(lambda core: core.persistence.running.shared_snapshot()[1])
        )
        self._adopt(entry["before"] if entry is not None else None)
        if entry is None:
            return None
        before, verb = entry["before"], entry["verb"]
        log.warning(
            "superd stopped inside %s (pid %s), which started from %d networks and %d bonds",
            verb, entry.get("pid"), len(before["networks"]), len(before["bonds"]),
        )  # fmt: skip
        try:
            with self._busy, self._quiet():
                outcome, held, done = self._writer.call(
                    lambda core: recover_transaction(core, verb, before)
                )
        except Exception as error:
            log.error("recovery of the interrupted %s failed: %s", verb, error)
            self.journal.set_aside("failed")
            event = {"kind": "recovery_failed", "verb": verb, "message": str(error)}
        else:
            self.journal.end()
            log.info("recovered: the interrupted %s %s in %d operations", verb, outcome, done)
            event = recovered_event(verb, outcome, held)
        if self.hub is not None:
            self.hub.emit([event])
        return event

    def _adopt(self, before: Mapping | None) -> None:
        """The upgrade rule (``shared.netmodel.ownership``), before recovery
        and before serving: the devices netreload's running configuration
        (or an interrupted transaction's ``before``) names get the mark."""
        configs = [before] if isinstance(before, Mapping) else []
        try:
            self._writer.call(lambda core: core.adopt_named_devices(*configs))
        except Exception as error:  # the rest of superd does not depend on it
            log.error("marking the devices of the running configuration failed: %s", error)

    def _owned(self, state: Any) -> list[str]:
        """The marked devices of a live state (``LiveNetinfo.owned``)."""
        assert self.live is not None
        return self.live.owned(state)[0]

    # -- concurrent verbs -------------------------------------------------
    def ping(self, args: dict) -> str:
        return "pong"

    def netinfo(self, args: dict) -> dict:
        if self._reader is None:
            assert self.live is not None
            if not self.live.alive:
                raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "netinfo: the monitor stopped")
            with self._view_lock:  # a running configuration and its kernel state
                if self._frozen is not None:
                    generation, running, state, ovs = self._frozen
                else:
                    generation, running = self._running_view.shared_snapshot()
                    state, ovs = self.live.snapshot(), READ_OVS
            known = args.get("known")
            if args.get("delta") is True:
                return self._netinfo_delta(known, generation, running, state, ovs)
            token, caps = self.live.report(running, generation, known, state, ovs)
            if caps is None:  # the caller holds this very report
                return {"token": token, "unchanged": True}
            owned = self._owned(state)
            running = plain_snapshot(running)  # encoded by orjson: dicts
            return {"token": token, "caps": RawJson(caps), "running": running, "owned": owned}

        def read(core: NetworkSetup) -> dict:
            running = core.persistence.running.snapshot()
            caps = core.read_caps(running)
            return {"caps": caps, "running": running, "owned": sorted(core.read_owned())}

        return self._reader.call(read)

    def _netinfo_delta(self, known: object, generation: int, running: dict, state: Any,
                       ovs: Any) -> dict:  # fmt: skip
        """netinfo for a caller that takes deltas (frontd): the answer it
        holds (``known``) unchanged, or — when ``known`` names the last
        answer given — what changed since (:mod:`shared.netinfo_delta`),
        else the whole of it, remembered as the base of the next delta."""
        assert self.live is not None
        token, caps = self.live.report_dict(running, generation, state, ovs)
        if token == known:
            return {"token": token, "unchanged": True}
        owned_set = self.live.owned_set(state)  # the sorted list: for a whole answer only
        now = (token, caps, running, owned_set)
        with self._sent_lock:
            sent, self._sent = self._sent, (now, generation)
        if sent is not None and sent[0][0] == known:
            # what the builder rebuilt, what the store wrote: the rest is the same
            hint = self.live.report_changes(sent[0][1], caps)
            written = self._running_view.changed_between(sent[1], generation)
            moved = self.live.owned_changes(sent[0][3], owned_set)
            return delta.answer(sent[0], now, hint, written, moved)
        _, encoded = self.live.report(running, generation, None, state, ovs)
        owned = self._owned(state)
        running = plain_snapshot(running)  # encoded by orjson: dicts
        return {"token": token, "caps": RawJson(encoded), "running": running, "owned": owned}

    def events(self, args: dict) -> dict:
        """Long poll of the event log (see ``superd.event_log``)."""
        if self.hub is None:
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "events: superd has no live netinfo")
        return self.hub.log.wait(*wait_args(args))

    def network_stats(self, args: dict) -> dict:
        """Counters and state of every device (no lock: it reads only)."""
        if self.live is not None and self.live.alive:
            return self.live.network_statistics()
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
            return netstats.collect(None, self.config.is_fake_nic, sock)

    def confirm_connectivity(self, args: dict) -> dict:
        self.connectivity.confirm()
        return dict(DONE)

    # -- network-changing verbs (one at a time) ----------------------------
    def apply_plan(self, args: dict) -> dict:
        pause, big = CollectorPause(), False  # a big change's: from its intake to its release
        wire_big = wire_is_big(args)
        pause.begin(wire_big)
        try:
            with malloc_window(wire_big):  # a big plan's checked copy pins no arena either
                plan = plan_from_wire(args)
            big = is_big(plan.operations)
            with malloc_window(big):  # shared.allocator: a big change's leftovers pin no arena
                return self._apply_plan(plan, pause)
        finally:
            plan = None  # dropped before the release
            if big:
                self._big_change_done(pause)
            else:
                pause.end()

    def _big_change_done(self, pause: CollectorPause) -> None:
        """Memory handed back once the answer is out (a collection costs tens
        of ms: only after a big change), then the collector back."""
        with self._sent_lock:  # the report from before: the next answer is whole
            self._sent = None
        self._release.due(pause.end)

    @property
    def defer_release(self) -> bool:
        """True once a server calls :meth:`after_answer` after each answer."""
        return self._release.deferred

    @defer_release.setter
    def defer_release(self, value: bool) -> None:
        self._release.deferred = value

    def after_answer(self) -> None:
        """Called by the server once an answer is sent (or failed to be): a
        change's view of before is dropped and a big change's memory handed
        back here, off the engine's wait (15-35 ms at 1,000 networks; frontd
        relays the answer on the other CPU meanwhile), in the thread that
        answered the change."""
        self._release.after_answer()

    def _apply_plan(self, plan: Plan, pause: CollectorPause) -> dict:
        with self._exclusive("apply_plan"):
            return self._writer.call(lambda core: self._transaction(core, plan, pause))

    def set_safe_config(self, args: dict) -> dict:
        with self._exclusive("set_safe_config"):
            self._writer.call(lambda core: core.persistence.set_safe_config())
        return dict(DONE)

    def restore_nets(self, args: dict) -> dict:
        pause, big = CollectorPause(), False  # a big rebuild's: ends in its release
        try:
            with self._exclusive("restore_nets"), self._quiet():
                answer, big = self._writer.call(lambda core: self._restore(core, pause))
        finally:
            if big:
                self._big_change_done(pause)
            else:
                pause.end()
        return answer

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
                    self._writer.call(lambda core: self._journaled_apply(core, plan, "restore"))
            outcome = {"kind": "networks_restored", "networks": broken}
        except Exception as error:
            log.error("restore action for %s failed: %s", sorted(names), error)
            outcome = {"kind": "restore_failed", "networks": sorted(names), "message": str(error)}
        finally:
            self._busy.release()
        if self.hub is not None and outcome["networks"]:
            self.hub.emit([outcome])

    # -- jobs, run in the writer thread -----------------------------------
    def _journaled_apply(self, core: NetworkSetup, plan: Plan, verb: str) -> None:
        with self._journaled(verb, core.persistence.running.snapshot()):
            core.apply(plan)

    def _transaction(self, core: NetworkSetup, plan: Plan, pause: CollectorPause) -> dict:
        started = time.monotonic()
        generation, before = core.persistence.running.shared_snapshot()  # read-only: not copied
        plan = check_plan_base(plan, before)
        if self.live is not None:
            plan = plan.with_shapes(final_shapes(plan, self.live.running_shapes(before)))
        caps = self._host_caps(core, before)
        check_plan_devices(plan.operations, caps.get("nics", {}), caps.get("bondings", {}))
        check_plan_owned(plan.operations, before, plan_netinfo(plan, caps, core.read_owned()))
        log.info("apply_plan: %d operations", len(plan.operations))
        if not plan.is_empty:
            names = plan_names(plan)
            if isinstance(core, LiveNetworkSetup) and plan.running is not None:
                core.planned_from(plan.running, generation, names)  # its check costs the change
            # the commit: the journal's end; it holds what the plan's names were
            with self._journaled("apply_plan", before, names):
                self._apply_and_confirm(core, plan, before, started, pause)
        if plan.options["commitOnSuccess"]:
            core.persistence.set_safe_config()
        log.info("apply_plan: done")
        return {**DONE, "operations": len(plan.operations)}

    def _host_caps(self, core: NetworkSetup, running: Mapping) -> Mapping:
        """The host's capabilities with ``running`` (read-only): with a live
        netinfo, the report frontd planned against, already built."""
        if self.live is None:
            return core.read_caps(running)
        generation, shared = self._running_view.shared_snapshot()
        if shared is not running and shared != running:  # not the running configuration of now
            return core.read_caps(running)
        return self.live.current_report(shared, generation)

    def _apply_and_confirm(self, core: NetworkSetup, plan: Plan, before: Mapping, started: float,
                           pause: CollectorPause) -> None:  # fmt: skip
        options = plan.options
        check = options["connectivityCheck"] and not options["_inRollback"]
        # a big change collects no cycles until it is answered (shared.gc_pause
        # says why; apply_plan ends the pause), but across a connectivity wait
        pause.begin(is_big(plan.operations))
        with self._quiet():
            # checked: the configurators keep what undoes the change as a
            # whole (a NetworkManager checkpoint) across the wait
            core.apply(plan, pending=check)
        if not check:
            return
        pause.end()  # the host lives on during the wait
        timeout = options["connectivityTimeout"]
        log.info("apply_plan: waiting up to %ss for confirm_connectivity", timeout)
        if self.connectivity.wait(started, timeout):
            core.confirm()
            return
        log.warning("apply_plan: connectivity check failed, rolling back")
        with self._quiet():
            failure = roll_back_after_lost_connectivity(core, before)
        message = "connectivity check failed"
        if failure:
            message += f"; rollback failed too, the new configuration stays: {failure}"
        raise NetError(ErrorCode.LOST_CONNECTION, message)

    def _restore(self, core: NetworkSetup, pause: CollectorPause) -> tuple[dict, bool]:
        """The answer, and whether the rebuild was big (a malloc window, and
        ``pause`` begun: the caller ends it after the answer)."""
        persistent = core.persistence.restore_source()
        big = restore_is_big(persistent)
        pause.begin(big)
        before = core.persistence.running.snapshot()
        with self._journaled("restore_nets", before), malloc_window(big):
            rebuilt = rebuild(core, persistent, "restore_nets")
        return {**DONE, **restore_answer(rebuilt, core.persistence.running.snapshot())}, big
