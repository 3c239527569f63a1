"""Which of netreload's own devices the kernel holds administratively down.

The capabilities report carries no link state (the engine's view has none
for bridges and VLAN devices), so a rebuild comparing networks with it
cannot tell a bridge that was created and never set up: the iproute2
configurator creates a bridge down, marks it, and sets it up last (marking
a device that is up costs an IPv6 routing-table walk), and superd killed in
between leaves it down. The rebuild (``superd.repair``) asks here, and
:func:`superd.verify.network_mismatches` counts such a device as a mismatch.

Only devices carrying netreload's mark are answered: a NIC, or another
agent's device, that someone set down is never netreload's to set up.
Read from the namespace the process runs in, like every netlink socket of
superd's.
"""

from __future__ import annotations

import socket
from collections.abc import Collection

from netlink import constants, query
from shared.netmodel.ownership import OWNER_ALIAS

IFF_UP = 0x1
#: names read one request each up to this many; past it one dump of all
#: links (restore-nets of a big host: not thousands of round trips)
ONE_BY_ONE = 16


def marked_down(names: Collection[str]) -> frozenset[str]:
    """Those of ``names`` that exist, carry netreload's mark and are
    administratively down (``IFF_UP`` clear)."""
    if not names:
        return frozenset()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        if len(names) <= ONE_BY_ONE:
            links = [query.get_link(sock, name=name) for name in names]
        else:
            wanted = set(names)
            links = [
                msg.body
                for msg in query.dump(sock, constants.RTM_GETLINK)
                if msg.family == socket.AF_UNSPEC and msg.body["name"] in wanted
            ]
    return frozenset(
        link["name"]
        for link in links
        if link is not None and link.get("alias") == OWNER_ALIAS and not link["flags"] & IFF_UP
    )
