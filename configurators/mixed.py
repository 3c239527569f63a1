"""Several configurators behind one: the default one, and OVS for ``switch: ovs``.

superd holds one of these per NetworkSetup. Device-level calls go to the
default (legacy) configurator, so it stands wherever one configurator is
expected; :class:`superd.applier.NetworkApplier` sends the networks and
bonds whose ``switch`` is ``ovs`` to :attr:`ovs`. The OVS configurator is
made on first use: a host without Open vSwitch never connects to OVSDB.
Transactions (begin, commit, rollback) span both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from configurators.base import Configurator
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.nic import Nic
from shared.netmodel.vlan import Vlan


class MixedConfigurator(Configurator):
    def __init__(self, legacy: Configurator, ovs_factory: Callable[[], Any]) -> None:
        self.legacy = legacy
        self.name = legacy.name  # the default one names the plan's devices
        self._ovs_factory = ovs_factory
        self._ovs: Any = None
        self._in_transaction = False

    @property
    def ipr(self) -> Any:
        return self.legacy.ipr  # type: ignore[attr-defined]

    @property
    def ovs(self) -> Any:
        """The OVS configurator (made, not connected, on first use)."""
        if self._ovs is None:
            self._ovs = self._ovs_factory()
            if self._in_transaction:
                self._ovs.begin()
        return self._ovs

    @property
    def ovs_started(self) -> bool:
        return self._ovs is not None

    def flush(self) -> None:
        """Send what the OVS configurator holds (plan order across both)."""
        if self._ovs is not None:
            self._ovs.flush()

    def remove_unrecorded(self, running: Mapping) -> list[str]:
        return self.ovs.remove_unrecorded(running)

    def owned_devices(self) -> frozenset[str]:
        return self.legacy.owned_devices()

    def adopt(self, named: Mapping[str, str]) -> list[str]:
        return self.legacy.adopt(named)

    # -- transaction: both -------------------------------------------------
    def begin(self) -> None:
        self._in_transaction = True
        self.legacy.begin()
        if self._ovs is not None:
            self._ovs.begin()

    def commit(self) -> None:
        self._in_transaction = False
        if self._ovs is not None:
            self._ovs.commit()
        self.legacy.commit()

    def rollback(self) -> None:
        self._in_transaction = False
        if self._ovs is not None:
            self._ovs.rollback()
        self.legacy.rollback()

    def close(self) -> None:
        if self._ovs is not None:
            self._ovs.close()
        self.legacy.close()

    # -- device-level calls: the default configurator ------------------------
    def setup_nic(self, nic: Nic) -> None:
        self.legacy.setup_nic(nic)

    def release_nic(self, nic: Nic) -> None:
        self.legacy.release_nic(nic)

    def addresses_of(self, devices: Iterable[str]) -> dict[str, list[str]]:
        return self.legacy.addresses_of(devices)

    def restore_addresses(self, addresses: Mapping[str, list[str]]) -> None:
        self.legacy.restore_addresses(addresses)

    def create_bond(self, bond: Bond) -> None:
        self.legacy.create_bond(bond)

    def modify_bond(self, bond: Bond, old: Bond | None) -> None:
        self.legacy.modify_bond(bond, old)

    def delete_bond(self, bond: Bond) -> None:
        self.legacy.delete_bond(bond)

    def create_vlan(self, vlan: Vlan) -> None:
        self.legacy.create_vlan(vlan)

    def delete_vlan(self, vlan: Vlan) -> None:
        self.legacy.delete_vlan(vlan)

    def create_bridge(self, bridge: Bridge) -> None:
        self.legacy.create_bridge(bridge)

    def delete_bridge(self, bridge: Bridge) -> None:
        self.legacy.delete_bridge(bridge)

    def set_mtu(self, device: str, mtu: int) -> None:
        self.legacy.set_mtu(device, mtu)

    def set_ip(self, device: str, ip: IpConfig, previous: IpConfig | None = None) -> None:
        self.legacy.set_ip(device, ip, previous)

    def clear_ip(self, device: str, ip: IpConfig) -> None:
        self.legacy.clear_ip(device, ip)
