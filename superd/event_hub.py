"""Where superd's events come together: live-netinfo states and uevents in,
numbered events out (:class:`shared.event_log.EventLog`), actions started.

The monitor calls :meth:`EventHub.on_state` in its thread with each state it
publishes; the hotplug watcher calls :meth:`EventHub.on_uevent` in its own.
Both stay short: diffing two states touches only what changed (a state
shares what did not with the one before), and an action (``restore``) runs
in a thread of its own.

While superd changes the host itself (:meth:`EventHub.quiet`), states are
not diffed; afterwards the baseline jumps to the state the change left.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from shared.config import Config
from shared.event_log import EventLog
from superd import events as ev
from superd.monitor import LiveNetinfo
from superd.netstate import NetState

log = logging.getLogger("netreload.superd.events")

RunningView = Callable[[], Mapping[str, Any]]
Restore = Callable[[set[str]], None]
VIRTUAL_DEVPATH = "/devices/virtual/"


class EventHub:
    def __init__(self, config: Config, live: LiveNetinfo, running: RunningView = dict,
                 restore: Restore | None = None) -> None:  # fmt: skip
        """``running``: the running configuration events name networks from;
        ``restore``: the action that repairs the networks and bonds an
        event broke (``superd.repair.repair_plan``)."""
        self.config, self.live = config, live
        self.running = running
        self.log = EventLog()
        self.policy = ev.parse_policy(config.extra.get("events", {}))
        self.nic_presence_from_netlink = True
        self.restore = restore
        # Held while superd changes the host (e.g. the hotplug watcher's).
        self.holds: list[Callable[[], contextlib.AbstractContextManager]] = []
        self._lock = threading.Lock()  # guards _baseline and _quiet
        self._baseline: NetState = live.snapshot()
        self._quiet = 0

    # -- sources ------------------------------------------------------------
    def on_state(self, state: NetState) -> None:
        with self._lock:
            if self._quiet:
                return
            old, self._baseline = self._baseline, state
        found = ev.state_events(
            old.links,
            old.addresses,
            state.links,
            state.addresses,
            self.config.is_fake_nic,
            self.nic_presence_from_netlink,
            # what changed between the two: the cost of the change, not of the host
            self.live.changed_between(old.version, state.version),
        )
        if found:
            self._emit(found)

    def on_uevent(self, action: str, name: str, ifindex: int | None, devpath: str) -> None:
        physical = bool(devpath) and not devpath.startswith(VIRTUAL_DEVPATH)
        if physical or self.config.is_fake_nic(name):
            self._emit([ev.nic_event(name, ifindex, added=action == "add")])

    # -- superd's own changes -------------------------------------------------
    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """No events for what happens inside (superd's own change)."""
        with self._lock:
            self._quiet += 1
        try:
            with contextlib.ExitStack() as held:
                for hold in self.holds:
                    held.enter_context(hold())
                yield
        finally:
            try:
                self.live.sync()  # the change's own notifications are in
            except Exception as error:
                log.warning("events: monitor sync failed after a change: %s", error)
            with self._lock:
                self._quiet -= 1
                if not self._quiet:
                    self._baseline = self.live.snapshot()

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Events superd itself reports (an action's outcome), as they are."""
        self.log.append(events)

    # -- events out, actions started ----------------------------------------
    def _emit(self, found: list[dict[str, Any]]) -> None:
        try:
            running = self.running()
        except Exception as error:  # an event must not die for a file read
            log.warning("events: running configuration unreadable: %s", error)
            running = {}
        found = ev.with_usage(found, running)
        for event in found:
            log.info("event: %s", event)
        self.log.append(ev.reported(found, self.policy))
        targets = ev.restore_targets(found, self.policy)
        if targets and self.restore is not None:
            threading.Thread(
                target=self.restore, args=(targets,), name="superd-restore", daemon=True
            ).start()
