"""What no STOMP client may hold of frontd, and who gives way (pure).

* Slots: at most ``MAX_HANDSHAKES`` TLS handshakes in progress and
  ``MAX_CONNECTIONS`` connections; over a cap, the peer address holding the
  most slots gives one up (:func:`oldest_of_busiest`), so a client flooding
  from one address pushes out its own sockets, not the engine's.
* Requests: at most ``MAX_IN_FLIGHT`` of one connection are being answered;
  frontd reads no further from it until one is (backpressure), so the
  connections together stay within the request pool (``jsonrpc.MAX_PENDING``)
  and a client pipelining requests cannot take it from the engine.
* Unsent messages: a client that stops reading holds frontd's memory in what
  is written for it. Past ``MAX_OUTBOX`` on one connection (four answers of
  a 5000-network host), or ``MAX_OUTBOX_TOTAL`` on all of them, the
  connection holding the most is dropped (:func:`outbox_to_drop`).
* Held events: notifications published while nobody listens wait for the
  first subscriber, the newest ``HELD_EVENTS`` and at most
  ``HELD_EVENT_BYTES`` (:class:`EventBacklog`).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

MAX_CONNECTIONS = 64
MAX_HANDSHAKES = 64
MAX_IN_FLIGHT = 4  # x MAX_CONNECTIONS = jsonrpc.MAX_PENDING
MAX_OUTBOX = 32 * 1024 * 1024
MAX_OUTBOX_TOTAL = 128 * 1024 * 1024
# Below this a connection's outbox is not looked at: 64 of them stay under
# the total, and the engine's ordinary answers cost no sum over all sockets.
OUTBOX_QUIET = 1024 * 1024
HELD_EVENTS = 64
HELD_EVENT_BYTES = 4 * 1024 * 1024

T = TypeVar("T")


def oldest_of_busiest(items: Iterable[tuple[T, str]], key: Callable[[T], Any] | None = None) -> T:
    """What gives way when a cap is reached: among the items of the peer host
    holding the most, the first (``items`` are in start order) or the least
    by ``key``."""
    entries = list(items)
    counts = Counter(host for _, host in entries)
    busiest = max(counts, key=counts.__getitem__)
    mine = [item for item, host in entries if host == busiest]
    return min(mine, key=key) if key is not None else mine[0]


def outbox_to_drop(own: tuple[int, T], everyone: Callable[[], Iterable[tuple[int, T]]]) -> T | None:
    """After a write of ``own`` (its unsent bytes, its connection): the
    connection to drop, or None. ``everyone`` is asked only when ``own`` is
    past ``OUTBOX_QUIET``."""
    size, connection = own
    if size <= OUTBOX_QUIET:
        return None
    if size > MAX_OUTBOX:
        return connection
    outboxes = list(everyone())
    if sum(unsent for unsent, _ in outboxes) <= MAX_OUTBOX_TOTAL:
        return None
    return max(outboxes, key=lambda pair: pair[0])[1]


class EventBacklog:
    """Notifications waiting for a subscriber, oldest first, bounded."""

    def __init__(self, count: int = HELD_EVENTS, size: int = HELD_EVENT_BYTES) -> None:
        self.count, self.size = count, size
        self._bodies: deque[bytes] = deque()
        self._bytes = 0

    def hold(self, body: bytes) -> int:
        """Keep ``body``; how many older ones were dropped to make room."""
        self._bodies.append(body)
        self._bytes += len(body)
        dropped = 0
        while len(self._bodies) > self.count or self._bytes > self.size:
            self._bytes -= len(self._bodies.popleft())
            dropped += 1
        return dropped

    def take(self) -> list[bytes]:
        """Everything held, oldest first; the backlog is empty after."""
        bodies = list(self._bodies)
        self._bodies.clear()
        self._bytes = 0
        return bodies
