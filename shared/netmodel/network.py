"""A logical network: the top object of its device hierarchy.

``nic``/``bonding`` → optional ``Vlan`` → optional ``Bridge`` (named after the
network); the IP configuration sits on the topmost device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.bridge_options import bridge_opts_of
from shared.netmodel.device import DEFAULT_MTU, NetDevice
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.names import validate_bridge_name, validate_network_name
from shared.netmodel.nic import Nic
from shared.netmodel.vlan import Vlan

IPV6_MIN_MTU = 1280  # below it the kernel drops IPv6 from the device


@dataclass(frozen=True)
class Network:
    name: str
    attrs: Mapping
    top: NetDevice

    @property
    def bridged(self) -> bool:
        return bool(self.attrs.get("bridged", True))

    @property
    def switch(self) -> str:
        return self.attrs.get("switch", "legacy")

    @property
    def vlan(self) -> int | None:
        return self.attrs.get("vlan")

    @property
    def lower_name(self) -> str | None:
        """The NIC or bond the network sits on (None for a nic-less bridge)."""
        return self.attrs.get("nic") or self.attrs.get("bonding")

    @property
    def iface(self) -> str:
        """The device that carries the network's IP configuration."""
        return self.top.name

    @property
    def devices(self) -> list[NetDevice]:
        return list(self.top.chain())

    def validate(self) -> None:
        named = self.bridged or self.switch == "ovs"
        if named:
            # an OVS network is always an internal port named after it
            validate_bridge_name(self.name)
        validate_network_name(self.name)
        has_nic, has_bond = "nic" in self.attrs, "bonding" in self.attrs
        if has_nic and has_bond:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"network {self.name}: give either nic or bonding, not both",
            )
        if not (has_nic or has_bond):
            if self.vlan is not None:
                raise NetError(
                    ErrorCode.BAD_VLAN,
                    f"network {self.name}: a vlan needs a nic or a bonding",
                )
            if not self.bridged:
                raise NetError(
                    ErrorCode.BAD_PARAMS,
                    f"network {self.name}: a bridgeless network needs a nic or "
                    "a bonding",
                )
        ipv6 = any(self.attrs.get(key) for key in ("ipv6addr", "ipv6autoconf", "dhcpv6"))
        if ipv6 and self.attrs.get("mtu", DEFAULT_MTU) < IPV6_MIN_MTU:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"network {self.name}: IPv6 needs an mtu of at least {IPV6_MIN_MTU}",
            )
        if named and isinstance(self.top, Bridge) and self.top.name == self.name:
            self.top.validate(name_checked=True)  # the same name, checked above
        else:
            self.top.validate()


def build_network(
    name: str,
    attrs: Mapping,
    lower_mtu: int | None = None,
    bond_attrs: Mapping | None = None,
) -> Network:
    """The device hierarchy of one network from its canonical attributes.

    ``lower_mtu`` is the MTU its NIC/bond must carry (the maximum of all its
    users, computed across networks by the caller); ``bond_attrs`` describes
    the bond when the network sits on one netreload manages.
    """
    mtu = attrs.get("mtu", DEFAULT_MTU)
    lower_mtu = max(mtu, lower_mtu or 0)
    lower: NetDevice | None = None
    if "nic" in attrs:
        lower = Nic(name=attrs["nic"], mtu=lower_mtu)
    elif "bonding" in attrs:
        lower = Bond.from_attrs(attrs["bonding"], dict(bond_attrs or {}), lower_mtu)
    ip = IpConfig.from_attrs(attrs)
    vlan = attrs.get("vlan")
    if vlan is not None and lower is not None:
        lower = Vlan.on(lower, vlan, mtu)
    if attrs.get("bridged", True):
        top: NetDevice = Bridge(
            name=name,
            mtu=mtu,
            ip=ip,
            port=lower,
            stp=attrs.get("stp", False),
            options=tuple(sorted(bridge_opts_of(attrs).items())),
        )
    elif lower is not None:
        top = _with_ip(lower, ip, mtu)
    else:
        # Invalid (bridgeless without a lower device); validate() says why.
        top = Nic(name=name, mtu=mtu, ip=ip)
    return Network(name=name, attrs=attrs, top=top)


def _with_ip(device: NetDevice, ip: IpConfig, mtu: int) -> NetDevice:
    if isinstance(device, Vlan):
        return replace(device, ip=ip)
    return replace(device, ip=ip, mtu=max(device.mtu, mtu))
