"""The rtnetlink numbers and layouts :mod:`netlink.decode` and
:mod:`netlink.encode` use (linux/netlink.h, linux/rtnetlink.h,
linux/if_link.h, linux/if_addr.h), each defined once."""

from __future__ import annotations

import struct

NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type, …
FIBRULE = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, -, -, action, flags
IF_STATS_MSG = struct.Struct("=BBHII")  # family, pad1, pad2, ifindex, filter_mask
TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
# struct rtnl_link_stats64, its first eight counters
STATS64 = struct.Struct("=8Q")  # rx/tx packets, rx/tx bytes, rx/tx errors, rx/tx dropped
NLA = struct.Struct("=HH")
RTNH = struct.Struct("=HBBi")  # len, flags, hops, ifindex
U8, U16, U32, U64, S32 = (struct.Struct(f"={c}") for c in "BHIQi")
BE16, BE32 = struct.Struct(">H"), struct.Struct(">I")

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
RTM_NEWQDISC, RTM_GETQDISC = 36, 38
TCA_KIND = 1
RTM_NEWSTATS, RTM_GETSTATS = 92, 94
IFLA_STATS_LINK_64 = 1
RT_TABLE_LOCAL = 255
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

# IFLA_*
ADDRESS, IFNAME, MTU, LINK, MASTER, OPERSTATE, LINKINFO, IFALIAS = 1, 3, 4, 5, 10, 16, 18, 20
AF_SPEC, LINK_NETNSID, PERM_ADDRESS, PARENT_DEV_NAME = 26, 37, 54, 56
INFO_KIND, INFO_DATA, INFO_SLAVE_KIND, INFO_SLAVE_DATA = 1, 2, 4, 5
# IFLA_BOND_AD_INFO (nested: IFLA_BOND_AD_INFO_AGGREGATOR, _PARTNER_MAC) and
# IFLA_BOND_SLAVE_PERM_HWADDR / _AD_AGGREGATOR_ID: what the agent reports of
# 802.3ad (ad_aggregator_id, ad_partner_mac) and of bond slaves (permhwaddr)
BOND_AD_INFO, AD_INFO_AGGREGATOR, AD_INFO_PARTNER_MAC = 23, 1, 5
BOND_SLAVE = {4: ("bond_slave_perm_hwaddr", "l2addr"), 6: ("bond_slave_ad_aggregator_id", "uint16")}
INET6_CONF = 2  # IFLA_INET6_CONF
DEVCONF = {"forwarding": 0, "accept_ra": 3, "autoconf": 5, "disable_ipv6": 26}
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
# IFA_* / RTA_*
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_MULTIPATH, RTA_TABLE = (
    1, 4, 5, 6, 7, 9, 15,
)  # fmt: skip
# FRA_*
FRA_DST, FRA_SRC, FRA_IIFNAME, FRA_PRIORITY, FRA_TABLE, FRA_OIFNAME = 1, 2, 3, 6, 15, 17
# NLM_F_* of requests that create, IFF_* of ifinfomsg flags
NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x4, 0x200, 0x400
NLM_F_ECHO = 0x8  # send the object created back to the requester
IFF_UP = 0x1
# IFLA_BR_* (bridge INFO_DATA)
BR_FORWARD_DELAY, BR_STP_STATE = 1, 5
# setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK): dump filters honoured
SOL_NETLINK, NETLINK_GET_STRICT_CHK = 270, 12
