"""Requests on a raw NETLINK_ROUTE socket, their answers decoded by
:func:`netlink.decode.messages` as they come: a dump (:func:`dump`), one
link (:func:`get_link`), and the pieces :mod:`netlink.encode` builds its
requests with (:func:`next_seq`, :func:`nla`).

Both wait for their answer at most :data:`ANSWER_TIMEOUT` seconds in all
(:class:`AnswerTimeout` after that): a kernel that never answers, or a dump
that never ends, must not block superd for good. The request is then
abandoned; its late answers, if any, are skipped by sequence number by the
socket's next request. The bound is on waiting for data: a thread the
kernel itself keeps waiting inside ``recv`` (continuing a dump needs RTNL)
returns only when the kernel lets it; then the deadline applies at once."""

from __future__ import annotations

import errno
import itertools
import os
import select
import socket
import time
from collections.abc import Iterator

from netlink.constants import (
    FIBRULE,
    IF_STATS_MSG,
    IFADDR,
    IFINFO,
    IFLA_STATS_LINK_64,
    IFNAME,
    NETLINK_GET_STRICT_CHK,
    NLA,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG,
    NLMSG_DONE,
    NLMSG_ERROR,
    RTA_TABLE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETQDISC,
    RTM_GETROUTE,
    RTM_GETRULE,
    RTM_GETSTATS,
    RTM_NEWLINK,
    RTMSG,
    SOL_NETLINK,
    TCMSG,
    U32,
)
from netlink.decode import Message, messages

_seq = itertools.count(1)

# IFLA_EXT_MASK (linux/if_link.h) with RTEXT_FILTER_SKIP_STATS (rtnetlink.h):
# a link dump without each device's IPv6 statistics, token and address
# generation mode (368 of a bridge's 1,880 bytes on 6.18). Nothing decodes
# them (:func:`netlink.decode.decode_link`); the counters the engine reads
# come from RTM_GETSTATS (superd.netstats), and IFLA_STATS64 still comes.
IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS = 29, 1 << 3

# Generous: a dump of 5,000 bridges takes about 0.5 s; an RTNL held for
# minutes by the kernel (a namespace with thousands of devices deleted)
# delays every answer that long.
ANSWER_TIMEOUT = 120.0


class AnswerTimeout(TimeoutError):
    """A netlink request got no (complete) answer in time."""

    def __init__(self, what: str, timeout: float) -> None:
        text = f"{what}: no complete answer within {timeout:g} s (RTNL held for long?)"
        super().__init__(errno.ETIMEDOUT, text)


def _recv(sock: socket.socket, deadline: float, what: str, timeout: float) -> bytes:
    """The next datagram on ``sock``, waiting until ``deadline`` at most (a
    stand-in without a file descriptor, a test's fake kernel, is read as is)."""
    if not hasattr(sock, "fileno"):
        return sock.recv(1 << 20)
    left = deadline - time.monotonic()
    poll = select.poll()  # not select(): superd may hold more than 1,024 fds
    poll.register(sock, select.POLLIN)
    if left <= 0 or not poll.poll(left * 1000):
        raise AnswerTimeout(what, timeout)
    return sock.recv(1 << 20)


def next_seq() -> int:
    """A request's sequence number (one counter for every request sent)."""
    return next(_seq) & 0xFFFFFFFF


def nla(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = NLA.size + len(payload)
    return NLA.pack(length, kind) + payload + b"\0" * (-length & 3)


_REQUEST_BODY = {
    RTM_GETLINK: lambda family: (
        IFINFO.pack(family, 0, 0, 0, 0) + nla(IFLA_EXT_MASK, U32.pack(RTEXT_FILTER_SKIP_STATS))
    ),
    RTM_GETADDR: lambda family: IFADDR.pack(family, 0, 0, 0, 0),
    RTM_GETROUTE: lambda family: RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0),
    RTM_GETRULE: lambda family: FIBRULE.pack(family, 0, 0, 0, 0, 0, 0, 0, 0),
    # the 64-bit link counters only (about 200 bytes a device)
    RTM_GETSTATS: lambda family: IF_STATS_MSG.pack(family, 0, 0, 0, 1 << (IFLA_STATS_LINK_64 - 1)),
    RTM_GETQDISC: lambda family: TCMSG.pack(family, 0, 0, 0, 0),
}

_DUMPED = {RTM_GETLINK: "links", RTM_GETADDR: "addresses", RTM_GETROUTE: "routes",
           RTM_GETRULE: "rules", RTM_GETSTATS: "statistics", RTM_GETQDISC: "qdiscs"}  # fmt: skip


def strict(sock: socket.socket) -> socket.socket:
    """Ask the kernel to honour dump filters (a route dump of one table)."""
    sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
    return sock


def dump(
    sock: socket.socket,
    kind: int,
    family: int = socket.AF_UNSPEC,
    table: int | None = None,
    index: int | None = None,
    timeout: float | None = None,
) -> Iterator[Message]:
    """Dump ``kind`` (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETRULE,
    RTM_GETSTATS, RTM_GETQDISC) on ``sock`` (a
    NETLINK_ROUTE socket used for nothing else meanwhile). ``table``: only
    that routing table's routes, ``index``: only that device's addresses,
    where the socket is :func:`strict` (others may still come: callers
    filter). ``timeout`` (default :data:`ANSWER_TIMEOUT`): seconds for the
    whole dump, :class:`AnswerTimeout` after."""
    timeout = ANSWER_TIMEOUT if timeout is None else timeout
    what = f"netlink dump of {_DUMPED[kind]}"
    seq = next_seq()
    if kind == RTM_GETROUTE and table is not None:
        body = RTMSG.pack(family, 0, 0, 0, table if table < 256 else 252, 0, 0, 0, 0)
        body += nla(RTA_TABLE, U32.pack(table))
    elif kind == RTM_GETADDR and index is not None:
        body = IFADDR.pack(family, 0, 0, 0, index)
    else:
        body = _REQUEST_BODY[kind](family)
    sock.send(NLMSG.pack(NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
    deadline = time.monotonic() + timeout
    while True:
        data = _recv(sock, deadline, what, timeout)
        for msg in messages(data):
            if msg.seq != seq:
                continue  # a late answer to an abandoned request
            if msg.type == NLMSG_DONE:
                return
            if msg.type == NLMSG_ERROR:
                raise OSError(msg.body, f"{what}: {os.strerror(msg.body)}")
            yield msg


def get_link(
    sock: socket.socket, index: int = 0, name: str | None = None, timeout: float | None = None
) -> dict | None:
    """One link by ifindex or name (RTM_GETLINK); None when there is none
    (ENODEV). ``timeout`` as for :func:`dump`."""
    timeout = ANSWER_TIMEOUT if timeout is None else timeout
    seq = next_seq()
    body = IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    if name is not None:
        body += nla(IFNAME, name.encode() + b"\0")
    sock.send(NLMSG.pack(NLMSG.size + len(body), RTM_GETLINK, NLM_F_REQUEST, seq, 0) + body)
    deadline = time.monotonic() + timeout
    while True:
        for msg in messages(_recv(sock, deadline, "netlink get link", timeout)):
            if msg.seq != seq:
                continue
            if msg.type == NLMSG_ERROR:
                if msg.body == errno.ENODEV:
                    return None
                raise OSError(msg.body, os.strerror(msg.body))
            if msg.type == RTM_NEWLINK:
                return msg.body
