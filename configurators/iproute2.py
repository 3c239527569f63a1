"""The iproute2 configurator: the kernel through netlink (pyroute2), never
by running ``ip``.

Every call reads the kernel first and writes only what differs, so applying
a state the kernel already holds sends no request and causes no netlink
event; deleting what is gone does nothing. Rollback relies on it: superd
feeds the pre-change running configuration back through the same calls.

It works on the network namespace of the process (superd runs in the
host's; tests run it under ``ip netns exec``). Kernel refusals become
``NetError(FAILED_IFUP, "<device>: <what failed>: <kernel message>")``
(29); a NIC, port, slave or lower device that does not exist is
``BAD_NIC`` (23).

A network is built device by device (:mod:`configurators.device_stack`).

Ownership (``shared.netmodel.ownership``): every bridge, VLAN device and
bond created here gets netreload's mark (``IFLA_IFALIAS`` "netreload") in
the request right after its creation. An existing one without the mark is
never adopted (28, 24, 31) nor deleted (left as it is, with a warning).

Split: this module handles NICs, bridges, VLANs and MTUs;
``iproute2_ip`` addresses, sysctls, DHCP and nameservers,
``iproute2_routes`` gateways (routes and rules), ``iproute2_bond`` bonds,
``iproute2_netlink`` the pyroute2 edge (reads as plain dicts, error
mapping).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from configurators.device_stack import DeviceStackConfigurator
from configurators.iproute2_bond import BondApplier
from configurators.iproute2_ip import IpApplier
from configurators.iproute2_netlink import Kernel
from configurators.iproute2_team import TeamApplier
from configurators.tc_hfsc import HfscApplier, is_ours, root_qdiscs
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.device import DEFAULT_MTU
from shared.netmodel.host_qos import shaping
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.names import is_device_conf_name
from shared.netmodel.nic import Nic
from shared.netmodel.ownership import OWNER_ALIAS, owned_links
from shared.netmodel.team_runner import teamd_config
from shared.netmodel.validation import compute_lower_mtus
from shared.netmodel.vlan import Vlan

log = logging.getLogger("netreload.iproute2")

# The kernel keeps a bridge's forward delay in clock ticks of USER_HZ (1/100 s)
# on netlink; pyroute2 passes the number through unchanged.
CENTISECONDS = 100
# With STP on, the kernel clamps the forward delay to 2..30 s (and refuses
# a value outside while STP is already on).
STP_FORWARD_DELAY_MIN = 2 * CENTISECONDS
STP_FORWARD_DELAY_MAX = 30 * CENTISECONDS


def forward_delay_ticks(bridge: Bridge) -> int:
    """The forward delay to send and to expect back, in 1/100 s."""
    ticks = bridge.forward_delay * CENTISECONDS
    if bridge.stp:
        ticks = min(max(ticks, STP_FORWARD_DELAY_MIN), STP_FORWARD_DELAY_MAX)
    return ticks


class Iproute2Configurator(DeviceStackConfigurator):
    name = "iproute2"
    switch = "legacy"
    #: seconds a blocking DHCP client waits for its lease
    dhcp_timeout: float = 60.0

    def __init__(self, config: Config, ipr: Any = None, dhcp: Any = None) -> None:
        self.config = config
        self._own_ipr = ipr is None
        self.ipr = IPRoute() if ipr is None else ipr
        # Our own IPRoute is in this process' namespace: so is a raw socket.
        self._raw = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) if ipr is None else None
        self._dhcp = dhcp
        self.kernel = Kernel(self.ipr, self._raw)
        self.ip_applier = IpApplier(self.kernel, config, self._dhcp_clients, self.dhcp_timeout)
        self.bond_applier: BondApplier | TeamApplier = (
            TeamApplier(self.kernel, config.run_dir, self.ip_applier.flush)
            if config.bonding_driver == "team"
            else BondApplier(self.kernel, self.ip_applier.flush)
        )
        # bridge → {br_… keyword: the value it had before bridge_opts set it}:
        # a rollback re-adding a network whose bridge a failed change left
        # behind puts back what that change's options replaced
        self._replaced_opts: dict[str, dict[str, Any]] = {}
        # whether trees of netreload's may exist: until a sync found none
        # asked; None: not looked yet in this process (the first transaction
        # looks when it begins, before its change adds devices to the dump)
        self._shaped: bool | None = None

    def _dhcp_clients(self) -> Any:
        if self._dhcp is None:
            from configurators.dhcp import DhcpClients  # written apart; loaded on first use

            self._dhcp = DhcpClients(self.config)
        return self._dhcp

    def begin(self) -> None:
        self.kernel.cache_addresses(True)
        if self._shaped is None:
            self._shaped = self._trees_found()

    def _trees_found(self) -> bool | None:
        """Whether a tree of netreload's is on any device (a previous
        process's): one dump of the root qdiscs, taken before the change,
        while the host has its devices of before (at 1,000 new bridges the
        same look after the change reads their thousand qdiscs: ~7 ms).
        None when the dump fails (the sync looks then, as it would have)."""
        try:
            roots = root_qdiscs(self.ipr, self.kernel.raw)
        except (NetError, NetlinkError, OSError) as error:  # a look, not the change's step
            log.warning("hostQos: looking for trees of netreload's failed: %s", error)
            return None
        return any(is_ours(root) for root in roots.values())

    def commit(self) -> None:
        self.kernel.cache_addresses(False)

    def rollback(self) -> None:
        # Rollback re-applies with fresh reads: the failure may have left
        # the kernel in a state our cache does not describe.
        self.kernel.cache_addresses(False)

    def close(self) -> None:
        self.kernel.close()
        if self._own_ipr:
            self.ipr.close()
        if self._raw is not None:
            self._raw.close()

    def read_device(self, name: str) -> dict | None:
        """``Kernel.device``: name, index, kind, mtu, up, master, link,
        address and the kind's attributes, or None."""
        return self.kernel.device(name)

    # -- NICs ------------------------------------------------------------
    def setup_nic(self, nic: Nic) -> None:
        dev = self.kernel.require(nic.name, ErrorCode.BAD_NIC, "NIC")
        self.kernel.ensure_mtu(dev, nic.mtu)
        self.kernel.ensure_up(dev)

    def release_nic(self, nic: Nic) -> None:
        dev = self.kernel.device(nic.name)
        if dev is None:
            return
        self.ip_applier.flush(dev)
        self.kernel.ensure_up(dev)

    # -- bonds -----------------------------------------------------------
    def create_bond(self, bond: Bond) -> None:
        self.bond_applier.ensure(bond, None)

    def modify_bond(self, bond: Bond, old: Bond | None) -> None:
        self.bond_applier.ensure(bond, old)

    def delete_bond(self, bond: Bond) -> None:
        self.bond_applier.delete(bond)

    def repair_bonds(self, running: Mapping) -> list[str]:
        """Teams of ``running`` whose teamd is gone (killed, crashed: its
        device may remain, without anyone driving it) are started again;
        the devices on them go with the old device and are rebuilt by the
        caller's plan."""
        if not isinstance(self.bond_applier, TeamApplier):
            return []
        bonds = {n: a for n, a in (running.get("bonds") or {}).items()
                 if a.get("switch", "legacy") == "legacy"}  # fmt: skip
        mtus = compute_lower_mtus(running.get("networks") or {}, bonds)
        repaired = []
        for name, attrs in sorted(bonds.items()):
            if self.bond_applier.teamd_pid(name) is None:
                bond = Bond.from_attrs(name, dict(attrs), mtus.get(name, DEFAULT_MTU))
                self.bond_applier.ensure(bond, None)
                repaired.append(name)
        return repaired

    def check_bonds(self, bonds: Mapping[str, Mapping]) -> None:
        if self.config.bonding_driver == "team":
            for name, attrs in sorted(bonds.items()):
                teamd_config(name, attrs.get("options", ""), tuple(attrs.get("nics", ())))

    # -- VLANs -----------------------------------------------------------
    def create_vlan(self, vlan: Vlan) -> None:
        if vlan.device is None:
            raise NetError(ErrorCode.BAD_VLAN, f"vlan {vlan.name}: needs a nic or bond")
        lower = self.kernel.require(vlan.device.name, ErrorCode.BAD_NIC, "VLAN lower device")
        dev = self.kernel.device(vlan.name)
        if dev is not None and dev["kind"] != "vlan":
            raise _not_a(dev, "VLAN")
        if dev is not None and not self.kernel.owned(dev):
            raise NetError(
                ErrorCode.USED_NIC,
                f"{vlan.name}: a VLAN device netreload did not create exists: not taken over",
            )
        if dev is not None and (
            dev["link"] != lower["index"] or dev["info"].get("vlan_id") != vlan.tag
        ):
            self.kernel.delete_link(dev)  # tag and lower device are fixed at creation
            dev = None
        # a VLAN cannot be up on a down lower device (ENETDOWN)
        self.kernel.ensure_up(lower)
        if dev is None:
            self.kernel.request(
                vlan.name,
                f"create VLAN {vlan.tag} on {lower['name']}",
                "link",
                "add",
                ifname=vlan.name,
                kind="vlan",
                link=lower["index"],
                vlan_id=vlan.tag,
                mtu=vlan.mtu,
            )
            dev = self.kernel.require(vlan.name)
            self.kernel.mark(dev)
            # Off before it is up, as the production agent has a bridge
            # port's (and a VLAN network's without IPv6: set_ip turns it on
            # for one asking for IPv6): every VLAN device of a big host
            # otherwise holds IPv6 routes the kernel walks on each change.
            self.ip_applier.set_ipv6(dev, False)
        self.kernel.ensure_mtu(dev, vlan.mtu)
        self.kernel.ensure_up(dev)

    def delete_vlan(self, vlan: Vlan) -> None:
        self._delete(vlan.name, "vlan", "VLAN")

    # -- bridges ---------------------------------------------------------
    def create_bridge(self, bridge: Bridge) -> None:
        port = None
        if bridge.port is not None:
            port = self.kernel.require(bridge.port.name, ErrorCode.BAD_NIC, "bridge port")
        stp, delay = int(bridge.stp), forward_delay_ticks(bridge)
        options = dict(bridge.options)  # custom.bridge_opts, validated
        delay = options.pop("br_forward_delay", delay)
        dev = self.kernel.device(bridge.name)
        if dev is None:
            echoed = self.kernel.request(
                bridge.name,
                "create bridge",
                "link",
                "add",
                ifname=bridge.name,
                kind="bridge",
                br_stp_state=stp,
                br_forward_delay=delay,
                mtu=bridge.mtu,
                # Created down, set up at the end: marking a device that is
                # up makes the kernel walk the whole IPv6 routing table
                # (NETDEV_CHANGE), ~2.6 ms of CPU beside 5,000 bridges.
                echo=True,  # the new bridge comes back: no request to read it
            )
            dev = self.kernel.created(echoed, bridge.name) or self.kernel.require(bridge.name)
            self.kernel.mark(dev)
            self.ip_applier.created(bridge.name)
        elif dev["kind"] != "bridge":
            raise _not_a(dev, "bridge")
        elif not self.kernel.owned(dev):
            raise NetError(
                ErrorCode.USED_BRIDGE,
                f"Network already exists ({bridge.name}): a bridge netreload did not create;"
                " not taken over",
            )
        else:
            self._bridge_options(dev, stp, delay)
        self._custom_options(dev, options)
        if bridge.ip is None or not bridge.ip.ipv6.enabled:
            # before the bridge is up: it never gets a link-local address
            self.ip_applier.set_ipv6(dev, False)
        elif not bridge.ip.ipv6.autoconf:
            self.ip_applier.set_autoconf(bridge.name, False)
        if port is not None and bridge.port is not None:
            self.kernel.ensure_mtu(port, bridge.port.mtu)
            if isinstance(bridge.port, Nic):
                # a bridge port has no IP of its own: the network's is on
                # the bridge (a bond's are kept, the legacy rule)
                self.ip_applier.flush(port)
            elif isinstance(bridge.port, Vlan):  # was a bridgeless network's
                self.ip_applier.set_ipv6(port, False)
            if port["master"] != dev["index"]:
                self.kernel.set_link(port, f"add to bridge {bridge.name}", master=dev["index"])
            self.kernel.ensure_up(port)
            # a bridge whose MTU was never set follows its smallest port
            dev = self.kernel.require(bridge.name)
        self.kernel.ensure_mtu(dev, bridge.mtu)
        self.kernel.ensure_up(dev)

    def _bridge_options(self, dev: dict, stp: int, delay: int) -> None:
        data = dev["info"]
        stp_on = bool(data.get("br_stp_state"))
        if stp_on and not stp:
            # STP off first: while it is on, a delay under 2 s is refused
            self.kernel.set_link(dev, "disable STP", kind="bridge", br_stp_state=0)
            stp_on = False
        changes: dict[str, int] = {}
        if data.get("br_forward_delay") != delay:
            changes["br_forward_delay"] = delay
        if stp and not stp_on:
            changes["br_stp_state"] = 1  # the kernel applies the delay first
        if changes:
            what = "set " + " ".join(f"{k.removeprefix('br_')} {v}" for k, v in changes.items())
            self.kernel.set_link(dev, what, kind="bridge", **changes)

    def _custom_options(self, dev: dict, options: dict[str, Any]) -> None:
        """The network's ``bridge_opts`` that the bridge does not hold yet,
        in one request, with the values of options an earlier network's
        ``bridge_opts`` set on this very bridge (in this process) and this
        one does not: put back as they were. A value the kernel still
        refuses (a feature it lacks: VLAN filtering, say) is the request's
        fault, as for the production agent: code 21, and the transaction
        rolls back."""
        replaced = self._replaced_opts.get(dev["name"])
        if not options and not replaced:
            return  # the common case: a bridge without options
        data, replaced = dev["info"], self._replaced_opts.setdefault(dev["name"], {})
        changes = {key: value for key, value in options.items() if data.get(key) != value}
        for key in set(replaced) - set(options):  # set by an earlier network's options
            if data.get(key) != replaced[key]:
                changes[key] = replaced[key]
            del replaced[key]
        if not changes:
            return
        for key in options:
            if key in changes and key in data:
                replaced.setdefault(key, data[key])
        what = "set " + " ".join(f"{k.removeprefix('br_')} {v}" for k, v in changes.items())
        try:
            self.kernel.set_link(dev, what, kind="bridge", **changes)
        except NetError as error:
            raise NetError(ErrorCode.BAD_PARAMS, f"bridge_opts: {error.message}") from None

    def delete_bridge(self, bridge: Bridge) -> None:
        self._delete(bridge.name, "bridge", "bridge")
        self._replaced_opts.pop(bridge.name, None)

    # -- MTU and IP ------------------------------------------------------
    def set_mtu(self, device: str, mtu: int) -> None:
        dev = self.kernel.require(device, ErrorCode.BAD_NIC)
        self.kernel.ensure_mtu(dev, mtu)

    def set_ip(self, device: str, ip: IpConfig, previous: IpConfig | None = None) -> None:
        self.ip_applier.set_ip(device, ip, previous)

    def clear_ip(self, device: str, ip: IpConfig, stays: bool = False) -> None:
        self.ip_applier.clear_ip(device, ip, stays)

    def give_back_ipv6(self, device: str, autoconf: bool = False) -> None:
        """A device another configurator released or left as its program
        sets it (its IPv6 possibly off, as its network asked): the
        namespace's default setting back, and with ``autoconf`` its default
        router advertisement and SLAAC settings. ``device`` may come from
        another program (a NetworkManager profile's name): anything that
        is not a device's ``conf`` directory is left alone."""
        if not is_device_conf_name(device):
            return
        dev = self.kernel.device(device)
        if dev is not None:
            self.ip_applier.give_back_ipv6(dev, fresh=True, autoconf=autoconf)

    def addresses_of(self, devices: Iterable[str]) -> dict[str, list[str]]:
        self.kernel.cache_addresses(True)  # one dump for all (before begin)
        try:
            return {name: self.ip_applier.addresses_of(name) for name in devices}
        finally:
            self.kernel.cache_addresses(False)

    def restore_addresses(self, addresses: Mapping[str, list[str]]) -> None:
        for name, cidrs in addresses.items():
            self.ip_applier.restore_addresses(name, cidrs)

    # -- helpers ---------------------------------------------------------
    def _delete(self, name: str, kind: str, label: str) -> None:
        dev = self.kernel.device(name)
        if dev is None:
            return
        if dev["kind"] != kind:
            raise _not_a(dev, label)
        if not self.kernel.owned(dev):
            log.warning("%s: a %s netreload did not create: left as it is", name, label)
            return
        self.kernel.delete_link(dev)

    # -- host QoS --------------------------------------------------------
    def sync_host_qos(
        self, networks: Mapping[str, Mapping], shapes: bool | None = None
    ) -> list[str]:
        if shapes is None:
            shapes = any(shaping(attrs) for attrs in networks.values())
        if not shapes and self._shaped is False:
            return []  # nothing asked, nothing of ours seen: no tc dump
        changed = HfscApplier(self.ipr, self.kernel.raw).sync(networks, self.kernel.link_indexes())
        self._shaped = any(shaping(attrs) for attrs in networks.values())
        return changed

    # -- ownership -------------------------------------------------------
    def owned_devices(self) -> frozenset[str]:
        return owned_links(self.kernel.links())

    def adopt(self, named: Mapping[str, str]) -> list[str]:
        """Mark the devices of ``named`` ({name: kind}: what netreload's own
        running configuration names) that exist with that kind, unmarked:
        devices of an older version, or created just before a crash."""
        adopted = []
        for name, kind in sorted(named.items()):
            if kind == "bond" and self.config.bonding_driver == "team":
                kind = "team"  # teamd made it; a crash may come before the mark
            dev = self.kernel.device(name)
            if dev is not None and dev["kind"] == kind and not self.kernel.owned(dev):
                self.kernel.set_link(dev, "mark as netreload's", ifalias=OWNER_ALIAS)
                adopted.append(name)
        return adopted


def _not_a(dev: dict, label: str) -> NetError:
    return NetError(
        ErrorCode.FAILED_IFUP,
        f"{dev['name']}: exists and is not a {label} (kind {dev['kind'] or 'nic'})",
    )
