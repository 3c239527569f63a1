"""The NetworkManager configurator (``net_configurator = nm``), over D-Bus.

Same shape as the OVS configurator: ``add_network`` / ``remove_network`` /
``create_bond`` / ``modify_bond`` / ``delete_bond`` / ``set_mtu`` only
compute the profiles wanted (:mod:`configurators.nm_profiles`, bonds and
VLANs :mod:`configurators.nm_profiles_bond`; pure: what NetworkManager
cannot express is refused there, before anything is sent; a bond's options
already by :meth:`NmConfigurator.check_bonds`, before the transaction);
:meth:`NmConfigurator.flush` sends the difference to
NetworkManager (:mod:`configurators.nm_dbus`) in one go (steps 3 and 4, and
5's marks: :mod:`configurators.nm_send`):

1. inside a transaction, a checkpoint over the existing devices it is about
   to touch (DELETE_NEW_CONNECTIONS; its path kept in
   ``<run_dir>/nm.checkpoint`` for crash recovery);
2. the NICs it uses set ``Managed``;
3. profiles no longer wanted deactivated (awaited) and deleted; a device
   that stays (a bridgeless network's NIC) gets IPv6 back, which
   NetworkManager leaves disabled;
4. profiles wanted and not held as wanted added or updated **in memory**
   with autoconnect blocked (``AddConnection2`` / ``Update2``), then
   activated, the activations awaited together (LAYER2_READY is enough for
   non-blocking DHCP); a failed activation is code 29;
5. the bridges, bonds and VLANs NetworkManager created get netreload's
   kernel mark; MTUs of devices whose profile is not in the change (set
   before activation: a NIC under a VLAN), a NIC a bond let go (up, no
   address), and resolv.conf, through the kernel as the iproute2
   configurator does them (its held profile follows: ``nm_mtu``); the
   rules of a DHCP lease's table (``nm_lease_rules``).

Unchanged profiles are neither updated nor reactivated: re-applying what
NetworkManager holds sends nothing (the objectified rollback relies on it).
:meth:`commit` destroys the checkpoint; :meth:`rollback` rolls it back and
waits until no device is activating, before superd's objectified rollback
re-applies the previous running configuration (which then finds it held).
A change with a connectivity check keeps its checkpoint across the wait
(:meth:`commit_pending`): :meth:`confirm` destroys it, lost connectivity
rolls it back (:meth:`undo_pending`) before the objectified rollback, and a
crash during the wait leaves it to recovery.
A checkpoint left by a crash is rolled back by :meth:`remove_unrecorded`,
which superd's recovery and restore-nets run first; it also deletes
netreload's profiles (marked, :data:`configurators.nm_dbus.MARK_KEY`) that
the running configuration does not name, and nothing else.

The kernel side (netinfo, netreload's device mark, a NIC's addresses kept
across a rollback) stays the iproute2 configurator's kernel access.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from configurators.base import Configurator
from configurators.nm_checkpoint import Checkpoints, roll_back
from configurators.nm_dbus import MARK_KEY, NmClient
from configurators.nm_lease_rules import route_table, sync_sent
from configurators.nm_mtu import stale_profiles
from configurators.nm_profiles import WantedProfile, network_profiles, profile_uuid
from configurators.nm_profiles_bond import bond_profiles, keep_role
from configurators.nm_profiles_bond import check_bonds as nm_check_bonds
from configurators.nm_send import ANY, add_and_activate, deactivate_and_delete
from shared.config import Config
from shared.errors import NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.network import Network, build_network

log = logging.getLogger("netreload.nm")


def open_client(config: Config) -> NmClient:
    return NmClient(config.nm_bus, config.nm_timeout)


class NmConfigurator(Configurator):
    name = "nm"
    switch = "legacy"
    #: NetworkManager keeps netreload's profiles while superd restarts
    #: (not across reboots: they are in memory): remove_unrecorded has work
    persistent = True
    supports = frozenset({"nic", "bond", "bridge", "vlan", "ip"})

    def __init__(
        self,
        config: Config,
        kernel_side: Any,
        client_factory: Callable[[Config], NmClient] = open_client,
    ) -> None:
        self.config = config
        self.kernel_side = kernel_side  # an Iproute2Configurator: the kernel itself
        self._factory = client_factory
        self._client: NmClient | None = None
        self._in_transaction = False
        self.checkpoints = Checkpoints(Path(config.run_dir) / "nm.checkpoint")
        self._drop_pending()

    def _drop_pending(self) -> None:
        self._want: dict[str, WantedProfile] = {}
        # device → the master its profile must have to be the one removed
        # (ANY: whatever it is; None: none). A NIC's profile is another
        # network's once that network took the NIC: removing a network
        # whose bridge is gone must not take it away from it.
        self._drop: dict[str, str | None] = {}
        self._kernel_mtu: dict[str, int] = {}
        self._nameservers: tuple[str, ...] | None = None
        # NICs a bond let go: up, without addresses, once their profile is gone
        self._released: set[str] = set()
        # ipv4.route-table of the profiles held when sending (a DHCP
        # network's own table: configurators.nm_lease_rules)
        self._held_tables: dict[str, int] = {}

    @property
    def client(self) -> NmClient:
        if self._client is None:
            self._client = self._factory(self.config)
        return self._client

    @property
    def kernel(self) -> Any:
        return self.kernel_side.kernel

    # -- transaction ---------------------------------------------------------
    def begin(self) -> None:
        self._drop_pending()
        self._in_transaction = True
        self.kernel_side.begin()

    def commit(self) -> None:
        self.commit_pending()
        self.confirm()

    def commit_pending(self) -> None:
        """Sent and verified; the checkpoints kept (and their file, for
        crash recovery) across the connectivity wait."""
        self.flush()
        self._in_transaction = False
        self.kernel_side.commit()

    def confirm(self) -> None:
        if self.checkpoints.paths:
            self.checkpoints.destroy(self.client)
        else:
            self.checkpoints.forget()

    def undo_pending(self) -> None:
        """Lost connectivity: the checkpoints rolled back (newest first),
        awaited until no device is activating."""
        try:
            self._roll_back(self.checkpoints.paths, self.checkpoints.covered)
        finally:
            self.checkpoints.forget()

    def rollback(self) -> None:
        """Roll NetworkManager back to the checkpoints (newest first) and
        wait until no device is activating; superd re-applies the previous
        running configuration afterwards."""
        self._drop_pending()
        self._in_transaction = False
        try:
            self._roll_back(self.checkpoints.paths, self.checkpoints.covered)
        finally:
            self.checkpoints.forget()
            self.kernel_side.rollback()

    def _roll_back(self, paths: list[str], names: Iterable[str] | None = None) -> None:
        """Roll the checkpoints back and mark the bridges brought back
        (``names``: the devices covered; None: those of every profile of
        netreload's, after a crash)."""
        if not paths:
            return  # nothing was sent: NetworkManager need not even be reachable
        client = self.client
        devices = roll_back(client, paths)
        self._mark_restored(client, client.owned_profiles() if names is None else names)
        self._ipv6_after_rollback(client, devices)

    def _ipv6_after_rollback(self, client: NmClient, devices: Iterable[str]) -> None:
        """A device the rollback left without an active profile (a NIC whose
        new network's profile went) gets IPv6 back: NetworkManager leaves
        the ``disable_ipv6`` of a deactivated ``ipv6.method disabled`` as is."""
        idle = []
        for path in sorted(devices):
            try:
                state = client.device_state(path)
            except NetError as error:  # gone meanwhile
                log.warning("NetworkManager device %s after the rollback: %s", path, error)
                continue
            if state.get("ActiveConnection", "/") in ("/", None):
                idle.append(str(state.get("Interface", "")))
        self._give_ipv6_back(idle)

    def _give_ipv6_back(self, names: Iterable[str]) -> None:
        """IPv6 back (the namespace's default) on the devices among
        ``names`` that outlive their deleted profile (a bridgeless network's
        NIC): NetworkManager leaves a disabled IPv6 disabled when it
        deactivates a profile. Devices gone (a bridge) are skipped."""
        for name in names:
            self.kernel_side.give_back_ipv6(name)

    def _mark_restored(self, client: NmClient, names: Iterable[str]) -> None:
        """A bridge a rollback brought back (one the change had removed) is
        a new kernel device without netreload's mark: given it when its
        profile is netreload's, as when netreload had it created."""
        self.kernel.cache_addresses(self.kernel.caching)  # devices came and went
        for name in sorted(names):
            dev = self.kernel.device(name)
            if dev is None or dev.get("kind") != "bridge" or self.kernel.owned(dev):
                continue
            path = client.by_uuid(profile_uuid(name))
            settings = client.settings(path) if path is not None else None
            if settings is not None and settings.get("user", {}).get("data", {}).get(MARK_KEY):
                self.kernel.mark(dev)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.kernel_side.close()

    # -- networks --------------------------------------------------------------
    def add_network(self, network: Network, lower_mtu: int | None, blocking_dhcp: bool) -> None:
        top = network.top
        if top.ip is not None and top.ip.blocking_dhcp != blocking_dhcp:
            network = replace(
                network, top=replace(top, ip=replace(top.ip, blocking_dhcp=blocking_dhcp))
            )
        for profile in network_profiles(network):  # refuses what it cannot build
            self._put(profile)
        ip = network.top.ip
        if ip is not None and ip.ipv4.default_route and ip.nameservers:
            self._nameservers = ip.nameservers

    def _put(self, profile: WantedProfile) -> None:
        if profile.inherit_role:  # a bond: the role a network gave it in this transaction
            profile = keep_role(profile, self._want.get(profile.device))
        self._want[profile.device] = profile
        self._drop.pop(profile.device, None)
        self._kernel_mtu.pop(profile.device, None)
        self._released.discard(profile.device)

    def remove_network(self, network: Network, keep_bond: bool = True) -> None:
        top = network.top
        port = top.port if isinstance(top, Bridge) else None
        for device in (top, port):
            if isinstance(device, Bond):
                if keep_bond and device.slaves:  # the bond stays, without the role
                    self._put(bond_profiles(device, role=True)[0])
            elif device is not None:
                self._want.pop(device.name, None)
                # a port: dropped only while the bridge still holds it
                self._drop[device.name] = ANY if device is top else top.name
        lower = next((d for d in network.devices if isinstance(d, Bond)), None)
        if lower is not None and not keep_bond:
            self.delete_bond(lower)

    def set_mtu(self, device: str, mtu: int) -> None:
        wanted = self._want.get(device)
        if wanted is not None:  # and its slaves', a bond's
            for name, profile in list(self._want.items()):
                connection = profile.settings["connection"]
                if name == device or (
                    connection.get("master") == device and connection.get("slave-type") == "bond"
                ):
                    ethernet = {**profile.settings.get("802-3-ethernet", {}), "mtu": mtu}
                    settings = {**profile.settings, "802-3-ethernet": ethernet}
                    self._want[name] = replace(profile, settings=settings)
        else:
            self._kernel_mtu[device] = mtu  # no profile of netreload's: the kernel's

    # -- bonds ------------------------------------------------------------------------
    def check_bonds(self, bonds: Mapping[str, Mapping]) -> None:
        nm_check_bonds(bonds)  # 25 for an option NetworkManager has no key for

    def create_bond(self, bond: Bond) -> None:
        self.modify_bond(bond, None)

    def modify_bond(self, bond: Bond, old: Bond | None) -> None:
        """The bond's profile (keeping its role) and its slaves'; a slave
        it no longer has loses its profile and is left up."""
        for profile in bond_profiles(bond):
            self._put(profile)
        for nic in sorted(set(old.slaves if old else ()) - set(bond.slaves)):
            self._release(nic, bond.name)

    def delete_bond(self, bond: Bond) -> None:
        self._want.pop(bond.name, None)
        self._drop[bond.name] = ANY
        for nic in bond.slaves:
            self._release(nic, bond.name)

    def _release(self, nic: str, bond: str) -> None:
        self._want.pop(nic, None)
        self._drop[nic] = bond  # only while it is that bond's
        self._released.add(nic)

    # -- sending ---------------------------------------------------------------------
    def flush(self) -> None:
        if not (self._want or self._drop or self._kernel_mtu or self._nameservers):
            return
        want, drop, mtus, nameservers = self._want, self._drop, self._kernel_mtu, self._nameservers
        released = self._released
        self._drop_pending()
        client = self.client
        held = {name: client.by_uuid(profile_uuid(name)) for name in [*drop, *want]}
        mtu_profiles = stale_profiles(client, self.kernel, mtus, held) if mtus else {}
        if self._in_transaction:
            self._checkpoint([*drop, *want, *mtu_profiles])
        deleted = deactivate_and_delete(client, drop, held, self._held_tables)
        self.kernel.cache_addresses(self.kernel.caching)  # devices went
        self._give_ipv6_back(n for n in deleted if n not in want)
        for nic in sorted(released):  # as the iproute2 configurator leaves it
            dev = self.kernel.device(nic)
            if dev is not None:
                self.kernel_side.ip_applier.flush(dev)
                self.kernel.ensure_up(dev)
        # before activation: a VLAN never gets above its NIC's MTU
        for device, mtu in mtus.items():
            self.kernel_side.set_mtu(device, mtu)
        for path, settings in mtu_profiles.values():  # in memory, not reactivated
            client.update_connection(path, settings)
        add_and_activate(client, self.kernel_side, want, held, self._held_tables)
        # a DHCP network's source-routing rules (nm_lease_rules)
        sync_sent(self.kernel, {n: route_table(p.settings) for n, p in want.items()},
                  self._held_tables, [n for n in drop if held.get(n) is None])  # fmt: skip
        if nameservers:
            self.kernel_side.ip_applier._write_resolv_conf(nameservers)

    def _checkpoint(self, names: Iterable[str]) -> None:
        covered = self.checkpoints.covered
        paths = {}
        for name in names:
            # a device the kernel does not have (a bridge to create) is not
            # asked about: one D-Bus round trip less per new network
            if name not in covered and self.kernel.device(name) is not None:
                path = self.client.device(name)
                if path is not None:
                    paths[name] = path
        if paths:
            self.checkpoints.create(self.client, paths)

    # -- restore ---------------------------------------------------------------------
    def remove_unrecorded(self, running: Mapping) -> list[str]:
        """Roll back a checkpoint a crash left, then delete netreload's
        profiles for devices no running network uses. The names dropped."""
        if self.config.net_configurator != self.name:
            return []  # another default: NetworkManager is not asked anything
        client = self.client
        left = self.checkpoints.left_by_a_crash(client)
        if left:
            log.warning("rolling back NetworkManager checkpoints left by a crash: %s", left)
            self._roll_back(left)
            self.checkpoints.forget()
        wanted = set()
        for name, attrs in running.get("networks", {}).items():
            if attrs.get("switch", "legacy") == "legacy":
                wanted.update(d.name for d in build_network(name, attrs).devices)
        for name, attrs in running.get("bonds", {}).items():
            if attrs.get("switch", "legacy") == "legacy":
                wanted.update([name, *attrs.get("nics", ())])
        stale = {n: ANY for n in sorted(client.owned_profiles()) if n not in wanted}
        if stale:
            held = {name: client.by_uuid(profile_uuid(name)) for name in stale}
            for name, profile in client.owned_profiles().items():
                if name in stale and held.get(name) is None:
                    held[name] = profile.path
            self._give_ipv6_back(deactivate_and_delete(client, stale, held, self._held_tables))
        return list(stale)

    # -- the kernel's devices: as the iproute2 configurator sees them ---------------------
    def owned_devices(self) -> frozenset[str]:
        return self.kernel_side.owned_devices()

    def adopt(self, named: Mapping[str, str]) -> list[str]:
        return self.kernel_side.adopt(named)

    def addresses_of(self, devices: Iterable[str]) -> dict[str, list[str]]:
        return self.kernel_side.addresses_of(devices)

    def restore_addresses(self, addresses: Mapping[str, list[str]]) -> None:
        self.kernel_side.restore_addresses(addresses)
