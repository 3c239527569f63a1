"""The Linux bonding driver's options, described as data.

One entry per option that ``Documentation/networking/bonding.rst`` documents
for a bond (not per-slave options such as ``prio`` or ``queue_id``, not
run-time state such as ``active_slave``). Validation, documentation, the
netlink call and the sysfs verification in ``bond_options`` are all driven by
this table; adding an option is adding an entry here.

Sources: the kernel's option table (``drivers/net/bonding/bond_options.c``:
value tables, ranges and the modes each option is refused in) and its sysfs
files (``bond_sysfs.c``); the pyroute2 keyword is the ``IFLA_BOND_*``
attribute name lower-cased without ``IFLA_``, as known to the pyroute2 this
project pins (0.9.7), which stops at ``IFLA_BOND_TLB_DYNAMIC_LB``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

INT_MAX = 2**31 - 1
MAX_TARGETS = 16  # BOND_MAX_ARP_TARGETS, also the NS target limit

BOND_MODES: Mapping[str, int] = MappingProxyType(
    {
        "balance-rr": 0,
        "active-backup": 1,
        "balance-xor": 2,
        "broadcast": 3,
        "802.3ad": 4,
        "balance-tlb": 5,
        "balance-alb": 6,
    }
)
MODE_NAMES: Mapping[int, str] = MappingProxyType({v: k for k, v in BOND_MODES.items()})
DEFAULT_MODE = 0  # balance-rr, the kernel's default

ALL_MODES = frozenset(BOND_MODES.values())
_ARP_MONITOR_MODES = ALL_MODES - {4, 5, 6}  # the kernel refuses ARP in 802.3ad/tlb/alb
_LACP = frozenset({4})
_ACTIVE_SLAVE_MODES = frozenset({1, 5, 6})

_OFF_ON = MappingProxyType({"off": 0, "on": 1})


class ValueKind(Enum):
    ENUM = "enum"  # a named value or its number
    INT = "int"  # a decimal integer within [minimum, maximum]
    IFNAME = "ifname"  # an interface name, or empty to clear
    MAC = "mac"  # xx:xx:xx:xx:xx:xx, not multicast
    IPV4_LIST = "ipv4-list"  # comma-separated IPv4 addresses, at most 16
    IPV6_LIST = "ipv6-list"  # comma-separated IPv6 addresses, at most 16


@dataclass(frozen=True, slots=True)
class BondOption:
    name: str
    help: str
    kind: ValueKind
    default: str
    values: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    minimum: int = 0
    maximum: int = INT_MAX
    # modes the option is allowed in: those the kernel does not refuse it in,
    # narrowed for xmit_hash_policy and ad_select (accepted by the kernel in
    # every mode) to the modes where bonding.rst says they have an effect
    modes: frozenset[int] = ALL_MODES
    # file under /sys/class/net/<bond>/bonding/; None when there is none
    sysfs: str | None = None
    # keyword of pyroute2's IPRoute.link(kind="bond", ...); None when the
    # pinned pyroute2 has no attribute for it (then sysfs is the way in)
    netlink: str | None = None
    # the netlink attribute wants an ifindex, the caller resolves the name
    needs_ifindex: bool = False


def _enum(
    name: str,
    values: Mapping[str, int],
    *,
    default: str,
    help: str,
    modes: frozenset[int] = ALL_MODES,
    netlink: str | None = "",
    sysfs: str | None = "",
) -> BondOption:
    """An option taking a named value or its number ("" = the usual name)."""
    return BondOption(
        name=name,
        help=help,
        kind=ValueKind.ENUM,
        default=default,
        values=MappingProxyType(dict(values)),
        modes=modes,
        sysfs=name if sysfs == "" else sysfs,
        netlink=f"bond_{name}" if netlink == "" else netlink,
    )


def _int(
    name: str,
    *,
    default: int,
    help: str,
    minimum: int = 0,
    maximum: int = INT_MAX,
    modes: frozenset[int] = ALL_MODES,
    netlink: str | None = "",
) -> BondOption:
    """An option taking a decimal integer ("" = the usual netlink keyword)."""
    return BondOption(
        name=name,
        help=help,
        kind=ValueKind.INT,
        default=str(default),
        minimum=minimum,
        maximum=maximum,
        modes=modes,
        sysfs=name,
        netlink=f"bond_{name}" if netlink == "" else netlink,
    )


_OPTIONS: tuple[BondOption, ...] = (
    _enum("mode", BOND_MODES, default="balance-rr", help="Bonding policy."),
    _int(
        "miimon",
        default=100,
        help="MII link monitoring interval, in milliseconds; 0 disables it. "
        "Cannot be combined with arp_interval.",
    ),
    _int(
        "updelay",
        default=0,
        help="Milliseconds to wait before enabling a slave whose link came "
        "up (miimon only; the kernel rounds down to a multiple of miimon).",
    ),
    _int(
        "downdelay",
        default=0,
        help="Milliseconds to wait before disabling a slave whose link went "
        "down (miimon only; the kernel rounds down to a multiple of miimon).",
    ),
    _int(
        "peer_notif_delay",
        default=0,
        maximum=300000,
        netlink=None,
        help="Milliseconds between peer notifications after a failover; 0 "
        "means the miimon interval.",
    ),
    _enum(
        "use_carrier",
        _OFF_ON,
        default="1",
        help="Use netif_carrier_ok() (1) rather than MII/ethtool ioctls (0) "
        "to read the link state for miimon.",
    ),
    _int(
        "arp_interval",
        default=0,
        modes=_ARP_MONITOR_MODES,
        help="ARP link monitoring interval, in milliseconds; 0 disables it.",
    ),
    BondOption(
        name="arp_ip_target",
        kind=ValueKind.IPV4_LIST,
        default="",
        sysfs="arp_ip_target",
        netlink="bond_arp_ip_target",
        help=f"IPv4 addresses probed by the ARP monitor, separated by ',' (at most {MAX_TARGETS}).",
    ),
    BondOption(
        name="ns_ip6_target",
        kind=ValueKind.IPV6_LIST,
        default="",
        help="IPv6 addresses probed by NS/NA monitoring, separated by ',' "
        f"(at most {MAX_TARGETS}). Netlink only in the kernel, and unknown to "
        "the pinned pyroute2: netreload cannot set it.",
    ),
    _enum(
        "arp_validate",
        {
            "none": 0,
            "active": 1,
            "backup": 2,
            "all": 3,
            "filter": 4,
            "filter_active": 5,
            "filter_backup": 6,
        },
        default="none",
        modes=_ARP_MONITOR_MODES,
        help="Whether the ARP monitor validates probes and replies, or ignores non-ARP traffic.",
    ),
    _enum(
        "arp_all_targets",
        {"any": 0, "all": 1},
        default="any",
        help="Whether any or all arp_ip_targets must answer for a slave to "
        "be up (active-backup with arp_validate).",
    ),
    _int(
        "arp_missed_max",
        default=2,
        minimum=1,
        maximum=255,
        modes=_ARP_MONITOR_MODES,
        netlink=None,
        help="ARP monitor checks that must fail before a slave is marked down.",
    ),
    BondOption(
        name="primary",
        kind=ValueKind.IFNAME,
        default="",
        modes=_ACTIVE_SLAVE_MODES,
        sysfs="primary",
        netlink="bond_primary",
        needs_ifindex=True,
        help="Slave that is active whenever it is available; empty clears it.",
    ),
    _enum(
        "primary_reselect",
        {"always": 0, "better": 1, "failure": 2},
        default="always",
        help="When the primary slave takes over again after it recovers.",
    ),
    _enum(
        "fail_over_mac",
        {"none": 0, "active": 1, "follow": 2},
        default="none",
        help="How active-backup handles the slaves' MAC addresses (the "
        "kernel changes it only while the bond has no slaves).",
    ),
    _enum(
        "xmit_hash_policy",
        {
            "layer2": 0,
            "layer3+4": 1,
            "layer2+3": 2,
            "encap2+3": 3,
            "encap3+4": 4,
            "vlan+srcmac": 5,
        },
        default="layer2",
        # balance-alb too: with tlb_dynamic_lb=0 it transmits by this hash
        modes=frozenset({2, 4, 5, 6}),
        help="Transmit hash policy used to pick a slave.",
    ),
    _int(
        "resend_igmp",
        default=1,
        maximum=255,
        help="IGMP membership reports sent after a failover.",
    ),
    _int(
        "num_grat_arp",
        default=1,
        maximum=255,
        netlink="bond_num_peer_notif",
        help="Peer notifications (gratuitous ARPs, unsolicited NAs) sent "
        "after a failover; the same setting as num_unsol_na.",
    ),
    _int(
        "num_unsol_na",
        default=1,
        maximum=255,
        netlink="bond_num_peer_notif",
        help="Peer notifications (gratuitous ARPs, unsolicited NAs) sent "
        "after a failover; the same setting as num_grat_arp.",
    ),
    _enum(
        "all_slaves_active",
        _OFF_ON,
        default="0",
        help="Deliver (1) or drop (0) duplicate frames received on inactive slaves.",
    ),
    _int(
        "min_links",
        default=0,
        help="Links that must be up before the bond asserts carrier (802.3ad).",
    ),
    _int(
        "lp_interval",
        default=1,
        minimum=1,
        help="Seconds between learning packets sent to each slave's peer "
        "switch (balance-tlb, balance-alb).",
    ),
    _int(
        "packets_per_slave",
        default=1,
        maximum=65535,
        modes=frozenset({0}),
        help="Packets sent through a slave before moving to the next; 0 picks a slave at random.",
    ),
    _enum(
        "lacp_rate",
        {"slow": 0, "fast": 1},
        default="slow",
        modes=_LACP,
        netlink="bond_ad_lacp_rate",
        help="Rate at which the partner is asked to send LACPDUs: every 30 s "
        "(slow) or every second (fast).",
    ),
    _enum(
        "lacp_active",
        _OFF_ON,
        default="on",
        modes=_LACP,
        netlink=None,
        help="Send LACPDUs periodically (on) or only when spoken to (off).",
    ),
    _enum(
        "ad_select",
        {"stable": 0, "bandwidth": 1, "count": 2},
        default="stable",
        modes=_LACP,
        help="802.3ad aggregator selection logic.",
    ),
    _int(
        "ad_actor_sys_prio",
        default=65535,
        minimum=1,
        maximum=65535,
        modes=_LACP,
        help="802.3ad system priority.",
    ),
    _int(
        "ad_user_port_key",
        default=0,
        maximum=1023,
        modes=_LACP,
        help="Upper 10 bits of the 802.3ad port key.",
    ),
    BondOption(
        name="ad_actor_system",
        kind=ValueKind.MAC,
        default="00:00:00:00:00:00",
        modes=_LACP,
        sysfs="ad_actor_system",
        netlink="bond_ad_actor_system",
        help="MAC address of the actor in LACPDUs, not multicast; all zeroes "
        "means the bond's own address.",
    ),
    _enum(
        "tlb_dynamic_lb",
        _OFF_ON,
        default="1",
        modes=frozenset({5, 6}),
        help="Shuffle flows by current load (1) or rely on the hash alone (0).",
    ),
    _enum(
        "coupled_control",
        _OFF_ON,
        default="1",
        modes=_LACP,
        netlink=None,
        sysfs=None,
        help="Keep the LACP MUX Collecting and Distributing states coupled "
        "(1) or separate them (0). Netlink only in the kernel, and unknown "
        "to the pinned pyroute2: netreload cannot set it.",
    ),
)

BOND_OPTIONS: Mapping[str, BondOption] = MappingProxyType({opt.name: opt for opt in _OPTIONS})
