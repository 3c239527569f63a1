"""The Open vSwitch configurator: networks with ``switch: ovs`` in OVSDB.

Works on whole networks and bonds rather than on devices (see
:mod:`configurators.ovs_layout` for the mapping): ``add_network`` /
``remove_network``, ``create_bond`` / ``modify_bond`` / ``delete_bond`` and
``set_mtu`` edit an in-memory copy of OVSDB's state; :meth:`flush` sends the
difference as **one** OVSDB transaction, waits for ovs-vswitchd to apply it
(``cur_cfg``), then configures IP on the new internal ports through the
iproute2 configurator (``set_ip``/``clear_ip``). superd's applier flushes
before another configurator's operation and after the last one, so
operations keep their plan order across configurators.

Idempotent like every configurator: the edits are a difference of states,
so asking for what OVSDB already holds writes nothing, and removing what is
gone does nothing — the objectified rollback relies on it. :meth:`rollback`
drops edits not yet sent. OVSDB unreachable → ``OVS_CONNECTION`` (32).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from configurators import ovs_layout as layout
from configurators.base import Configurator
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netmodel import ovs_bond_options
from shared.netmodel.bond import Bond
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.network import Network

log = logging.getLogger("netreload.ovs")


def open_db(config: Config) -> Any:
    from configurators.ovs_db import OvsDb  # the ovs package is an extra

    return OvsDb(config.ovs_db, config.ovs_timeout)


class OvsConfigurator(Configurator):
    name = "ovs"
    switch = "ovs"
    persistent = True  # OVSDB keeps its bridges across reboots
    supports = frozenset({"nic", "bond", "vlan", "ip"})  # a VLAN is a port tag

    def __init__(self, config: Config, iproute2: Any,
                 db_factory: Callable[[Config], Any] = open_db) -> None:  # fmt: skip
        self.config = config
        self.iproute2 = iproute2  # IP configuration of internal ports, NICs up
        self._db_factory = db_factory
        self._db: Any = None
        self._base: layout.OvsState | None = None  # OVSDB when the edits began
        self._want: layout.OvsState | None = None  # OVSDB once they are sent
        self._ip: dict[str, tuple[IpConfig | None, bool]] = {}  # port → (ip, blocking)
        self._up: set[str] = set()  # NICs to bring up after the flush

    # -- OVSDB session -----------------------------------------------------
    @property
    def db(self) -> Any:
        if self._db is None:
            try:
                self._db = self._db_factory(self.config)
            except NetError:
                raise
            except (OSError, ImportError, ValueError) as error:
                raise NetError(ErrorCode.OVS_CONNECTION,
                               f"OVSDB {self.config.ovs_db}: {error}") from None  # fmt: skip
        return self._db

    def state(self) -> layout.OvsState:
        """What OVSDB holds now, plus the edits not yet sent."""
        if self._want is None:
            self._base = self.db.state()
            self._want = layout.copy_state(self._base)
        return self._want

    @property
    def pending(self) -> bool:
        return self._want is not None

    # -- transaction -------------------------------------------------------
    def begin(self) -> None:
        self._drop()

    def commit(self) -> None:
        self.flush()

    def rollback(self) -> None:
        self._drop()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _drop(self) -> None:
        self._base = self._want = None
        self._ip, self._up = {}, set()

    def flush(self) -> None:
        """Send the pending edits as one transaction, wait for ovs-vswitchd,
        then bring NICs and internal ports up and configure their IP."""
        if self._want is None:
            return
        base, want, ips, up = self._base, self._want, self._ip, self._up
        self._drop()
        edits = layout.diff(base, want)
        if edits:
            log.info("OVSDB: %d edit(s) in one transaction", len(edits))
            self.db.apply(edits)
            touched = [e[1] for e in edits if e[0] == "set_iface"]
            touched += [i for e in edits if e[0] == "add_port" for i in e[4]]
            errors = self.db.errors(touched)
            if errors:
                shown = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
                raise NetError(ErrorCode.FAILED_IFUP, f"ovs-vswitchd: {shown}")
            kernel = self.iproute2.kernel
            kernel.cache_addresses(kernel.caching)  # devices came and went: drop the caches
        kernel = self.iproute2.kernel
        for nic in sorted(up):
            kernel.ensure_up(kernel.require(nic, ErrorCode.BAD_NIC, "NIC"))
        for port, (ip, blocking) in ips.items():
            dev = kernel.require(port, ErrorCode.FAILED_IFUP, "OVS internal port")
            kernel.ensure_up(dev)
            if ip is None:
                self.iproute2.ip_applier.set_autoconf(port, False)
            else:
                if blocking != ip.blocking_dhcp:
                    ip = replace(ip, blocking_dhcp=blocking)
                self.iproute2.set_ip(port, ip)

    # -- networks ----------------------------------------------------------
    def add_network(self, network: Network, lower_mtu: int | None, blocking_dhcp: bool) -> None:
        net = layout.OvsNetwork.from_attrs(network.name, network.attrs, lower_mtu)
        try:
            layout.add_network(self.state(), net, self.config.ovs_datapath)
        except KeyError as error:
            raise NetError(ErrorCode.BAD_BONDING, f"network {network.name}: {error}") from None
        if net.southbound and not net.southbound_is_bond:
            self._up.add(net.southbound)
        self._ip[net.name] = (network.top.ip, blocking_dhcp)

    def remove_network(self, network: Network, keep_bond: bool = True) -> None:
        net = layout.OvsNetwork.from_attrs(network.name, network.attrs, None)
        if net.name in self._ip:
            del self._ip[net.name]
        elif network.top.ip is not None and self.iproute2.kernel.device(net.name) is not None:
            self.iproute2.clear_ip(net.name, network.top.ip)
        layout.remove_network(self.state(), net)

    # -- bonds -------------------------------------------------------------
    def _bond(self, bond: Bond) -> layout.OvsBond:
        options = ovs_bond_options.parse(bond.options, bond.name)
        return layout.OvsBond(bond.name, tuple(sorted(bond.slaves)), options["bond_mode"],
                              options["lacp"], bond.mtu)  # fmt: skip

    def create_bond(self, bond: Bond) -> None:
        layout.add_bond(self.state(), self._bond(bond), self.config.ovs_datapath)
        self._up.update(bond.slaves)

    def modify_bond(self, bond: Bond, old: Bond | None) -> None:
        self.create_bond(bond)

    def delete_bond(self, bond: Bond) -> None:
        layout.remove_bond(self.state(), bond.name)

    def set_mtu(self, device: str, mtu: int) -> None:
        if not layout.set_mtu(self.state(), device, mtu):
            # not a port yet: a NIC whose first OVS network comes later in
            # the plan (its port is created with this MTU as mtu_request)
            self.iproute2.set_mtu(device, mtu)

    # -- restore -------------------------------------------------------------
    def remove_unrecorded(self, running: Mapping) -> list[str]:
        """Drop the bridges netreload created that no running network or bond
        uses: OVSDB keeps them across reboots on its own. The names dropped."""
        if not _has_ovs(running) and not self._reachable():
            return []
        state = self.state()
        wanted = set()
        for name, attrs in running.get("networks", {}).items():
            if attrs.get("switch") == "ovs":
                wanted.add(layout.OvsNetwork.from_attrs(name, attrs, None).bridge)
        for name, attrs in running.get("bonds", {}).items():
            if attrs.get("switch") == "ovs":
                wanted.add(layout.bridge_name(name, name))
        stale = sorted(set(layout.owned_bridges(state)) - wanted)
        for bridge in stale:
            layout.remove_bridge(state, bridge)
        self.flush()
        return stale

    def _reachable(self) -> bool:
        try:
            self.db  # noqa: B018 - connects
        except NetError as error:
            log.info("no OVSDB to clean up: %s", error)
            return False
        return True


def _has_ovs(running: Mapping) -> bool:
    return any(
        attrs.get("switch") == "ovs"
        for section in ("networks", "bonds")
        for attrs in running.get(section, {}).values()
    )
