"""Plan operations → the configurator that owns each network and bond.

One loop: each operation goes, whole, to the configurator its network's or
bond's ``switch`` names (:meth:`configurators.registry.Configurators.for_switch`);
how the configurator builds it (device by device, one OVSDB transaction …)
is its business. MTUs of NICs and bonds come from the plan's expected final
state, so adding a small-MTU network never shrinks a device that a bigger
network still uses; a device's MTU goes to the owner of the networks or bond
on it then.

A configurator may buffer (OVSDB edits): what it holds is flushed before
another configurator's operation and by :meth:`NetworkApplier.finish`, so
the plan's order holds across configurators.
"""

from __future__ import annotations

from collections.abc import Mapping

from configurators.base import Configurator
from configurators.registry import Configurators
from shared.netmodel.bond import Bond
from shared.netmodel.network import Network, build_network
from shared.netmodel.validation import compute_lower_mtus


class NetworkApplier:
    def __init__(
        self, configurators: Configurators, final_running: Mapping, shapes: bool | None = None
    ) -> None:
        self.configurators = configurators
        self.shapes = shapes  # the final state asks for shaping; None: not known
        self.bonds: Mapping[str, Mapping] = final_running.get("bonds", {})
        self.networks: Mapping[str, Mapping] = final_running.get("networks", {})
        self._lower_mtus: dict[str, int] | None = None
        self._last: Configurator | None = None  # the one that may hold buffered edits

    @property
    def lower_mtus(self) -> dict[str, int]:
        """The MTU each NIC and bond needs in the final state, computed at the
        first operation that has one (a walk over every network: a plan of
        nic-less networks never pays it)."""
        if self._lower_mtus is None:
            self._lower_mtus = compute_lower_mtus(self.networks, self.bonds)
        return self._lower_mtus

    def model(self, name: str, attrs: Mapping, bonds: Mapping | None = None) -> Network:
        lower = attrs.get("nic") or attrs.get("bonding")
        bonds = self.bonds if bonds is None else bonds
        return build_network(
            name,
            attrs,
            self.lower_mtus.get(lower) if lower else None,
            bonds.get(attrs.get("bonding", "")),
        )

    def owner(self, attrs: Mapping | None) -> Configurator:
        """The configurator of a network or bond, once what another one
        buffered is sent."""
        switch = None if attrs is None else attrs.get("switch")
        return self._use(self.configurators.for_switch(switch))

    def _use(self, configurator: Configurator) -> Configurator:
        if self._last is not None and self._last is not configurator:
            self._last.flush()
        self._last = configurator
        return configurator

    def finish(self) -> None:
        """Send what the configurators buffered (after the last operation)."""
        for configurator in self.configurators:
            configurator.flush()
        self._last = None
        # the NICs' and bonds' HFSC trees, as the whole final state asks
        self.configurators.sync_host_qos(self.networks, self.shapes)

    def apply(self, op: Mapping, previous_bonds: Mapping) -> None:
        kind, attrs = op["op"], op.get("attrs")
        if kind == "add_network":
            network = self.model(op["name"], attrs)
            lower = network.lower_name
            self.owner(attrs).add_network(
                network, self.lower_mtus.get(lower) if lower else None,
                op.get("blockingdhcp", False),
            )  # fmt: skip
        elif kind == "remove_network":
            network = self.model(op["name"], attrs, previous_bonds)
            bond = attrs.get("bonding")
            self.owner(attrs).remove_network(network, keep_bond=bond is None or bond in self.bonds)
        elif kind == "add_bond":
            self.owner(attrs).create_bond(self.bond(op["name"], attrs))
        elif kind == "edit_bond":
            old = previous_bonds.get(op["name"])
            old_bond = self.bond(op["name"], old) if old is not None else None
            if old is not None and old.get("switch") != attrs.get("switch"):
                # from one configurator to another: a new bond
                self.owner(old).delete_bond(old_bond)
                self.owner(attrs).create_bond(self.bond(op["name"], attrs))
            else:
                self.owner(attrs).modify_bond(self.bond(op["name"], attrs), old_bond)
        elif kind == "remove_bond":
            self.owner(attrs).delete_bond(self.bond(op["name"], attrs))
        elif kind == "set_mtu":
            self._use(self._mtu_owner(op["device"])).set_mtu(op["device"], op["mtu"])
        else:  # Plan.from_dict admits no other operation
            raise AssertionError(f"unknown operation {kind}")

    def _mtu_owner(self, device: str) -> Configurator:
        """The owner of the bond ``device``, or of the networks on the NIC
        ``device`` (one switch per device: ``validate_sharing``), once the
        plan is applied; the default configurator for a device no network
        or bond will use."""
        attrs = self.bonds.get(device)
        if attrs is None:
            attrs = next((a for a in self.networks.values() if a.get("nic") == device), None)
        return self.configurators.for_switch(None if attrs is None else attrs.get("switch"))

    def bond(self, name: str, attrs: Mapping) -> Bond:
        return Bond.from_attrs(name, dict(attrs), self.lower_mtus.get(name, 1500))
