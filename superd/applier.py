"""Plan operations → device-level configurator calls.

Networks are built bottom-up (NIC/bond, VLAN, bridge, then IP on the top
device) and torn down top-down. MTUs of NICs and bonds come from the plan's
expected final state, so adding a small-MTU network never shrinks a device
that a bigger network still uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from configurators.base import Configurator
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.network import Network, build_network
from shared.netmodel.nic import Nic
from shared.netmodel.validation import compute_lower_mtus
from shared.netmodel.vlan import Vlan


class NetworkApplier:
    def __init__(self, configurator: Configurator, final_running: Mapping) -> None:
        self.configurator = configurator
        self.bonds: Mapping[str, Mapping] = final_running.get("bonds", {})
        self.lower_mtus = compute_lower_mtus(final_running.get("networks", {}), self.bonds)

    def model(self, name: str, attrs: Mapping, bonds: Mapping | None = None) -> Network:
        lower = attrs.get("nic") or attrs.get("bonding")
        bonds = self.bonds if bonds is None else bonds
        return build_network(
            name,
            attrs,
            self.lower_mtus.get(lower) if lower else None,
            bonds.get(attrs.get("bonding", "")),
            self.configurator.name,
        )

    def apply(self, op: Mapping, previous_bonds: Mapping) -> None:
        kind = op["op"]
        if kind == "add_network":
            self.add_network(self.model(op["name"], op["attrs"]), op.get("blockingdhcp", False))
        elif kind == "remove_network":
            self.remove_network(self.model(op["name"], op["attrs"], previous_bonds))
        elif kind == "add_bond":
            self.configurator.create_bond(self.bond(op["name"], op["attrs"]))
        elif kind == "edit_bond":
            old = previous_bonds.get(op["name"])
            old_bond = self.bond(op["name"], old) if old is not None else None
            self.configurator.modify_bond(self.bond(op["name"], op["attrs"]), old_bond)
        elif kind == "remove_bond":
            self.configurator.delete_bond(self.bond(op["name"], op["attrs"]))
        elif kind == "set_mtu":
            self.configurator.set_mtu(op["device"], op["mtu"])
        else:  # Plan.from_dict admits no other operation
            raise AssertionError(f"unknown operation {kind}")

    def bond(self, name: str, attrs: Mapping) -> Bond:
        return Bond.from_attrs(
            name, dict(attrs), self.lower_mtus.get(name, 1500), self.configurator.name
        )

    def add_network(self, network: Network, blocking_dhcp: bool) -> None:
        for device in network.devices:
            if isinstance(device, Nic):
                self.configurator.setup_nic(device)
            elif isinstance(device, Vlan):
                self.configurator.create_vlan(device)
            elif isinstance(device, Bridge):
                self.configurator.create_bridge(device)
            # A bond exists already: add_bond runs before add_network.
        ip = network.top.ip
        if ip is not None:
            if blocking_dhcp != ip.blocking_dhcp:
                ip = replace(ip, blocking_dhcp=blocking_dhcp)
            self.configurator.set_ip(network.top.name, ip)

    def remove_network(self, network: Network) -> None:
        if network.top.ip is not None:
            self.configurator.clear_ip(network.top.name, network.top.ip)
        for device in reversed(network.devices):
            if isinstance(device, Bridge):
                self.configurator.delete_bridge(device)
            elif isinstance(device, Vlan):
                self.configurator.delete_vlan(device)
            elif isinstance(device, Bond) and device.name not in self.bonds:
                # A bond netreload did not define (not in the running
                # configuration) lives only as long as its network: the
                # production agent's legacy behaviour breaks it.
                self.configurator.delete_bond(device)
