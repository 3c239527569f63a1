"""The few rtnetlink requests a network setup sends most, encoded with struct.

pyroute2 spends about 0.2 ms turning keyword arguments into a message; at a
thousand networks, with several requests each, that is most of a
setupNetworks. These encoders build, byte for byte, the message pyroute2
builds for the same arguments (a unit test compares them) for:

* ``link set`` by index of ``mtu``, ``state`` (up/down), ``master`` and
  ``ifalias`` (netreload's mark on the devices it creates);
* ``link add`` of a bridge with ``br_stp_state`` / ``br_forward_delay``,
  up or not;
* ``link del`` by index;
* ``addr add`` / ``addr del`` of one address by index.

:func:`encode` returns None for any other request: the caller sends it
through pyroute2. :func:`transact` sends one request and waits for its ack.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping
from typing import Any

from netlink.constants import (
    BR_FORWARD_DELAY,
    BR_STP_STATE,
    IFA_ADDRESS,
    IFA_LOCAL,
    IFADDR,
    IFALIAS,
    IFF_UP,
    IFINFO,
    IFNAME,
    INFO_DATA,
    INFO_KIND,
    LINKINFO,
    MASTER,
    MTU,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_ECHO,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG,
    NLMSG_ERROR,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    U32,
)
from netlink.decode import messages
from netlink.query import next_seq, nla


def _u32(kind: int, value: int) -> bytes:
    return nla(kind, U32.pack(value))


def _message(kind: int, flags: int, body: bytes) -> bytes:
    """The header's seq is set by :func:`transact`."""
    return NLMSG.pack(NLMSG.size + len(body), kind, flags, 0, 0) + body


def _link_set(kw: Mapping[str, Any]) -> bytes | None:
    allowed = {"index", "mtu", "state", "master", "ifalias"}
    if set(kw) - allowed or not isinstance(kw.get("index"), int):
        return None
    flags = change = 0
    if "state" in kw:
        if kw["state"] not in ("up", "down"):
            return None
        flags, change = (IFF_UP if kw["state"] == "up" else 0), IFF_UP
    attrs = b""
    if "mtu" in kw:
        attrs += _u32(MTU, int(kw["mtu"]))
    if "master" in kw:
        attrs += _u32(MASTER, int(kw["master"]))
    if "ifalias" in kw:
        if not isinstance(kw["ifalias"], str):
            return None
        attrs += nla(IFALIAS, kw["ifalias"].encode() + b"\0")
    body = IFINFO.pack(0, 0, kw["index"], flags, change) + attrs
    return _message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, body)


def _link_add(kw: Mapping[str, Any]) -> bytes | None:
    allowed = {"ifname", "kind", "mtu", "br_stp_state", "br_forward_delay", "state"}
    if kw.get("kind") != "bridge" or set(kw) - allowed or not isinstance(kw.get("ifname"), str):
        return None
    if kw.get("state", "up") != "up":
        return None
    up = IFF_UP if "state" in kw else 0
    attrs = nla(IFNAME, kw["ifname"].encode() + b"\0")
    if "mtu" in kw:
        attrs += _u32(MTU, int(kw["mtu"]))
    bridge = {"br_stp_state": BR_STP_STATE, "br_forward_delay": BR_FORWARD_DELAY}
    data = b"".join(_u32(bridge[key], int(value)) for key, value in kw.items() if key in bridge)
    info = nla(INFO_KIND, b"bridge\0") + (nla(INFO_DATA, data) if data else b"")
    body = IFINFO.pack(0, 0, 0, up, up) + attrs + nla(LINKINFO, info)
    return _message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)


def _link_del(kw: Mapping[str, Any]) -> bytes | None:
    if set(kw) != {"index"} or not isinstance(kw["index"], int):
        return None
    return _message(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, IFINFO.pack(0, 0, kw["index"], 0, 0))


def _addr(command: str, kw: Mapping[str, Any]) -> bytes | None:
    if set(kw) != {"index", "family", "address", "prefixlen"}:
        return None
    family = kw["family"]
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(kw["index"], int):
        return None
    try:
        raw = socket.inet_pton(family, kw["address"])
    except (OSError, TypeError):
        return None
    attrs = nla(IFA_ADDRESS, raw)
    if family == socket.AF_INET:
        attrs += nla(IFA_LOCAL, raw)
    body = IFADDR.pack(family, int(kw["prefixlen"]), 0, 0, kw["index"]) + attrs
    if command == "add":
        return _message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
    return _message(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, body)


def encode(method: str, args: tuple, kwargs: Mapping[str, Any]) -> bytes | None:
    """The message of ``ipr.<method>(*args, **kwargs)``, or None when this
    module does not encode it."""
    if len(args) != 1:
        return None
    command = args[0]
    if method == "link":
        builder = {"set": _link_set, "add": _link_add, "del": _link_del}.get(command)
        return builder(kwargs) if builder else None
    if method == "addr" and command in ("add", "del"):
        return _addr(command, kwargs)
    return None


def transact(sock: socket.socket, message: bytes, echo: bool = False) -> Any:
    """Send ``message`` (from :func:`encode`) and wait for its ack; a
    failure is OSError with the kernel's errno.

    ``echo``: ask the kernel to send the object it created or changed back
    (``NLM_F_ECHO``, links since Linux 6.3) and return the last one it
    sent before the ack, decoded as a dump decodes it (None: a kernel that
    does not echo). Creating a link then needs no request to read it."""
    seq = next_seq()
    data = bytearray(message)
    struct.pack_into("=I", data, 8, seq)
    if echo:
        flags = struct.unpack_from("=H", data, 6)[0]
        struct.pack_into("=H", data, 6, flags | NLM_F_ECHO)
    sock.send(data)
    echoed = None
    while True:
        for msg in messages(sock.recv(65536)):
            if msg.seq != seq:
                continue
            if msg.type == NLMSG_ERROR:
                if msg.body:
                    raise OSError(msg.body, os.strerror(msg.body))
                return echoed
            if echo and msg.type == RTM_NEWLINK:
                echoed = msg.body
