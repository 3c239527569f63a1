"""The Linux bridge's options, described as data.

A network's ``custom.bridge_opts`` (``"multicast_snooping=0 priority=100"``)
names options as the production agent does: the files under
``/sys/class/net/<bridge>/bridge/``, which it writes and reports. netreload
sets them through netlink instead (the ``IFLA_BR_*`` attributes, as
pyroute2's ``link(kind="bridge", br_…=…)`` keywords) and reports them from
its netlink cache under the same names (``shared.netinfo_report.bridge_opts``).
Parsing, validation and the netlink call (``bridge_options``) are driven by
this table; adding an option is adding an entry here.

Sources: the kernel's bridge netlink and sysfs code (``net/bridge/br_netlink.c``,
``br_sysfs_br.c``, ``br_stp_if.c``, ``br_multicast.c``): value types, the
ranges it refuses outside of (``ERANGE``/``EINVAL``), and the option names;
the pyroute2 this project pins (0.9.7), whose bridge attributes stop at
``IFLA_BR_MCAST_MLD_VERSION``.

Not in the table, so refused as unknown (code 21):

* ``stp_state``: the network's own ``stp`` attribute sets it (and the
  engine's capabilities read it from there);
* ``hash_elasticity``: the kernel ignores it (always 16);
* ``flush``: an action, not an option;
* ``no_linklocal_learn``, ``vlan_stats_per_port``,
  ``multicast_vlan_snooping``: attributes the pinned pyroute2 does not know;
* read-only state: ``bridge_id``, ``root_id``, ``root_port``,
  ``root_path_cost``, ``topology_change*`` and the ``*_timer`` files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

U16_MAX = 2**16 - 1
U32_MAX = 2**32 - 1
CENTISECONDS = 100  # the kernel's clock_t on netlink and sysfs: USER_HZ, 1/100 s
# With STP on, the kernel refuses a forward delay outside 2..30 s.
STP_FORWARD_DELAY = (2 * CENTISECONDS, 30 * CENTISECONDS)


class ValueKind(Enum):
    INT = "int"  # an integer within [minimum, maximum] (decimal or 0x-hex, as sysfs takes it)
    BOOL = "bool"  # 0 or 1
    GROUP_ADDR = "group-addr"  # 01:80:c2:00:00:0X, X other than 1, 2, 3
    PROTOCOL = "protocol"  # 802.1Q (0x8100) or 802.1ad (0x88a8)


@dataclass(frozen=True, slots=True)
class BridgeOption:
    name: str  # the sysfs file name: what bridge_opts and the report call it
    netlink: str  # pyroute2's keyword for its IFLA_BR_* attribute
    kind: ValueKind
    help: str
    minimum: int = 0
    maximum: int = U32_MAX
    forbidden_bits: int = 0  # bits the kernel refuses to set (group_fwd_mask)


def _int(name: str, netlink: str, help: str, minimum: int = 0, maximum: int = U32_MAX,
         forbidden_bits: int = 0) -> BridgeOption:  # fmt: skip
    return BridgeOption(name, netlink, ValueKind.INT, help, minimum, maximum, forbidden_bits)


def _bool(name: str, netlink: str, help: str) -> BridgeOption:
    return BridgeOption(name, netlink, ValueKind.BOOL, help, 0, 1)


def _interval(name: str, netlink: str, help: str, minimum: int = 0,
              maximum: int = U32_MAX) -> BridgeOption:  # fmt: skip
    return _int(name, netlink, help + " In 1/100 s.", minimum, maximum)


_OPTIONS: tuple[BridgeOption, ...] = (
    _interval("forward_delay", "br_forward_delay",
              "Time spent in the listening and learning states (2..30 s with STP on)."),
    _interval("hello_time", "br_hello_time", "Interval between STP hello packets (1..10 s).",
              1 * CENTISECONDS, 10 * CENTISECONDS),
    _interval("max_age", "br_max_age", "Maximum age of STP information (6..40 s).",
              6 * CENTISECONDS, 40 * CENTISECONDS),
    _interval("ageing_time", "br_ageing_time", "Time a learned MAC address is kept."),
    _int("priority", "br_priority", "STP bridge priority.", 0, U16_MAX),
    _int("group_fwd_mask", "br_group_fwd_mask",
         "Link-local group addresses 01:80:c2:00:00:0X forwarded, one bit per X "
         "(bits 0, 1 and 2 cannot be set).", 0, U16_MAX, forbidden_bits=0x7),
    BridgeOption("group_addr", "br_group_addr", ValueKind.GROUP_ADDR,
                 "STP group address: 01:80:c2:00:00:0X, X not 1, 2 or 3."),
    _int("multicast_router", "br_mcast_router",
         "Multicast router port mode: 0 disabled, 1 learned from queries, 2 always.", 0, 2),
    _bool("multicast_snooping", "br_mcast_snooping", "IGMP/MLD snooping."),
    _bool("multicast_query_use_ifaddr", "br_mcast_query_use_ifaddr",
          "Queries carry the bridge's address rather than 0.0.0.0."),
    _bool("multicast_querier", "br_mcast_querier", "The bridge sends IGMP/MLD queries itself."),
    _int("hash_max", "br_mcast_hash_max", "Size of the multicast group database.", 1),
    _int("multicast_last_member_count", "br_mcast_last_member_cnt",
         "Group-specific queries sent after a leave."),
    _int("multicast_startup_query_count", "br_mcast_startup_query_cnt",
         "Queries sent at start-up."),
    _interval("multicast_last_member_interval", "br_mcast_last_member_intvl",
              "Interval between group-specific queries after a leave."),
    _interval("multicast_membership_interval", "br_mcast_membership_intvl",
              "Time after which a group without reports is dropped."),
    _interval("multicast_querier_interval", "br_mcast_querier_intvl",
              "Time after which another querier is considered gone."),
    # the kernel raises a query interval under 1 s to 1 s (and lowers one over
    # a day): refused here, not reported otherwise than asked
    _interval("multicast_query_interval", "br_mcast_query_intvl",
              "Interval between general queries (1 s .. 1 day).",
              1 * CENTISECONDS, 86400 * CENTISECONDS),
    _interval("multicast_query_response_interval", "br_mcast_query_response_intvl",
              "Maximum response time put in general queries."),
    _interval("multicast_startup_query_interval", "br_mcast_startup_query_intvl",
              "Interval between start-up queries (1 s .. 1 day).",
              1 * CENTISECONDS, 86400 * CENTISECONDS),
    _bool("multicast_stats_enabled", "br_mcast_stats_enabled", "Per-port multicast statistics."),
    _int("multicast_igmp_version", "br_mcast_igmp_version", "IGMP version of queries.", 2, 3),
    _int("multicast_mld_version", "br_mcast_mld_version", "MLD version of queries.", 1, 2),
    _bool("nf_call_iptables", "br_nf_call_iptables", "Bridged IPv4 traffic goes through iptables."),
    _bool("nf_call_ip6tables", "br_nf_call_ip6tables",
          "Bridged IPv6 traffic goes through ip6tables."),
    _bool("nf_call_arptables", "br_nf_call_arptables",
          "Bridged ARP traffic goes through arptables."),
    _bool("vlan_filtering", "br_vlan_filtering",
          "VLAN filtering on the bridge (a kernel built with it)."),
    BridgeOption("vlan_protocol", "br_vlan_protocol", ValueKind.PROTOCOL,
                 "VLAN protocol of the filtering: 0x8100 (802.1Q) or 0x88a8 (802.1ad)."),
    _int("default_pvid", "br_vlan_default_pvid",
         "VLAN given to untagged traffic of new ports; 0 for none.", 0, 4094),
    _bool("vlan_stats_enabled", "br_vlan_stats_enabled", "Per-VLAN statistics."),
)  # fmt: skip

BRIDGE_OPTIONS: Mapping[str, BridgeOption] = MappingProxyType({o.name: o for o in _OPTIONS})
PROTOCOLS: Mapping[int, str] = MappingProxyType({0x8100: "802.1Q", 0x88A8: "802.1ad"})
