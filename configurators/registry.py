"""The configurators netreload knows: names → factories, loaded lazily.

One entry per configurator: its name (``net_configurator`` in the
configuration names the default one), the network ``switch`` value it
serves, the Python modules it needs, and its factory, which imports the
configurator's module when called. Nothing is imported until a
configurator is made: a host without Open vSwitch never
imports the OVS IDL, and frontd (which validates ``switch`` values) never
imports a configurator at all.

:class:`Configurators` is one superd core's set of configurators: the
default one made at once, the others on first use (a plan without
``switch: ovs`` never connects to OVSDB); transactions span those made.

Adding a configurator is a package (or module) with a
:class:`configurators.base.Configurator` subclass plus one :func:`register`
line below; docs/ARCHITECTURE.md shows one.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import ErrorCode, NetError

if TYPE_CHECKING:
    from configurators.base import Configurator
    from shared.config import Config

#: factory(config, configurators of the same core) → a configurator
Factory = Callable[["Config", "Configurators"], "Configurator"]


@dataclass(frozen=True)
class Entry:
    name: str
    #: the factory; it imports the configurator's module when called
    factory: Factory
    #: the value of ``switch`` whose networks and bonds it configures
    switch: str
    #: Python modules it needs (checked without importing them)
    requires: tuple[str, ...] = ()
    #: may be named by ``net_configurator`` (serves ``switch: legacy``)
    default: bool = False
    #: said when it cannot be used (what to install)
    hint: str = ""

    def missing(self) -> list[str]:
        """The required modules this host lacks."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


_ENTRIES: dict[str, Entry] = {}


def register(entry: Entry) -> Entry:
    """Add (or replace) a configurator; the entry."""
    _ENTRIES[entry.name] = entry
    return entry


@contextlib.contextmanager
def registered(*added: Entry) -> Iterator[None]:
    """``added`` registered (replacing entries of the same name) for the
    duration of the block only (tests, the architecture document's example)."""
    saved = dict(_ENTRIES)
    try:
        for entry in added:
            register(entry)
        yield
    finally:
        _ENTRIES.clear()
        _ENTRIES.update(saved)


def defaults() -> tuple[str, ...]:
    """The values ``net_configurator`` may take."""
    return tuple(name for name, entry in _ENTRIES.items() if entry.default)


def switches() -> tuple[str, ...]:
    """The values a network's or bond's ``switch`` may take."""
    return tuple(dict.fromkeys(["legacy", *(e.switch for e in _ENTRIES.values())]))


def check_default(name: str) -> None:
    """Refuse ``net_configurator = name`` unless it is registered as a
    default configurator and installed (BAD_PARAMS, saying what is missing)."""
    entry = _ENTRIES.get(name)
    if entry is None or not entry.default:
        why = (
            f"serves networks with switch {entry.switch!r}, not the default"
            if entry is not None
            else "is not implemented"
        )
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"configuration: net_configurator = {name!r} {why}; expected one of "
            f"{', '.join(defaults())}",
        )
    missing = entry.missing()
    if missing:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"configuration: net_configurator = {name!r} needs the Python module(s) "
            f"{', '.join(missing)}{': ' + entry.hint if entry.hint else ''}",
        )


class Configurators:
    """One core's configurators: the default for ``switch: legacy``, the
    others made on first use, each in the transaction if one is open."""

    def __init__(self, config: Config, made: Mapping[str, Configurator] | None = None) -> None:
        self.config = config
        self._made: dict[str, Configurator] = dict(made or {})
        self._in_transaction = False
        self.default = self.get(config.net_configurator)

    def get(self, name: str) -> Configurator:
        """The configurator ``name``, made now if it was not."""
        configurator = self._made.get(name)
        if configurator is None:
            entry = _ENTRIES.get(name)
            if entry is None:
                raise NetError(ErrorCode.BAD_PARAMS, f"no configurator {name!r}")
            configurator = entry.factory(self.config, self)
            self._made[name] = configurator
            if self._in_transaction:
                configurator.begin()
        return configurator

    def for_switch(self, switch: str | None) -> Configurator:
        """The owner of a network or bond with this ``switch``."""
        if switch in (None, "legacy"):
            return self.default
        for entry in _ENTRIES.values():
            if entry.switch == switch:
                return self.get(entry.name)
        raise NetError(ErrorCode.BAD_PARAMS, f"switch {switch!r}: no configurator serves it")

    def started(self, name: str) -> bool:
        return name in self._made

    def __iter__(self) -> Iterator[Configurator]:
        return iter(list(self._made.values()))

    # -- transaction: all made ---------------------------------------------
    def begin(self) -> None:
        self._in_transaction = True
        for configurator in self:
            configurator.begin()

    def commit(self, pending: bool = False) -> None:
        """Commit the others first, then the default (which they may use).
        ``pending``: a connectivity check follows (``commit_pending``), then
        :meth:`confirm` or :meth:`undo_pending`."""
        self._in_transaction = False
        for configurator in [*self._others(), self.default]:
            if pending:
                configurator.commit_pending()
            else:
                configurator.commit()

    def confirm(self) -> None:
        """Each configurator drops what it kept to undo the change."""
        self._each(lambda configurator: configurator.confirm())

    def undo_pending(self) -> None:
        """Undo each pending change, the default configurator's last."""
        self._each(lambda configurator: configurator.undo_pending())

    def _each(self, step: Callable[[Configurator], None]) -> None:
        """``step`` on each configurator, the default's last; one that fails
        does not stop the others (the first error is raised)."""
        errors = []
        for configurator in [*self._others(), self.default]:
            try:
                step(configurator)
            except NetError as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def rollback(self) -> None:
        self._in_transaction = False
        for configurator in self._others():
            configurator.rollback()
        self.default.rollback()

    def close(self) -> None:
        for configurator in self._others():
            configurator.close()
        self.default.close()

    def remove_unrecorded(self, running: Mapping) -> list[str]:
        """Every registered configurator that keeps configuration on its own
        drops what ``running`` does not name (a persistent one is made for
        it: OVSDB keeps bridges across reboots whether or not they are used;
        one that cannot reach its store drops nothing)."""
        dropped: list[str] = []
        for name in _ENTRIES:
            configurator = self.get(name)
            if configurator.persistent:
                dropped += configurator.remove_unrecorded(running)
        return dropped

    # -- the kernel devices: the default configurator's ----------------------
    def addresses_of(self, devices: Iterable[str]) -> dict[str, list[str]]:
        return self.default.addresses_of(devices)

    def restore_addresses(self, addresses: Mapping[str, list[str]]) -> None:
        self.default.restore_addresses(addresses)

    def owned_devices(self) -> frozenset[str]:
        return self.default.owned_devices()

    def sync_host_qos(
        self, networks: Mapping[str, Mapping], shapes: bool | None = None
    ) -> list[str]:
        """The default configurator's :meth:`Configurator.sync_host_qos`;
        ``shapes`` False when the caller knows that no network of
        ``networks`` asks for shaping (the configurator then walks none)."""
        return self.default.sync_host_qos(networks, shapes)

    def repair_bonds(self, running: Mapping) -> list[str]:
        return self.default.repair_bonds(running)

    def check_bonds(self, bonds: Mapping[str, Mapping]) -> None:
        """Each configurator checks the bonds it would build."""
        for switch in {attrs.get("switch", "legacy") for attrs in bonds.values()}:
            owner = self.for_switch(switch)
            owner.check_bonds(
                {n: a for n, a in bonds.items() if a.get("switch", "legacy") == switch}
            )

    def adopt(self, named: Mapping[str, str]) -> list[str]:
        return self.default.adopt(named)

    def _others(self) -> list[Configurator]:
        return [c for c in self if c is not self.default]


def _iproute2(config: Config, configurators: Configurators) -> Configurator:
    from configurators.iproute2 import Iproute2Configurator

    return Iproute2Configurator(config)


def _ovs(config: Config, configurators: Configurators) -> Configurator:
    from configurators.ovs import OvsConfigurator

    # IP configuration of internal ports and NICs up: through iproute2
    return OvsConfigurator(config, configurators.get("iproute2"))


def _ifcfg(config: Config, configurators: Configurators) -> Configurator:
    from configurators.ifcfg import IfcfgConfigurator

    # the kernel's devices (ownership marks, addresses given back): iproute2's
    return IfcfgConfigurator(config, configurators.get("iproute2"))

def _nm(config: Config, configurators: Configurators) -> Configurator:
    from configurators.iproute2 import Iproute2Configurator
    from configurators.nm import NmConfigurator

    # its own kernel access (device marks, a NIC's addresses, MTUs of devices
    # without a profile), not the registry's iproute2 configurator
    return NmConfigurator(config, Iproute2Configurator(config))


register(Entry("iproute2", _iproute2, switch="legacy", requires=("pyroute2",),
               default=True, hint="pip install pyroute2"))  # fmt: skip
# OVS needs the ovs package only to talk to OVSDB: without it a switch-ovs
# network fails with OVS_CONNECTION (32), as an unreachable OVSDB does.
register(Entry("ovs", _ovs, switch="ovs"))
# RHEL ifcfg files; [ifcfg] apply = nm talks D-Bus (dbus-python) only when
# files change, and says what is missing then.
register(Entry("ifcfg", _ifcfg, switch="legacy", requires=("pyroute2",), default=True,
               hint="pip install pyroute2"))  # fmt: skip

register(Entry("nm", _nm, switch="legacy", requires=("dbus", "pyroute2"), default=True,
               hint="pip install 'netreload[nm]' (dbus-python; Debian: libdbus-1-dev "
                    "libglib2.0-dev pkg-config to build it)"))  # fmt: skip
