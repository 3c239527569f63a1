"""The reference workload of /work/shared/BENCHMARKS.md.

N nic-less Linux bridges, each with one static IPv4 address: bridge ``i``
gets ``10.(i//256).(i%256).1/24``. For netreload that is one bridged
network without ``nic``/``bonding`` per bridge (the network's bridge device
carries the network's name); for ``ip -batch`` it is the same three kernel
operations per bridge netreload's iproute2 configurator performs: create
the bridge (STP off, forward delay 0, MTU 1500), add the address, set it up.
A network without IPv6 has IPv6 disabled on its bridge (the production
agent's rule): netreload writes each bridge's ``disable_ipv6`` before setting
it up; ``ip`` has no per-device command for it, so the reference namespace's
``conf/default/disable_ipv6`` is 1 while ``ip -batch`` runs (the same kernel
work, one sysctl write less per bridge). Until round 11 both left IPv6 on,
as BENCHMARKS.md's figures do (netreload then wrote accept_ra and autoconf).
"""

from __future__ import annotations

PREFIX_LEN = 24


def net_name(i: int) -> str:
    """Network ``i`` and its bridge device: ``bn0`` … ``bn4095`` (≤ 15 chars)."""
    return f"bn{i}"


def net_address(i: int) -> str:
    if not 0 <= i < 65536:
        raise ValueError(f"workload index {i} out of range (10.0.0.0/8 holds 65536 /24s)")
    return f"10.{i // 256}.{i % 256}.1"


def net_attrs(i: int) -> dict:
    """Network ``i``'s setupNetworks attributes: bridged, nic-less, one address."""
    return {"bridged": True, "ipaddr": net_address(i), "prefix": PREFIX_LEN}


def networks(n: int) -> dict[str, dict]:
    return {net_name(i): net_attrs(i) for i in range(n)}


def setup_request(n: int) -> dict:
    """The setupNetworks arguments. connectivityCheck is off: the engine's
    confirmation wait would otherwise be part of the time measured."""
    return {
        "networks": networks(n),
        "bondings": {},
        "options": {"connectivityCheck": False},
    }


def ip_batch(n: int) -> str:
    """The same kernel operations as an ``ip -batch`` script."""
    lines = []
    for i in range(n):
        name = net_name(i)
        lines.append(f"link add {name} mtu 1500 type bridge stp_state 0 forward_delay 0")
        lines.append(f"addr add {net_address(i)}/{PREFIX_LEN} dev {name}")
        lines.append(f"link set {name} up")
    return "\n".join(lines) + "\n"
