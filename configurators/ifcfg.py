"""The ifcfg configurator (``net_configurator = ifcfg``): RHEL ifcfg files,
applied the way the host's ``ifup``/``ifdown`` do.

Each operation stages the files of the devices it touches
(:mod:`configurators.ifcfg_fields` says what goes in them); :meth:`flush`
sends them: the devices whose file changes or goes are taken down (bridges,
then VLANs, then bonds and NICs), the files written as one journaled
transaction (:mod:`configurators.ifcfg_files`), then the devices with a new
or changed file — and those stacked on a device that was re-made — brought
up (NICs and bonds, then VLANs, then bridges). :meth:`rollback` does the
same from the journal back to the files before the transaction; after a
crash, :meth:`recover` (at superd's start and in restore-nets) does it.

How a device goes down and up is ``[ifcfg] apply``'s
(:mod:`configurators.ifcfg_apply`): ``nm`` (the default, RHEL 8/9) through
NetworkManager's ifcfg-rh plugin over D-Bus; ``initscripts`` (RHEL 7) by
running ``ifdown``/``ifup``.

The kernel devices themselves (ownership marks, a NIC's addresses given back
after a rollback) are read through the iproute2 configurator: the ifcfg
configurator writes files, never netlink requests of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from configurators import ifcfg_fields as fields_of
from configurators import ifcfg_format as fmt
from configurators.base import Configurator
from configurators.ifcfg_apply import Applier, make_applier
from configurators.ifcfg_files import Change, IfcfgFiles
from configurators.ifcfg_upgrade import taken_over
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.device import NetDevice
from shared.netmodel.network import Network
from shared.netmodel.ownership import named_devices
from shared.netmodel.vlan import Vlan

log = logging.getLogger("netreload.ifcfg")

DOWN_ORDER = {"bridge": 0, "vlan": 1, "bond": 2, "nic": 3}


def journal_dir(config: Config) -> Path:
    return config.lib_dir / "ifcfg" / "transaction"


def safe_dir(config: Config) -> Path:
    """net_persistence = ifcfg: the files of the last safe configuration."""
    return config.lib_dir / "ifcfg" / "safe"


def make_files(config: Config) -> IfcfgFiles:
    safe = safe_dir(config) if config.net_persistence == "ifcfg" else None
    return IfcfgFiles(config.ifcfg_dir, journal_dir(config), safe=safe)


class IfcfgConfigurator(Configurator):
    name = "ifcfg"
    switch = "legacy"
    persistent = True  # the files bring the devices up at boot

    def __init__(self, config: Config, kernel: Configurator | None = None,
                 applier: Applier | None = None) -> None:  # fmt: skip
        self.config = config
        self.kernel = kernel
        self.nm_controlled = config.ifcfg_apply == "nm"
        self.files = make_files(config)
        self._applier = applier
        self._in_transaction = False
        self._blocking: set[str] = set()  # devices of blockingdhcp networks

    @property
    def applier(self) -> Applier:
        """Made on first use (a host whose files never change never talks
        to NetworkManager)."""
        if self._applier is None:
            self._applier = make_applier(self.config)
        return self._applier

    # -- transaction -------------------------------------------------------
    def begin(self) -> None:
        self.recover()
        self._in_transaction = True

    def flush(self) -> None:
        changes = self.files.changes()
        self.files.drop_staged()
        if changes:
            self._send(changes, self.files.write)
        if not self._in_transaction:
            self.files.commit()

    def commit(self) -> None:
        self._in_transaction = False
        self.files.commit()

    def rollback(self) -> None:
        """The files of before the transaction back, their devices down and
        up again (called after a failure midway or lost connectivity)."""
        self._in_transaction = False
        changes = self.files.rollback_changes()
        if changes:
            log.info("ifcfg: restoring %s", ", ".join(c.device for c in changes))
            self._send(changes, self.files.restore, best_effort=True)
        else:
            self.files.commit()

    def recover(self) -> list[str]:
        """A transaction a crash interrupted: its files put back (and their
        devices down and up). The devices restored."""
        if not self.files.pending_journal():
            return []
        changes = self.files.rollback_changes()
        log.warning("ifcfg: an interrupted transaction is undone: %s",
                    ", ".join(c.device for c in changes) or "nothing written yet")  # fmt: skip
        self._send(changes, self.files.restore, best_effort=True)
        return [c.device for c in changes]

    def close(self) -> None:
        if self._applier is not None:
            self._applier.close()

    def _send(self, changes: list[Change], write: Any, best_effort: bool = False) -> None:
        """Devices down, files written (``write(changes)``), devices up."""
        down = sorted(
            (c for c in changes if c.old is not None),
            key=lambda c: (DOWN_ORDER[fmt.kind_of(fmt.parse(c.old or ""))], c.device),
        )
        remade = {c.device for c in changes if c.old is not None}
        try:
            self.applier.down([c.device for c in down])
        except NetError:
            if not best_effort:
                raise
            log.exception("ifcfg: taking devices down failed")
        write(changes)
        self.applier.reload([self.files.path(c.device) for c in changes])
        up = {c.device: fmt.parse(c.new) for c in changes if c.new is not None}
        # what is stacked on a device that went down comes up again with it
        for device, fields in self.files.owned().items():
            if device not in up and _lower_names(fields) & remade:
                up[device] = fields
        order = sorted(up, key=lambda d: (-DOWN_ORDER[fmt.kind_of(up[d])], d))
        # a DHCP or autoconf network is up once its link is, unless blocking
        waits = {d for d in order if fields_of.is_dynamic(up[d]) and d not in self._blocking}
        try:
            self.applier.up(order, waits)
        except NetError:
            if not best_effort:
                raise
            log.exception("ifcfg: bringing devices up failed")
        self._give_back_ipv6(c for c in changes if c.new is None)

    def _give_back_ipv6(self, gone: Iterable[Change]) -> None:
        """A NIC whose file went (no network on it any more) keeps the IPv6
        setting its network had (off, IPV6_DISABLED): the namespace's default
        back, as the iproute2 configurator gives it."""
        if self.kernel is None:
            return
        for change in gone:
            if fmt.kind_of(fmt.parse(change.old or "")) != "nic":
                continue
            try:
                self.kernel.give_back_ipv6(change.device)
            except NetError:  # a rollback goes on; the device is as it is
                log.exception("ifcfg: IPv6 of %s not given back", change.device)

    # -- networks ----------------------------------------------------------
    def add_network(self, network: Network, lower_mtu: int | None, blocking_dhcp: bool) -> None:
        chain = network.devices  # bottom first
        if blocking_dhcp:
            self._blocking.add(network.iface)
        else:
            self._blocking.discard(network.iface)
        for index, device in enumerate(chain):
            upper = chain[index + 1] if index + 1 < len(chain) else None
            bridge = upper.name if isinstance(upper, Bridge) else None
            ip = device.ip if upper is None else None
            name = network.name if upper is None and not network.bridged else None
            if isinstance(device, Bridge):
                self._stage(device.name, fields_of.bridge_base(device), device.mtu, bridge, ip)
            elif isinstance(device, Vlan):
                base = fields_of.vlan_base(device)
                self._stage(device.name, base, device.mtu, bridge, ip, name)
            elif isinstance(upper, Vlan):
                self._keep_lower(device)  # shared by VLANs: only its MTU is this network's
            else:
                self._stage(device.name, self._base(device), device.mtu, bridge, ip, name)
        self._auto_flush()

    def remove_network(self, network: Network, keep_bond: bool = True) -> None:
        for device in reversed(network.devices):  # top first
            if isinstance(device, (Bridge, Vlan)):
                self._remove(device.name)
            elif isinstance(device, Bond) and not keep_bond:
                self._remove_bond(device)
            elif network.vlan is None:
                self._release(device)
            elif not (self._in_use(device.name) or self._carries_network(device.name)):
                self._release(device)  # the last VLAN on a device no other network uses
        self._auto_flush()

    def _base(self, device: NetDevice) -> dict[str, str]:
        if isinstance(device, Bond):
            current = self.files.fields(device.name)
            return fields_of.base_of(current) if current else fields_of.bond_base(device)
        return fields_of.nic_base(device.name)

    def _keep_lower(self, device: NetDevice) -> None:
        current = self.files.fields(device.name)
        if current is None:
            self._stage(device.name, self._base(device), device.mtu, None, None)
        elif current.get("MTU") != str(device.mtu):
            self.files.stage(device.name, {**current, "MTU": str(device.mtu)})

    def _release(self, device: NetDevice) -> None:
        """A NIC or bond the network leaves: its network keys go; a NIC no
        other network uses loses its file."""
        current = self.files.fields(device.name)
        if current is None:
            return
        if isinstance(device, Bond) or self._in_use(device.name):
            base = fields_of.base_of(current)
            self._stage(device.name, base, _mtu(current), None, None)
        else:
            self._remove(device.name)

    def _in_use(self, device: str) -> bool:
        """A file of ours (staged view) stacks on ``device``: a VLAN on it."""
        return any(fields.get("PHYSDEV") == device for fields in self.files.owned().values())

    def _carries_network(self, device: str) -> bool:
        """A network sits directly on ``device`` (its port or its IP)."""
        fields = self.files.fields(device) or {}
        return (
            "BRIDGE" in fields
            or "NETRELOAD_NETWORK" in fields
            or "IPADDR" in fields
            or fields.get("BOOTPROTO") == "dhcp"
            or fields.get("IPV6INIT") == "yes"
        )

    def _stage(
        self,
        device: str,
        base: Mapping[str, str],
        mtu: int | None,
        bridge: str | None,
        ip: Any,
        network: str | None = None,
    ) -> None:
        fields = fields_of.compose(
            base, nm_controlled=self.nm_controlled, mtu=mtu, bridge=bridge, ip=ip, network=network
        )
        self.files.stage(device, fields)

    def _remove(self, device: str) -> None:
        text = self.files.text(device)
        if text is None:
            return
        if fmt.origin(text) is not fmt.Origin.NETRELOAD:
            log.warning(
                "%s: a file netreload did not write: left as it is", self.files.path(device)
            )
            return
        self.files.stage(device, None)

    def _auto_flush(self) -> None:
        """Each operation is sent when it is done, as the iproute2
        configurator's are: a failure after it finds it applied, and the
        rollback takes it back (outside a transaction: committed at once)."""
        self.flush()

    # -- bonds -------------------------------------------------------------
    def create_bond(self, bond: Bond) -> None:
        self.modify_bond(bond, None)

    def modify_bond(self, bond: Bond, old: Bond | None) -> None:
        current = self.files.fields(bond.name) or {}
        fields = fields_of.compose(fields_of.bond_base(bond), nm_controlled=self.nm_controlled,
                                   mtu=bond.mtu, bridge=current.get("BRIDGE"))  # fmt: skip
        if "BRIDGE" not in current:  # the IP of a network on the bond stays
            fields.update((k, v) for k, v in current.items() if k in fields_of.IP_KEYS)
        self.files.stage(bond.name, fields)
        for slave in bond.slaves:
            self.files.stage(slave, fields_of.compose(
                fields_of.nic_base(slave), nm_controlled=self.nm_controlled, mtu=bond.mtu,
                master=bond.name))  # fmt: skip
        dropped = set(old.slaves if old else ()) - set(bond.slaves)
        for device, fields in self.files.owned().items():
            if fields.get("MASTER") == bond.name and device not in bond.slaves:
                dropped.add(device)
        for slave in sorted(dropped):
            self._remove(slave)
        unchanged = not self.files.changes()
        self._auto_flush()
        if unchanged:
            self._enslave_returned(bond)

    def _enslave_returned(self, bond: Bond) -> None:
        """The bond's files are as it wants them, so nothing was sent: a NIC
        the kernel does not have in the bond (it left and came back, and the
        kernel released it) is brought up from its file, which enslaves it
        again. The bond and what it carries are left as they run."""
        if self.kernel is None:
            return
        master = self.kernel.read_device(bond.name)
        if master is None:
            return
        missing = []
        for slave in bond.slaves:
            dev = self.kernel.read_device(slave)
            if dev is not None and dev.get("master") != master["index"]:
                missing.append(slave)
        if missing:
            log.info("ifcfg: %s back in bond %s", ", ".join(missing), bond.name)
            self.applier.up(missing, set())

    def delete_bond(self, bond: Bond) -> None:
        self._remove_bond(bond)
        self._auto_flush()

    def _remove_bond(self, bond: Bond) -> None:
        self._remove(bond.name)
        for device, fields in self.files.owned().items():
            if fields.get("MASTER") == bond.name:
                self._remove(device)

    # -- MTU ---------------------------------------------------------------
    def set_mtu(self, device: str, mtu: int) -> None:
        current = self.files.fields(device)
        if current is None:
            self._stage(device, fields_of.nic_base(device), mtu, None, None)
        elif current.get("MTU") != str(mtu):
            self.files.stage(device, {**current, "MTU": str(mtu)})
        for slave, fields in self.files.owned().items():
            if fields.get("MASTER") == device and fields.get("MTU") != str(mtu):
                self.files.stage(slave, {**fields, "MTU": str(mtu)})
        self._auto_flush()

    # -- restore -----------------------------------------------------------
    def remove_unrecorded(self, running: Mapping) -> list[str]:
        """restore-nets: our files of devices ``running`` does not name
        go (with their devices). When ifcfg is no longer the configurator
        of legacy networks (the upgrade, flow 1), all of them go, and the
        production agent's files the upgrade took over with them."""
        self.recover()
        if self.config.net_configurator == self.name:
            keep = devices_named(running)
            dropped = [d for d in self.files.devices() if d not in keep]
        else:
            vdsm = taken_over(self.config)  # the production agent's, once upgraded
            self.files.take_vdsm = bool(vdsm)
            found = self.files.devices((fmt.Origin.NETRELOAD, fmt.Origin.VDSM))
            dropped = [d for d in found if self.files.fields(d) is not None or d in vdsm]
        for device in dropped:
            self.files.stage(device, None)
        if dropped:
            self.flush()
            self.files.commit()
        return dropped

    # -- the kernel devices: through iproute2 ------------------------------
    def owned_devices(self) -> frozenset[str]:
        kernel = self.kernel.owned_devices() if self.kernel is not None else frozenset()
        return kernel | frozenset(self.files.devices())

    def adopt(self, named: Mapping[str, str]) -> list[str]:
        return self.kernel.adopt(named) if self.kernel is not None else []

    def addresses_of(self, devices: Iterable[str]) -> dict[str, list[str]]:
        return self.kernel.addresses_of(devices) if self.kernel is not None else {}

    def restore_addresses(self, addresses: Mapping[str, list[str]]) -> None:
        if self.kernel is not None:
            self.kernel.restore_addresses(addresses)


def _mtu(fields: Mapping[str, str]) -> int | None:
    value = fields.get("MTU", "")
    return int(value) if value.isdigit() else None


def _lower_names(fields: Mapping[str, str]) -> set[str]:
    return {fields[k] for k in ("BRIDGE", "MASTER", "PHYSDEV") if k in fields}


def devices_named(running: Mapping) -> set[str]:
    """Every device a running configuration gives a file: bridges, VLANs
    and bonds, their NICs and slaves."""
    names = set(named_devices(running))
    for attrs in running.get("networks", {}).values():
        if attrs.get("switch", "legacy") == "legacy":
            names.update(n for n in (attrs.get("nic"), attrs.get("bonding")) if n)
    for attrs in running.get("bonds", {}).values():
        if attrs.get("switch", "legacy") == "legacy":
            names.update(attrs.get("nics", ()))
    if not all(fmt.valid_device_name(n) for n in names):
        raise NetError(ErrorCode.BAD_NIC, "running configuration: a device name is not valid")
    return names
