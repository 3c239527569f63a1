"""Source routing ("multiple gateways"), the production agent's way.

Every network with an IPv4 gateway — static, or a DHCP lease's router —
that does not hold the default route has a routing table of its own,
numbered after its top device (:func:`source_table`), holding

* the network's subnet, ``dev <device> src <address> scope link``;
* ``default via <gateway> dev <device>``;

and two rules at :data:`RULE_PRIORITY`, ``from <subnet> lookup <table>``
and ``to <subnet> lookup <table>``: traffic from the network's address
leaves through the network's own gateway, whichever network holds the main
table's default route. The default-route network's gateway is the main
table's default route, and it has no table (the production agent gives a
static one a table too; it would only repeat the main table's route, and a
table the capabilities cannot show could not be verified after a change).

The capabilities report a device's ``gateway`` from the main table's
default route through it or, failing that, from the default route through
it in a table a rule looks up (:func:`rule_tables`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

#: before the main table's rule (32766), as the production agent
RULE_PRIORITY = 3200
#: tables the kernel or iproute2 reserve: never a network's
RESERVED_TABLES = frozenset({0, 252, 253, 254, 255})


def source_table(device: str) -> int:
    """The routing table of the network whose top device is ``device``.

    Adler-32 of the name, as the production agent derives it: stable across
    address changes and DHCP leases, found again from the name alone. For a
    non-empty name it is at least 2 << 16, never a reserved table."""
    table = zlib.adler32(device.encode())
    assert table not in RESERVED_TABLES
    return table


def rule_tables(rules: Iterable[Mapping[str, Any]]) -> frozenset[int]:
    """Tables, other than the kernel's own, that a rule looks up."""
    return frozenset(
        rule["table"] for rule in rules if rule.get("table") not in RESERVED_TABLES
    )
