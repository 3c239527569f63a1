"""frontd's event relay: superd's event log → engines over STOMP, and the CLI.

One thread long-polls superd's ``events`` verb on a connection of its own
(never one of the request pool's), and for every batch:

* publishes one JSON-RPC notification ``|net|host_conn|no_id`` to
  ``jms.queue.events`` (the production agent's network-changed event; the
  engine refreshes the host's capabilities on it), whose params carry
  ``notify_time`` as the agent's do, plus ``events``: the details;
* appends the events to frontd's own log, which ``netreload events`` follows
  through the local method ``Host.waitEvents``.

superd down or restarting: the relay retries every second; a new superd (a
new epoch) is read from its first event. Events superd dropped because the
relay was too slow are counted in ``lost``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from frontd.api import NET_CHANGED_EVENT, notify_time
from frontd.superd_client import SuperdClient
from shared.errors import NetError
from shared.event_log import EventLog

log = logging.getLogger("netreload.frontd.events")

POLL = 25.0  # seconds superd holds a poll open
RETRY = 1.0

Publish = Callable[[str, dict], None]


class EventRelay:
    def __init__(self, superd_socket: Path, publish: Publish | None) -> None:
        self._superd = SuperdClient(superd_socket, timeout=POLL + 15, max_connections=1)
        self.publish = publish
        self.log = EventLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frontd-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop; a poll in flight is abandoned (daemon thread)."""
        self._stop.set()
        self.log.close()
        self._superd.close()

    def _run(self) -> None:
        after, epoch = -1, None
        while not self._stop.is_set():
            args = {"after": after, "timeout": POLL}
            if epoch is not None:
                args["epoch"] = epoch
            try:
                answer = self._superd.call("events", args)
                after, epoch = int(answer["next"]), str(answer["epoch"])
                events, lost = list(answer["events"]), int(answer.get("lost", 0))
            except (NetError, KeyError, TypeError, ValueError) as error:
                log.debug("events: superd not answering (%s), retrying", error)
                self._stop.wait(RETRY)
                continue
            if events or lost:
                self._relay(events, lost)

    def _relay(self, events: list[dict], lost: int) -> None:
        if lost:
            log.warning("events: %d lost (superd's log overflowed)", lost)
        self.log.append(events)
        if self.publish is None:
            return
        params: dict = {"notify_time": notify_time(), "events": events}
        if lost:
            params["lost"] = lost
        try:
            self.publish(NET_CHANGED_EVENT, params)
        except Exception:
            log.exception("publishing %s failed", NET_CHANGED_EVENT)
