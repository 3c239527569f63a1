"""Who gives way when a STOMP client holds too much (frontd.stomp_limits)."""

from __future__ import annotations

from frontd.stomp_limits import (
    MAX_OUTBOX,
    MAX_OUTBOX_TOTAL,
    OUTBOX_QUIET,
    EventBacklog,
    oldest_of_busiest,
    outbox_to_drop,
)

MIB = 1024 * 1024


def never_asked() -> list:
    raise AssertionError("the other connections were looked at")


def test_a_quiet_outbox_is_not_compared_with_the_others() -> None:
    assert outbox_to_drop((OUTBOX_QUIET, "engine"), never_asked) is None


def test_one_connection_past_its_own_limit_is_dropped() -> None:
    assert outbox_to_drop((MAX_OUTBOX + 1, "slow"), never_asked) == "slow"


def test_outboxes_under_the_total_are_left_alone() -> None:
    everyone = [(MAX_OUTBOX, f"c{i}") for i in range(MAX_OUTBOX_TOTAL // MAX_OUTBOX)]
    assert outbox_to_drop((MAX_OUTBOX, "c0"), lambda: everyone) is None


def test_past_the_total_the_connection_holding_the_most_goes_not_the_writer() -> None:
    everyone = [(2 * MIB, "engine"), *[(MAX_OUTBOX - i, f"slow{i}") for i in range(4)]]
    assert sum(size for size, _ in everyone) > MAX_OUTBOX_TOTAL
    assert outbox_to_drop((2 * MIB, "engine"), lambda: everyone) == "slow0"


def test_the_busiest_address_gives_up_its_oldest_slot() -> None:
    slots = [("a1", "10.0.0.1"), ("b1", "10.0.0.2"), ("b2", "10.0.0.2"), ("a2", "10.0.0.1"),
             ("b3", "10.0.0.2")]  # fmt: skip
    assert oldest_of_busiest(slots) == "b1"


def test_the_backlog_keeps_the_newest_within_its_count() -> None:
    backlog = EventBacklog(count=3, size=MIB)
    dropped = sum(backlog.hold(b"%d" % i) for i in range(5))
    assert dropped == 2
    assert backlog.take() == [b"2", b"3", b"4"]
    assert backlog.take() == []


def test_the_backlog_keeps_the_newest_within_its_size() -> None:
    backlog = EventBacklog(count=100, size=10)
    for body in (b"aaaa", b"bbbb", b"cccc"):
        backlog.hold(body)
    assert backlog.take() == [b"bbbb", b"cccc"]
