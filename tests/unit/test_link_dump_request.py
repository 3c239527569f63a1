"""A link dump asks the kernel to leave out each device's IPv6 statistics
(``IFLA_EXT_MASK`` = ``RTEXT_FILTER_SKIP_STATS``): nothing netreload decodes
comes from them, and a big change's verification dumps every link."""

from __future__ import annotations

import struct

from netlink import constants, query
from netlink.constants import IFINFO, NLA, NLMSG, NLMSG_DONE


class RecordingKernel:
    """Takes one request and answers its dump with NLMSG_DONE."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        return len(data)

    def recv(self, size: int) -> bytes:
        seq = struct.unpack_from("=I", self.sent[-1], 8)[0]
        return NLMSG.pack(NLMSG.size + 4, NLMSG_DONE, 0, seq, 0) + b"\0" * 4


def request_attrs(message: bytes, header: struct.Struct) -> dict[int, bytes]:
    start, attrs = NLMSG.size + header.size, {}
    while start + NLA.size <= len(message):
        length, kind = NLA.unpack_from(message, start)
        attrs[kind] = message[start + NLA.size : start + length]
        start += (length + 3) & ~3
    return attrs


def test_a_link_dump_asks_the_kernel_to_skip_statistics() -> None:
    kernel = RecordingKernel()
    assert list(query.dump(kernel, constants.RTM_GETLINK)) == []
    attrs = request_attrs(kernel.sent[0], IFINFO)
    assert struct.unpack("=I", attrs[query.IFLA_EXT_MASK])[0] == query.RTEXT_FILTER_SKIP_STATS


def test_other_dumps_carry_no_extension_mask() -> None:
    kernel = RecordingKernel()
    list(query.dump(kernel, constants.RTM_GETADDR))
    assert len(kernel.sent[0]) == NLMSG.size + constants.IFADDR.size
