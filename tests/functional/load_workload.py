"""The load test's workload and its check: what a whole view of the host is.

Pure (no I/O): the groups of networks the writers of
:mod:`tests.functional.load_clients` add and remove, and
:func:`caps_problems`, which says why a capabilities answer is not a whole
view of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The NIC each writer's groups put their first network on (veth_1 is the
# control path). This kernel has no VLANs: the other networks are nic-less bridges.
WRITER_NICS = ("veth_0", "veth_2")
CONTROL = ("veth_1", "192.0.2.10/24")
PREFIX = 24


@dataclass(frozen=True)
class Group:
    """K bridged networks, each with a static address, added and removed
    together by one setupNetworks: the first on its writer's NIC (a swap
    hands the NIC from one group to the next), the others nic-less."""

    name: str
    networks: dict[str, dict]

    @staticmethod
    def make(writer: int, index: int, size: int) -> Group:
        nets = {}
        for k in range(size):
            attrs = {"bridged": True, "ipaddr": f"10.{writer * 10 + index}.{k}.1", "prefix": PREFIX}
            if k == 0:
                attrs["nic"] = WRITER_NICS[writer]
            nets[f"ld{writer}g{index}n{k}"] = attrs
        return Group(f"w{writer}g{index}", nets)

    def devices(self, name: str) -> tuple[str, list[str], str]:
        """(bridge, its ports, address/prefix) of one of its networks."""
        attrs = self.networks[name]
        ports = [attrs["nic"]] if "nic" in attrs else []
        return name, ports, f"{attrs['ipaddr']}/{PREFIX}"


def groups_of(writer: int, count: int, size: int) -> list[Group]:
    return [Group.make(writer, i, size) for i in range(count)]


def caps_problems(caps: dict, groups: list[Group]) -> list[str]:
    """Why ``caps`` is not a whole view of the host; [] when it is.

    A *half-applied view*: each setupNetworks of this workload adds or
    removes whole groups, so in every answer each group must be either

    * all there: every network in ``networks``, not ``missing``, with its
      address, on its own bridge; the bridge in ``bridges`` with the
      network's NIC (if any) as its only port and the network's address —
      or
    * all gone: none of its networks or bridges anywhere.

    Also: no network that is not in a group, every lab NIC in ``nics``, and
    the control NIC with its address (the changes never touch it).
    """
    problems = []
    networks = caps.get("networks", {})
    bridges, nics = caps.get("bridges", {}), caps.get("nics", {})
    known = set()
    for group in groups:
        known.update(group.networks)
        shown = [name for name in group.networks if name in networks]
        if shown and len(shown) != len(group.networks):
            problems.append(f"{group.name}: only {sorted(shown)} of it in networks")
            continue
        for name in group.networks:
            if not shown:
                if name in bridges:
                    problems.append(f"{group.name}: {name} absent but its bridge is there")
                continue
            problems += _network_problems(group, name, networks[name], bridges)
    strangers = sorted(set(networks) - known)
    if strangers:
        problems.append(f"networks not in any group: {strangers}")
    lost = [nic for nic in (*WRITER_NICS, CONTROL[0]) if nic not in nics]
    if lost:
        problems.append(f"NICs missing from nics: {lost}")
    control = nics.get(CONTROL[0], {})
    if CONTROL[1] not in control.get("ipv4addrs", ()):
        problems.append(f"control NIC {CONTROL[0]} without {CONTROL[1]}: {control}")
    return problems


def _network_problems(group: Group, name: str, entry: dict, bridges: dict) -> list[str]:
    bridge, ports, address = group.devices(name)
    where = f"{group.name}: {name}"
    problems = []
    if entry.get("missing") or entry.get("iface") != bridge:
        problems.append(f"{where} has no device of its own: {entry}")
    if address not in entry.get("ipv4addrs", ()):
        problems.append(f"{where} lacks {address}: {entry.get('ipv4addrs')}")
    if bridge not in bridges:
        problems.append(f"{where}: bridge missing from bridges")
    else:
        if bridges[bridge].get("ports") != ports:
            problems.append(f"{where}: bridge ports {bridges[bridge].get('ports')}, not {ports}")
        if address not in bridges[bridge].get("ipv4addrs", ()):
            problems.append(f"{where}: bridge lacks {address}")
    if entry.get("ports") != ports:
        problems.append(f"{where}: network ports {entry.get('ports')}, not {ports}")
    return problems


def problem_kind(problem: str) -> str:
    """A problem without its names and values: what kind of half view it is."""
    return re.sub(r"\{.*\}|\[.*\]|ld\d+g\d+n\d+|w\d+g\d+|[\d.]+/\d+", "*", problem)
