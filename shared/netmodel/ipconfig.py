"""IP configuration of a network's top device (IPv4 + IPv6)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import ErrorCode, NetError
from shared.netmodel import addresses


@dataclass(frozen=True)
class IPv4:
    address: str | None = None
    netmask: str | None = None
    gateway: str | None = None
    default_route: bool = False
    bootproto: str = "none"

    @property
    def prefixlen(self) -> int | None:
        return addresses.netmask_to_prefix(self.netmask) if self.netmask else None

    @property
    def is_dhcp(self) -> bool:
        return self.bootproto == "dhcp"

    def validate(self, owner: str) -> None:
        if self.bootproto not in ("none", "dhcp"):
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"{owner}: bootproto {self.bootproto!r} is not one of none, dhcp",
            )
        if self.address is None:
            if self.netmask is not None:
                raise NetError(
                    ErrorCode.BAD_ADDR, f"{owner}: netmask given without ipaddr"
                )
            if self.gateway is not None and not self.is_dhcp:
                raise NetError(
                    ErrorCode.BAD_ADDR, f"{owner}: gateway given without ipaddr"
                )
            return
        if self.is_dhcp:
            raise NetError(
                ErrorCode.BAD_ADDR,
                f"{owner}: static ipaddr and bootproto=dhcp are mutually exclusive",
            )
        addresses.validate_ipv4_address(self.address, owner, "ipaddr")
        addresses.require_unicast(self.address, owner, "ipaddr")
        if self.netmask is None:
            raise NetError(
                ErrorCode.BAD_ADDR, f"{owner}: ipaddr needs a netmask or prefix"
            )
        addresses.validate_netmask(self.netmask, owner)
        if self.gateway is not None:
            addresses.validate_ipv4_address(self.gateway, owner, "gateway")
            addresses.require_unicast(self.gateway, owner, "gateway")
            addresses.validate_gateway_reachable(
                self.address, self.netmask, self.gateway, owner
            )


@dataclass(frozen=True)
class IPv6:
    address: str | None = None  # "addr/prefixlen"
    gateway: str | None = None
    autoconf: bool = False
    dhcpv6: bool = False

    @property
    def is_dynamic(self) -> bool:
        return self.autoconf or self.dhcpv6

    @property
    def enabled(self) -> bool:
        """The network asks for IPv6 at all; without it the production agent
        disables IPv6 on the device (no link-local address either)."""
        return self.address is not None or self.autoconf or self.dhcpv6

    def validate(self, owner: str) -> None:
        if self.address is not None:
            addresses.validate_ipv6_cidr(self.address, owner)
            addresses.require_unicast(self.address, owner, "ipv6addr")
            if self.is_dynamic:
                raise NetError(
                    ErrorCode.BAD_ADDR,
                    f"{owner}: static ipv6addr and dhcpv6/ipv6autoconf are "
                    "mutually exclusive",
                )
        if self.gateway is not None:
            addresses.validate_ipv6_address(self.gateway, owner, "ipv6gateway")
            addresses.require_unicast(self.gateway, owner, "ipv6gateway")
            if self.address is None and not self.is_dynamic:
                raise NetError(
                    ErrorCode.BAD_ADDR, f"{owner}: ipv6gateway given without ipv6addr"
                )


_NO_IPV6 = IPv6()


@dataclass(frozen=True)
class IpConfig:
    ipv4: IPv4 = IPv4()
    ipv6: IPv6 = IPv6()
    nameservers: tuple[str, ...] = ()
    blocking_dhcp: bool = False

    @property
    def has_dhcp(self) -> bool:
        return self.ipv4.is_dhcp or self.ipv6.dhcpv6

    def validate(self, owner: str) -> None:
        self.ipv4.validate(owner)
        self.ipv6.validate(owner)
        for server in self.nameservers:
            addresses.validate_nameserver(server, owner)
        if self.nameservers and not self.ipv4.default_route:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"{owner}: nameservers may only be set on the default route network",
            )

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> IpConfig:
        """The network's canonical attributes (read only, never kept)."""
        address, gateway = attrs.get("ipv6addr"), attrs.get("ipv6gateway")
        autoconf, dhcpv6 = attrs.get("ipv6autoconf", False), attrs.get("dhcpv6", False)
        if address is None and gateway is None and autoconf is False and dhcpv6 is False:
            # no IPv6: the default, equal to what would be built (a frozen
            # object costs ~1 us, per network in frontd's and superd's checks)
            ipv6 = _NO_IPV6
        else:
            ipv6 = IPv6(address=address, gateway=gateway, autoconf=autoconf, dhcpv6=dhcpv6)
        return cls(
            ipv4=IPv4(
                address=attrs.get("ipaddr"),
                netmask=attrs.get("netmask"),
                gateway=attrs.get("gateway"),
                default_route=attrs.get("defaultRoute", False),
                bootproto=attrs.get("bootproto", "none"),
            ),
            ipv6=ipv6,
            nameservers=tuple(attrs.get("nameservers", ())),
            blocking_dhcp=attrs.get("blockingdhcp", False),
        )
