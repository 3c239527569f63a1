"""Plan operations → device-level configurator calls.

Networks are built bottom-up (NIC/bond, VLAN, bridge, then IP on the top
device) and torn down top-down. MTUs of NICs and bonds come from the plan's
expected final state, so adding a small-MTU network never shrinks a device
that a bigger network still uses.

Routing: a network or bond with ``switch: ovs`` goes, whole, to the
configurator's OVS configurator (``configurator.ovs``, see
``configurators.mixed``); everything else, device by device, to the
configurator itself. The OVS configurator buffers its OVSDB edits; they are
flushed before any other operation and by :meth:`NetworkApplier.finish`, so
the plan's order holds across configurators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from configurators.base import Configurator
from shared.errors import ErrorCode, NetError
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
        self.networks: Mapping[str, Mapping] = final_running.get("networks", {})
        self.lower_mtus = compute_lower_mtus(final_running.get("networks", {}), self.bonds)

    def model(self, name: str, attrs: Mapping, bonds: Mapping | None = None) -> Network:
        lower = attrs.get("nic") or attrs.get("bonding")
        bonds = self.bonds if bonds is None else bonds
        return build_network(
            name,
            attrs,
            self.lower_mtus.get(lower) if lower else None,
            bonds.get(attrs.get("bonding", "")),
            self._name(attrs),
        )

    def _name(self, attrs: Mapping) -> str:
        return "ovs" if attrs.get("switch") == "ovs" else self.configurator.name

    @property
    def ovs(self) -> Configurator:
        ovs = getattr(self.configurator, "ovs", None)
        if ovs is None:
            raise NetError(ErrorCode.BAD_PARAMS, "switch ovs: no OVS configurator here")
        return ovs

    def _legacy(self) -> Configurator:
        """The default configurator, once what OVS buffered is sent."""
        self.finish()
        return self.configurator

    def _for(self, attrs: Mapping | None) -> Configurator:
        if attrs is not None and attrs.get("switch") == "ovs":
            return self.ovs
        return self._legacy()

    def finish(self) -> None:
        """Send what a configurator buffered (after the last operation)."""
        self.configurator.flush()

    def apply(self, op: Mapping, previous_bonds: Mapping) -> None:
        kind, attrs = op["op"], op.get("attrs")
        if kind == "add_network":
            network = self.model(op["name"], attrs)
            if network.switch == "ovs":
                lower = network.lower_name
                self.ovs.add_network(  # type: ignore[attr-defined]
                    network, self.lower_mtus.get(lower) if lower else None,
                    op.get("blockingdhcp", False),
                )  # fmt: skip
            else:
                self._legacy()
                self.add_network(network, op.get("blockingdhcp", False))
        elif kind == "remove_network":
            network = self.model(op["name"], attrs, previous_bonds)
            if network.switch == "ovs":
                self.ovs.remove_network(network)  # type: ignore[attr-defined]
            else:
                self._legacy()
                self.remove_network(network)
        elif kind == "add_bond":
            self._for(attrs).create_bond(self.bond(op["name"], attrs))
        elif kind == "edit_bond":
            old = previous_bonds.get(op["name"])
            old_bond = self.bond(op["name"], old) if old is not None else None
            if old is not None and old.get("switch") != attrs.get("switch"):
                # from one switch to the other: a new bond
                self._for(old).delete_bond(old_bond)
                self._for(attrs).create_bond(self.bond(op["name"], attrs))
            else:
                self._for(attrs).modify_bond(self.bond(op["name"], attrs), old_bond)
        elif kind == "remove_bond":
            self._for(attrs).delete_bond(self.bond(op["name"], attrs))
        elif kind == "set_mtu":
            self._mtu_owner(op["device"]).set_mtu(op["device"], op["mtu"])
        else:  # Plan.from_dict admits no other operation
            raise AssertionError(f"unknown operation {kind}")

    def _mtu_owner(self, device: str) -> Configurator:
        """OVS for a port of an OVS bridge: an OVS bond or a NIC under OVS
        networks once the plan is applied; the default configurator else."""
        if self.bonds.get(device, {}).get("switch") == "ovs":
            return self.ovs
        if any(a.get("nic") == device and a.get("switch") == "ovs"
               for a in self.networks.values()):  # fmt: skip
            return self.ovs
        return self._legacy()

    def bond(self, name: str, attrs: Mapping) -> Bond:
        return Bond.from_attrs(
            name, dict(attrs), self.lower_mtus.get(name, 1500), self._name(attrs)
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
                # A bond the running configuration does not define lives
                # only as long as its network (the production agent's
                # legacy behaviour breaks it) if it is netreload's; the
                # configurator leaves another agent's bond as it is.
                self.configurator.delete_bond(device)
