"""A configurator that builds a network device by device, as the kernel needs.

NIC or bond → VLAN → bridge on the way up, then the IP configuration on the
top device; top first on the way down. The iproute2 configurator is one; a
configurator that writes files per device (ifcfg) would be another: it only
has to know how to create and delete each primitive.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace

from configurators.base import Configurator
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.network import Network
from shared.netmodel.nic import Nic
from shared.netmodel.vlan import Vlan


class DeviceStackConfigurator(Configurator):
    # -- networks: the stack ---------------------------------------------
    def add_network(self, network: Network, lower_mtu: int | None, blocking_dhcp: bool) -> None:
        for device in network.devices:
            if isinstance(device, Nic):
                self.setup_nic(device)
            elif isinstance(device, Vlan):
                self.create_vlan(device)
            elif isinstance(device, Bridge):
                self.create_bridge(device)
            # A bond exists already: add_bond runs before add_network.
        ip = network.top.ip
        if ip is not None:
            if blocking_dhcp != ip.blocking_dhcp:
                ip = replace(ip, blocking_dhcp=blocking_dhcp)
            self.set_ip(network.top.name, ip)

    def remove_network(self, network: Network, keep_bond: bool = True) -> None:
        top = network.top
        if top.ip is not None:
            stays = isinstance(top, Nic) or (isinstance(top, Bond) and keep_bond)
            self.clear_ip(top.name, top.ip, stays)
        for device in reversed(network.devices):
            if isinstance(device, Bridge):
                self.delete_bridge(device)
            elif isinstance(device, Vlan):
                self.delete_vlan(device)
            elif isinstance(device, Bond) and not keep_bond:
                # A bond the running configuration does not define lives
                # only as long as its network (the production agent's
                # legacy behaviour breaks it) if it is netreload's; the
                # configurator leaves another agent's bond as it is.
                self.delete_bond(device)

    # -- NICs ------------------------------------------------------------
    @abstractmethod
    def setup_nic(self, nic: Nic) -> None:
        """Bring the NIC up with ``nic.mtu`` (never lowers it below users)."""

    @abstractmethod
    def release_nic(self, nic: Nic) -> None:
        """The NIC no longer carries a network: flush its addresses, keep it up."""

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

    # -- IP --------------------------------------------------------------
    @abstractmethod
    def set_ip(self, device: str, ip: IpConfig, previous: IpConfig | None = None) -> None:
        """Apply the IP configuration of a network's top device: addresses,
        gateway/default route, IPv6 autoconf, DHCP clients, nameservers."""

    @abstractmethod
    def clear_ip(self, device: str, ip: IpConfig, stays: bool = False) -> None:
        """Undo ``set_ip``: stop DHCP clients, remove addresses and routes;
        a device that ``stays`` (it outlives the network) gets back what the
        network changed in it (IPv6 on as the namespace's default says)."""
