"""Which of netreload's own devices the kernel holds administratively down.

The capabilities report carries no link state (the engine's view has none
for bridges, bonds and VLAN devices), so a rebuild comparing networks and
bonds with it cannot tell a device that was created and never set up: the
iproute2 configurator creates a bridge or bond down, marks it, and sets it
up last (marking a device that is up costs an IPv6 routing-table walk), and
superd killed in between leaves it down. The rebuild (``superd.repair``)
asks here, and :func:`superd.verify.network_mismatches` and
:func:`superd.verify.bond_mismatches` count such a device as a mismatch.

Only devices carrying netreload's mark are answered: a NIC, or another
agent's device, that someone set down is never netreload's to set up.

Answered from superd's live netinfo when it runs and can vouch for its
state (:meth:`superd.monitor.LiveNetinfo.current`): the monitor holds every
link with its flags and alias, and applies what is queued in its event
socket before it answers, so a change acknowledged before the question is
in the answer, as in a read of the kernel, without a dump of the host's
links (one dump of 5,000 bridges costs ~0.1 s of CPU). Otherwise (oneshot,
a monitor stopped or resyncing) read from the kernel, in the namespace the
process runs in, like every netlink socket of superd's.
"""

from __future__ import annotations

import socket
from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from netlink import constants, query
from shared.netmodel.ownership import OWNER_ALIAS

if TYPE_CHECKING:
    from superd.monitor import LiveNetinfo

#: names read one request each up to this many; past it one dump of all
#: links (restore-nets of a big host: not thousands of round trips)
ONE_BY_ONE = 16


def marked_down(names: Collection[str], live: LiveNetinfo | None = None) -> frozenset[str]:
    """Those of ``names`` that exist, carry netreload's mark and are
    administratively down (``IFF_UP`` clear). ``live``: the monitor of the
    namespace to answer for, asked first (see the module's docstring)."""
    if not names:
        return frozenset()
    state = live.current() if live is not None else None
    if state is not None:
        assert live is not None
        wanted = names if isinstance(names, AbstractSet) else set(names)
        # the held-down set is tiny: walked, not the names
        return frozenset(name for name in live.held_down(state) if name in wanted)
    return read_marked_down(names)


def read_marked_down(names: Collection[str]) -> frozenset[str]:
    """:func:`marked_down` read from the kernel."""
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
    return frozenset(link["name"] for link in links if link is not None and is_held_down(link))


def is_held_down(link: Mapping) -> bool:
    """A decoded link carries netreload's mark and is administratively down
    (``IFF_UP`` clear): the rule of the kernel read and of the monitor's
    answer (``ReportCache.held_down``) alike."""
    return link.get("alias") == OWNER_ALIAS and not link["flags"] & constants.IFF_UP
