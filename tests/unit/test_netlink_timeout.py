"""netlink.query waits a bounded time for the kernel's answer: a peer that
never answers (a socketpair standing in for the kernel) ends in
AnswerTimeout, not a recv blocked for good."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from netlink import constants, query
from netlink.constants import NLMSG, NLMSG_DONE


@pytest.fixture
def silent_kernel() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the caller's end, the never-answering peer). The caller's end has a
    socket timeout of its own (10 s) so that a query without a deadline
    fails the test instead of hanging it."""
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.settimeout(10)
    try:
        yield ours, peer
    finally:
        ours.close()
        peer.close()


def test_a_dump_nobody_answers_ends_in_answer_timeout(silent_kernel) -> None:
    ours, _ = silent_kernel
    started = time.monotonic()
    with pytest.raises(query.AnswerTimeout, match="no complete answer within 0.3 s"):
        list(query.dump(ours, constants.RTM_GETLINK, timeout=0.3))
    assert time.monotonic() - started < 3


def test_the_deadline_covers_the_whole_dump_not_each_datagram(silent_kernel) -> None:
    """Datagrams keep coming (a stale request's answers, every 50 ms) but
    this dump's end never does: the dump still ends at its deadline."""
    ours, peer = silent_kernel
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.05):
            peer.send(NLMSG.pack(NLMSG.size, NLMSG_DONE, 0, 0xFFFFFFF0, 0))  # another seq

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(query.AnswerTimeout):
            list(query.dump(ours, constants.RTM_GETADDR, timeout=0.5))
    finally:
        stop.set()
        thread.join()
    assert time.monotonic() - started < 3


def test_a_link_request_nobody_answers_ends_in_answer_timeout(silent_kernel) -> None:
    ours, _ = silent_kernel
    with pytest.raises(query.AnswerTimeout, match="netlink get link"):
        query.get_link(ours, 1, timeout=0.3)


def test_the_default_deadline_is_generous() -> None:
    """A dump of 5,000 bridges takes about half a second; RTNL can be held
    for minutes: the default waits two of them."""
    assert query.ANSWER_TIMEOUT >= 60


def test_an_answer_timeout_is_an_oserror_with_etimedout() -> None:
    """Callers that catch OSError (superd's start, the monitor's resync)
    catch it too."""
    error = query.AnswerTimeout("netlink dump 18", 1.0)
    assert isinstance(error, OSError)
    assert error.errno == 110
