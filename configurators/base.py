"""The interface every configurator implements.

superd turns plan operations (add/remove network, add/edit/remove bond,
set MTU) into the device-level calls below, bottom of the hierarchy first on
the way up and top first on the way down; a configurator only has to know
how to create, modify and delete each primitive it supports. Every call must
be idempotent: creating what already exists as asked, or deleting what is
already gone, is not an error — rollback relies on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import ClassVar

from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.nic import Nic
from shared.netmodel.vlan import Vlan

PRIMITIVES = frozenset({"nic", "bond", "bridge", "vlan", "ip"})


class Configurator(ABC):
    name: ClassVar[str]
    supports: ClassVar[frozenset[str]] = PRIMITIVES

    # -- transaction -----------------------------------------------------
    def begin(self) -> None:  # noqa: B027 - optional hook
        """Start a transaction (a configurator may buffer until commit)."""

    def commit(self) -> None:  # noqa: B027 - optional hook
        """Make the transaction's changes final."""

    def rollback(self) -> None:  # noqa: B027 - optional hook
        """Drop what the transaction buffered; kernel state is restored by
        superd feeding the pre-change running configuration back as a plan."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sockets and connections."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Send what the configurator buffered (superd calls it before
        verifying, and between operations of different configurators)."""

    def addresses_of(self, devices: Iterable[str]) -> dict[str, list[str]]:
        """The addresses (``addr/prefixlen``) each device holds now: what a
        NIC taken over by a network loses, kept to be given back by
        :meth:`restore_addresses` if the change is rolled back."""
        return {}

    def restore_addresses(self, addresses: Mapping[str, list[str]]) -> None:  # noqa: B027
        """After a rollback: add back the addresses a device lost."""

    def remove_unrecorded(self, running: Mapping) -> list[str]:
        """restore-nets, before rebuilding: drop what the configurator
        persisted on its own (OVSDB, files) that ``running`` does not name.
        The names dropped."""
        return []

    def owned_devices(self) -> frozenset[str]:
        """The kernel devices with netreload's mark (``shared.netmodel.ownership``)."""
        return frozenset()

    def adopt(self, named: Mapping[str, str]) -> list[str]:
        """Mark the devices of ``named`` ({name: kind}, named by netreload's
        running configuration) that exist with that kind unmarked; their names."""
        return []

    # -- NICs ------------------------------------------------------------
    @abstractmethod
    def setup_nic(self, nic: Nic) -> None:
        """Bring the NIC up with ``nic.mtu`` (never lowers it below users)."""

    @abstractmethod
    def release_nic(self, nic: Nic) -> None:
        """The NIC no longer carries a network: flush its addresses, keep it up."""

    # -- bonds -----------------------------------------------------------
    @abstractmethod
    def create_bond(self, bond: Bond) -> None:
        """Create (or adopt) the bond with its options and slaves, up."""

    @abstractmethod
    def modify_bond(self, bond: Bond, old: Bond | None) -> None:
        """Change a live bond's options and slaves to those of ``bond``."""

    @abstractmethod
    def delete_bond(self, bond: Bond) -> None:
        """Remove the bond; its slaves are released, up, without addresses."""

    # -- VLANs -----------------------------------------------------------
    @abstractmethod
    def create_vlan(self, vlan: Vlan) -> None: ...

    @abstractmethod
    def delete_vlan(self, vlan: Vlan) -> None: ...

    # -- bridges ---------------------------------------------------------
    @abstractmethod
    def create_bridge(self, bridge: Bridge) -> None:
        """Create the bridge (stp, forward_delay, mtu) and enslave its port."""

    @abstractmethod
    def delete_bridge(self, bridge: Bridge) -> None: ...

    # -- MTU and IP ------------------------------------------------------
    @abstractmethod
    def set_mtu(self, device: str, mtu: int) -> None:
        """Set a NIC's or bond's MTU (a bond's slaves follow)."""

    @abstractmethod
    def set_ip(self, device: str, ip: IpConfig, previous: IpConfig | None = None) -> None:
        """Apply the IP configuration of a network's top device: addresses,
        gateway/default route, IPv6 autoconf, DHCP clients, nameservers."""

    @abstractmethod
    def clear_ip(self, device: str, ip: IpConfig) -> None:
        """Undo ``set_ip``: stop DHCP clients, remove addresses and routes."""
