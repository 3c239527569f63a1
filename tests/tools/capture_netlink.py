"""Record real rtnetlink datagrams for tests/unit/test_netlink_decode.py.

Run as root: ``python tests/tools/capture_netlink.py OUT``. In a scratch
network namespace (deleted afterwards, even on failure) it creates a few
devices of each kind this kernel offers (bridges with options, veth,
macvlan, macvtap, vxlan, tap), IPv4/IPv6 addresses and routes, and records
what netreload's own :mod:`netlink.query` reads there (link, address,
route, rule, qdisc and statistics dumps), the echo of a link creation
(:func:`netlink.encode.transact`) and the notifications a monitor socket
receives meanwhile. ``OUT``: each datagram as a 4-byte length and its bytes.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import uuid

NS = f"nrcap{uuid.uuid4().hex[:6]}"
SETUP = [
    "link add br0 type bridge stp_state 1 forward_delay 1500 mcast_snooping 0",
    "link add br1 type bridge",
    "link add v0 type veth peer name v1",
    "link set v0 master br0",
    "link add mv0 link v1 type macvlan mode bridge",
    "link add mvt0 link v1 type macvtap",
    "link add vx0 type vxlan id 42 dstport 4789 local 10.9.0.1",
    "tuntap add tp0 mode tap",
    "link set br0 alias netreload",
    "link set dev lo up",
    "link set dev br0 up",
    "link set dev v0 up",
    "link set dev v1 up",
    "addr add 10.1.0.1/24 dev br0",
    "addr add 2001:db8:1::1/64 dev br0",
    "addr add 10.2.0.1/24 dev v1",
    "addr add fd00::2/64 dev v1 nodad",
    "route add 10.3.0.0/16 via 10.1.0.2",
    "route add 10.4.0.0/16 nexthop via 10.1.0.2 nexthop via 10.2.0.2",
    "route add default via 10.1.0.254 metric 100",
    "rule add from 10.1.0.0/24 table 100 priority 3000",
]
CHANGES = [
    "link set br1 mtu 1400",
    "link set br1 up",
    "addr add 10.5.0.1/24 dev br1",
    "addr del 10.5.0.1/24 dev br1",
    "link set v0 nomaster",
    "link del mv0",
]


def child(out: str) -> None:
    from netlink import constants, encode, query

    frames: list[bytes] = []

    class Recorder:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def fileno(self) -> int:
            return self.sock.fileno()

        def send(self, data: bytes) -> int:
            return self.sock.send(data)

        def recv(self, size: int) -> bytes:
            data = self.sock.recv(size)
            frames.append(data)
            return data

    monitor = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    monitor.bind((0, 0x1 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400))
    for command in SETUP:
        subprocess.run(["ip", *command.split()], check=True)
    raw = Recorder(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
    for kind in (
        constants.RTM_GETLINK,
        constants.RTM_GETADDR,
        constants.RTM_GETROUTE,
        constants.RTM_GETRULE,
        constants.RTM_GETQDISC,
        constants.RTM_GETSTATS,
    ):
        list(query.dump(raw, kind))
    query.get_link(raw, name="br0")
    message = encode.encode(
        "link",
        ("add",),
        {
            "ifname": "br9",
            "kind": "bridge",
            "br_stp_state": 0,
            "br_forward_delay": 0,
            "mtu": 1500,
            "state": "up",
        },
    )
    encode.transact(raw, message, echo=True)
    for command in CHANGES:
        subprocess.run(["ip", *command.split()], check=True)
    monitor.setblocking(False)
    while True:
        try:
            frames.append(monitor.recv(1 << 20))
        except BlockingIOError:
            break
    with open(out, "wb") as f:
        for frame in frames:
            f.write(struct.pack("=I", len(frame)) + frame)


def main() -> None:
    out = os.path.abspath(sys.argv[1])
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        subprocess.run(
            ["ip", "netns", "exec", NS, sys.executable, __file__, "--child", out], check=True
        )
    finally:
        subprocess.run(["ip", "netns", "del", NS], check=False)


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
