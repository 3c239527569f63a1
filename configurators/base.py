"""The contract every configurator implements (see docs/ARCHITECTURE.md).

superd's applier hands each plan operation, whole, to the configurator that
owns it (:mod:`configurators.registry` says which): a network with its stack
of devices, a bond, the MTU of a lower device. How a configurator builds a
network — device by device through netlink, as one OVSDB transaction, as a
connection profile — is its own business. Every call must be idempotent:
adding what already exists as asked, or removing what is already gone, is
not an error — rollback relies on it (superd rolls back by feeding the
pre-change running configuration back as an ordinary plan, each network and
bond going to its owner again).

Each configurator declares what it is: its ``name`` (the registry's key),
the network ``switch`` value it serves, whether it keeps configuration
across reboots on its own (``persistent``: then ``remove_unrecorded`` has
work to do at restore), and the primitives it builds (``supports``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import ClassVar

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.host_qos import shaping
from shared.netmodel.network import Network

PRIMITIVES = frozenset({"nic", "bond", "bridge", "vlan", "ip"})


class Configurator(ABC):
    #: the registry's key for this configurator
    name: ClassVar[str]
    #: the value of a network's or bond's ``switch`` it serves
    switch: ClassVar[str] = "legacy"
    #: whether it keeps configuration across reboots on its own (OVSDB, files)
    persistent: ClassVar[bool] = False
    #: the network primitives it builds
    supports: ClassVar[frozenset[str]] = PRIMITIVES

    # -- transaction -----------------------------------------------------
    def begin(self) -> None:  # noqa: B027 - optional hook
        """Start a transaction (a configurator may buffer until commit)."""

    def commit(self) -> None:  # noqa: B027 - optional hook
        """Make the transaction's changes final."""

    def rollback(self) -> None:  # noqa: B027 - optional hook
        """Drop what the transaction buffered; kernel state is restored by
        superd feeding the pre-change running configuration back as a plan."""

    def commit_pending(self) -> None:
        """Make the transaction's changes current while a connectivity check
        decides: :meth:`commit` here; a configurator that can undo them as a
        whole (a NetworkManager checkpoint) keeps that until :meth:`confirm`
        or :meth:`undo_pending`."""
        self.commit()

    def confirm(self) -> None:  # noqa: B027 - optional hook
        """The connectivity check passed: what :meth:`commit_pending` kept to
        undo the change is dropped; the change is final."""

    def undo_pending(self) -> None:  # noqa: B027 - optional hook
        """Connectivity lost: undo the change :meth:`commit_pending` kept
        (superd's objectified rollback follows and verifies the kernel)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sockets and connections."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Send what the configurator buffered (superd calls it before
        verifying, and before another configurator's operation, so that the
        plan's order holds across configurators)."""

    def addresses_of(self, devices: Iterable[str]) -> dict[str, list[str]]:
        """The addresses (``addr/prefixlen``) each device holds now: what a
        NIC taken over by a network loses, kept to be given back by
        :meth:`restore_addresses` if the change is rolled back."""
        return {}

    def restore_addresses(self, addresses: Mapping[str, list[str]]) -> None:  # noqa: B027
        """After a rollback: add back the addresses a device lost."""

    def give_back_ipv6(self, device: str) -> None:  # noqa: B027 - optional hook
        """A device another configurator released: IPv6 on or off as the
        namespace's default says (the kernel's devices' configurator)."""

    def check_bonds(self, bonds: Mapping[str, Mapping]) -> None:  # noqa: B027 - optional hook
        """Before any change: refuse (``NetError``) bonds, by canonical
        attributes, that this configurator cannot build as asked (a team's
        bonding options without a teamd equivalent: 25)."""

    def repair_bonds(self, running: Mapping) -> list[str]:
        """restore-nets and crash recovery, first: bring back what the
        kernel alone does not show broken (a team device whose teamd is
        gone); the bonds repaired."""
        return []

    def sync_host_qos(
        self, networks: Mapping[str, Mapping], shapes: bool | None = None
    ) -> list[str]:
        """Shape the NICs and bonds as the legacy networks of ``networks``
        (the whole running configuration after the change) ask in their
        ``hostQos``, and remove shaping no network asks for; the devices
        changed. Asked of the default configurator after every
        transaction's operations (a rollback's too). A configurator that
        cannot shape refuses networks that ask for it. ``shapes`` False:
        the caller knows no network of ``networks`` asks for shaping (no
        walk over them); None: not known."""
        if shapes is False:
            return []
        wanting = sorted(
            name for name, attrs in networks.items()
            if attrs.get("switch", "legacy") == "legacy" and shaping(attrs)
        )  # fmt: skip
        if wanting:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"hostQos of {', '.join(wanting)}: the {self.name} configurator does not apply it",
            )
        return []

    def remove_unrecorded(self, running: Mapping) -> list[str]:
        """restore-nets, before rebuilding: drop what the configurator
        persisted on its own (OVSDB, files) that ``running`` does not name.
        The names dropped."""
        return []

    # -- the kernel devices of the default configurator (superd asks it
    #    through configurators.registry.Configurators) ---------------------
    def owned_devices(self) -> frozenset[str]:
        """The kernel devices with netreload's mark (``shared.netmodel.ownership``)."""
        return frozenset()

    def adopt(self, named: Mapping[str, str]) -> list[str]:
        """Mark the devices of ``named`` ({name: kind}, named by netreload's
        running configuration) that exist with that kind unmarked; their names."""
        return []

    # -- networks --------------------------------------------------------
    @abstractmethod
    def add_network(self, network: Network, lower_mtu: int | None, blocking_dhcp: bool) -> None:
        """Build the network (its bond exists already: add_bond runs first)
        with its IP configuration on the top device. ``lower_mtu`` is the
        MTU its NIC or bond must carry for every network using it."""

    @abstractmethod
    def remove_network(self, network: Network, keep_bond: bool = True) -> None:
        """Tear the network down, top first. ``keep_bond`` False: its bond
        is not in the running configuration and goes with it."""

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

    # -- MTU -------------------------------------------------------------
    @abstractmethod
    def set_mtu(self, device: str, mtu: int) -> None:
        """Set a NIC's or bond's MTU (a bond's slaves follow)."""
