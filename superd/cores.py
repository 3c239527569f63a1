"""The writer's cores: one thread per NetworkSetup, and the live-netinfo flavour.

pyroute2 keeps its sockets per thread, so each NetworkSetup lives in one
worker thread (:class:`CoreWorker`) for its whole life. With a live netinfo
the writer's NetworkSetup is a :class:`LiveNetworkSetup`: it plans against
the monitor's cache and verifies against a fresh dump (:class:`LiveCaps`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shared.errors import ErrorCode, NetError
from shared.netmodel.ownership import network_devices
from shared.netmodel.plan import Plan
from superd.monitor import LiveNetinfo
from superd.setup_networks import NetworkSetup

log = logging.getLogger("netreload.superd.cores")

T = TypeVar("T")


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
            self._executor.submit(self._core.close).result()
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
        # the devices of a small change being verified: read again instead of a full dump
        self.reread: frozenset[str] | None = None
        # (generation, running) of the store: a report for that running
        # configuration is built under the key the netinfo verb uses next
        self.named: tuple[int, Mapping] | None = None
        # whether ``named``'s configuration equals the one verified, when
        # known without comparing the whole host's (None: compare)
        self.same: bool | None = None

    def __call__(self, running: Mapping) -> dict:
        try:
            if self.direct:
                # a small change: its devices read again; a big one: a full dump
                if self.reread is not None:
                    state = self.live.refresh(self.reread)
                else:
                    state = self.live.resync()
                named = self.named
                if named is not None and (
                    named[1] is running
                    or (self.same if self.same is not None else named[1] == running)
                ):
                    # under the key the netinfo verb uses next: built once, served after
                    return self.live.report_dict(named[1], named[0], state)[1]
                return self.live.capabilities(running, state)
            self.live.sync()
            return copy.deepcopy(self.live.capabilities(running))
        except Exception as error:  # the monitor's trouble must not fail the change
            log.error("live netinfo unavailable (%s): reading the kernel directly", error)
            return self.fallback(running)


class LiveNetworkSetup(NetworkSetup):
    """A NetworkSetup reading the live netinfo (see :class:`LiveCaps`)."""

    def __init__(self, core: NetworkSetup, live: LiveNetinfo) -> None:
        self.caps_source = LiveCaps(live, core.read_caps)
        super().__init__(core.persistence, core.configurators, self.caps_source, self._owned)
        self._core = core
        # (plan's running configuration, store generation it was replayed on,
        # the names its operations change): see planned_from
        self._planned: tuple[Mapping, int, Mapping[str, list[str]]] | None = None

    def planned_from(self, running: Mapping, generation: int,
                     names: Mapping[str, list[str]]) -> None:  # fmt: skip
        """The next plan's expected running configuration ``running`` is the
        store's of ``generation`` with the operations on ``names`` replayed
        (``check_plan_base`` made or checked it): its verification compares
        only those names and what the store wrote since, not the host's."""
        self._planned = (running, generation, names)

    def close(self) -> None:
        """The wrapped core's (its configurators and netinfo reader)."""
        self._core.close()

    def _owned(self) -> AbstractSet[str]:
        """From the state the last ``read_caps`` read (a fresh dump inside a
        transaction becomes the cache), or the kernel when the monitor fails."""
        if not self.caps_source.live.alive:
            return self.configurators.owned_devices()
        live = self.caps_source.live
        return live.owned_set(live.snapshot())

    def apply(self, plan: Plan, pending: bool = False) -> None:
        self.caps_source.direct += 1
        try:
            with self.caps_source.live.held():
                super().apply(plan, pending)
        finally:
            self.caps_source.direct -= 1
            self._planned = None  # one transaction's

    def _verify(self, plan: Plan) -> None:
        """A small change is verified on the monitor's state once the
        change's own notifications are applied and its devices read again
        (:meth:`LiveNetinfo.refresh`): the cost of the change, not of the
        host. A big one on a full dump (cheaper than its notifications)."""
        small = len(plan.operations) <= SMALL_CHANGE
        self.caps_source.reread = plan_devices(plan.operations) if small else None
        # the report verified is the one the next netinfo answer serves: built once
        named = self.caps_source.named = self.persistence.running.shared_snapshot()
        planned = self._planned
        if planned is not None and planned[0] is plan.running:
            store = self.persistence.running
            self.caps_source.same = same_running(
                named[1], plan.running, store.changed_between(planned[1], named[0]), planned[2]
            )
        try:
            super()._verify(plan)
        finally:
            self.caps_source.reread = self.caps_source.named = self.caps_source.same = None


RUNNING_KEYS = frozenset(("networks", "bonds"))
_ABSENT = object()


def same_running(
    now: Mapping,
    replayed: Mapping,
    changed: Mapping[str, set[str]] | None,
    names: Mapping[str, list[str]],
) -> bool | None:
    """Whether ``now`` (the store's running configuration) equals
    ``replayed`` (a base configuration with the operations on ``names``
    replayed), given ``changed``: what the store wrote since that base
    (``ConfigStore.changed_between``). Every other entry is the base's in
    both, so only those are compared: the cost of the change, where ``==``
    costs the host (~0.5 ms beside 5,000 networks). None when that cannot
    be known (``changed`` unknown, other sections)."""
    if changed is None or now.keys() != RUNNING_KEYS or replayed.keys() != RUNNING_KEYS:
        return None
    for key in RUNNING_KEYS:
        ours, theirs = now[key], replayed[key]
        for name in {*changed.get(key, ()), *names.get(key, ())}:
            if ours.get(name, _ABSENT) != theirs.get(name, _ABSENT):
                return False
    return True


SMALL_CHANGE = 32  # operations verified without a full dump


def plan_devices(operations: list[dict]) -> frozenset[str] | None:
    """The kernel devices a plan's operations create, change or use."""
    devices: set[str] = set()
    for op in operations:
        kind, attrs = op["op"], op.get("attrs", {})
        if kind == "set_mtu":
            devices.add(op["device"])
        elif kind.endswith("_network"):
            devices.add(op["name"])  # a bridge, or an OVS network's internal port
            devices.update(network_devices(op["name"], attrs))
            devices.update(d for d in (attrs.get("nic"), attrs.get("bonding")) if d)
        else:
            devices.add(op["name"])
            devices.update(attrs.get("nics", ()))
    return frozenset(devices)
