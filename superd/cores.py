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
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shared.errors import ErrorCode, NetError
from shared.netmodel.ownership import owned_links
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
        super().__init__(core.persistence, core.configurators, self.caps_source, self._owned)
        self._core = core

    def close(self) -> None:
        """The wrapped core's (its configurators and netinfo reader)."""
        self._core.close()

    def _owned(self) -> frozenset[str]:
        """From the state the last ``read_caps`` read (a fresh dump inside a
        transaction becomes the cache), or the kernel when the monitor fails."""
        if not self.caps_source.live.alive:
            return self.configurators.owned_devices()
        return owned_links(self.caps_source.live.snapshot().links.values())

    def apply(self, plan: Plan) -> None:
        self.caps_source.direct += 1
        try:
            with self.caps_source.live.held():
                super().apply(plan)
        finally:
            self.caps_source.direct -= 1
