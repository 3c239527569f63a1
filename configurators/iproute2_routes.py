"""Routes and rules of a network's gateways, through netlink.

* a gateway on the default-route network is the main table's only IPv4
  default route;
* a gateway on any other network is source routing, as in the production
  agent: a routing table whose number derives from the address
  (:func:`source_route_table`) holding the subnet and a default route via
  the gateway, and a rule ``from <subnet> lookup <table>``;
* an IPv6 gateway is a ``::/0`` route in the main table.

A gateway outside the address's subnet is installed ``onlink``. Nothing is
recorded on disk: what to remove is found again from the configuration.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from configurators.iproute2_netlink import (
    GONE,
    MAIN_TABLE,
    RTNH_F_ONLINK,
    SCOPE_LINK,
    Kernel,
)
from shared.netmodel.ipconfig import IpConfig

SOURCE_TABLE_MIN = 1000
SOURCE_TABLE_MAX = 250000
SOURCE_RULE_PRIORITY = 32000


def source_route_table(address: str) -> int:
    """The routing table of a non-default network's gateway: stable, from
    its IPv4 address, in SOURCE_TABLE_MIN..SOURCE_TABLE_MAX."""
    span = SOURCE_TABLE_MAX - SOURCE_TABLE_MIN + 1
    return SOURCE_TABLE_MIN + int(ipaddress.IPv4Address(address)) % span


@dataclass(frozen=True)
class StaticV4:
    address: str
    prefixlen: int
    gateway: str | None
    default_route: bool

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.prefixlen)

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.address}/{self.prefixlen}", strict=False)

    @property
    def table(self) -> int:
        return source_route_table(self.address)

    @property
    def gateway_onlink(self) -> bool:
        """A gateway outside the subnet needs the onlink flag."""
        return self.gateway is not None and ipaddress.IPv4Address(self.gateway) not in self.subnet


def static_v4(ip: IpConfig | None) -> StaticV4 | None:
    if ip is None or ip.ipv4.address is None or ip.ipv4.prefixlen is None:
        return None
    return StaticV4(ip.ipv4.address, ip.ipv4.prefixlen, ip.ipv4.gateway, ip.ipv4.default_route)


class RouteApplier:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    # -- IPv4 gateway: main default route or source routing -----------------
    def _route(self, dev: dict[str, Any], what: str, command: str, **spec: Any) -> None:
        self.kernel.request(
            dev["name"],
            what,
            "route",
            command,
            tolerate=GONE if command == "del" else (),
            **spec,
        )

    def _default_spec(self, dev: dict[str, Any], gateway: str, onlink: bool, **extra: Any) -> dict:
        spec = {
            "family": socket.AF_INET,
            "dst": "0.0.0.0/0",
            "gateway": gateway,
            "oif": dev["index"],
            **extra,
        }
        if onlink:
            spec["flags"] = RTNH_F_ONLINK
        return spec

    def ensure_main_default(self, dev: dict[str, Any], v4: StaticV4) -> None:
        """Our route via the gateway, and no other IPv4 default route."""

        def is_ours(route: dict) -> bool:
            return (
                route["gateway"] == v4.gateway
                and route["oif"] == dev["index"]
                and route["priority"] == 0
            )

        defaults = [r for r in self.kernel.routes(socket.AF_INET, MAIN_TABLE) if r["dst_len"] == 0]
        if len(defaults) == 1 and is_ours(defaults[0]):
            return
        if not any(is_ours(r) for r in defaults):
            self._route(
                dev,
                f"set default route via {v4.gateway}",
                "replace",
                **self._default_spec(dev, v4.gateway, v4.gateway_onlink),
            )
            defaults = [
                r for r in self.kernel.routes(socket.AF_INET, MAIN_TABLE) if r["dst_len"] == 0
            ]
        for route in defaults:
            if is_ours(route):
                continue
            self._route(
                dev,
                f"remove default route via {route['gateway']}",
                "del",
                family=socket.AF_INET,
                dst="0.0.0.0/0",
                gateway=route["gateway"],
                oif=route["oif"],
                priority=route["priority"],
                table=MAIN_TABLE,
            )

    def ensure_source_routing(self, dev: dict[str, Any], v4: StaticV4) -> None:
        table = v4.table
        routes = self.kernel.routes(socket.AF_INET, table)
        subnet = v4.subnet
        has_subnet = any(
            r["dst_len"] == subnet.prefixlen
            and r["dst"] == str(subnet.network_address)
            and r["oif"] == dev["index"]
            and r["gateway"] is None
            for r in routes
        )
        if not has_subnet:
            self._route(
                dev,
                f"add route {subnet} to table {table}",
                "replace",
                family=socket.AF_INET,
                dst=str(subnet),
                oif=dev["index"],
                scope=SCOPE_LINK,
                prefsrc=v4.address,
                table=table,
            )
        has_default = any(
            r["dst_len"] == 0 and r["gateway"] == v4.gateway and r["oif"] == dev["index"]
            for r in routes
        )
        if not has_default:
            self._route(
                dev,
                f"add default route via {v4.gateway} to table {table}",
                "replace",
                **self._default_spec(dev, v4.gateway, v4.gateway_onlink, table=table),
            )
        if not self._has_source_rule(v4):
            self.kernel.request(
                dev["name"],
                f"add rule from {subnet} lookup {table}",
                "rule",
                "add",
                family=socket.AF_INET,
                src=str(subnet.network_address),
                src_len=subnet.prefixlen,
                table=table,
                priority=SOURCE_RULE_PRIORITY,
            )

    def _has_source_rule(self, v4: StaticV4) -> bool:
        subnet = v4.subnet
        return any(
            rule["src"] == str(subnet.network_address)
            and rule["src_len"] == subnet.prefixlen
            and rule["table"] == v4.table
            for rule in self.kernel.rules(socket.AF_INET)
        )

    def remove_source_rule(self, device: str, v4: StaticV4) -> None:
        if not self._has_source_rule(v4):
            return
        subnet = v4.subnet
        self.kernel.request(
            device,
            f"remove rule from {subnet} lookup {v4.table}",
            "rule",
            "del",
            family=socket.AF_INET,
            src=str(subnet.network_address),
            src_len=subnet.prefixlen,
            table=v4.table,
            priority=SOURCE_RULE_PRIORITY,
            tolerate=GONE,
        )

    def remove_gateway(self, dev: dict[str, Any], v4: StaticV4) -> None:
        """Undo ``_ensure_main_default`` or ``_ensure_source_routing``."""
        if v4.default_route:
            for route in self.kernel.routes(socket.AF_INET, MAIN_TABLE):
                if (
                    route["dst_len"] == 0
                    and route["gateway"] == v4.gateway
                    and route["oif"] == dev["index"]
                ):
                    self._route(
                        dev,
                        f"remove default route via {v4.gateway}",
                        "del",
                        family=socket.AF_INET,
                        dst="0.0.0.0/0",
                        gateway=v4.gateway,
                        oif=dev["index"],
                        priority=route["priority"],
                        table=MAIN_TABLE,
                    )
            return
        self.remove_source_rule(dev["name"], v4)
        for route in self.kernel.routes(socket.AF_INET, v4.table):
            if route["oif"] != dev["index"]:
                continue
            dst = f"{route['dst'] or '0.0.0.0'}/{route['dst_len']}"
            spec = {"gateway": route["gateway"]} if route["gateway"] else {}
            self._route(
                dev,
                f"remove route {dst} from table {v4.table}",
                "del",
                family=socket.AF_INET,
                dst=dst,
                oif=dev["index"],
                table=v4.table,
                **spec,
            )

    # -- IPv6 gateway ------------------------------------------------------
    def _ipv6_defaults_via(self, dev: dict[str, Any], gateway: str) -> list[dict]:
        return [
            r
            for r in self.kernel.routes(socket.AF_INET6, MAIN_TABLE)
            if r["dst_len"] == 0 and r["gateway"] == gateway and r["oif"] == dev["index"]
        ]

    def ensure_ipv6_default(
        self, dev: dict[str, Any], gateway: str, address: tuple[str, int] | None
    ) -> None:
        if self._ipv6_defaults_via(dev, gateway):
            return
        spec: dict[str, Any] = {
            "family": socket.AF_INET6,
            "dst": "::/0",
            "gateway": gateway,
            "oif": dev["index"],
        }
        if address is not None:
            prefix = ipaddress.IPv6Interface(f"{address[0]}/{address[1]}").network
            if ipaddress.IPv6Address(gateway) not in prefix and not (
                ipaddress.IPv6Address(gateway).is_link_local
            ):
                spec["flags"] = RTNH_F_ONLINK
        self._route(dev, f"set IPv6 default route via {gateway}", "replace", **spec)

    def remove_ipv6_default(self, dev: dict[str, Any], gateway: str) -> None:
        for route in self._ipv6_defaults_via(dev, gateway):
            self._route(
                dev,
                f"remove IPv6 default route via {gateway}",
                "del",
                family=socket.AF_INET6,
                dst="::/0",
                gateway=gateway,
                oif=dev["index"],
                priority=route["priority"],
                table=MAIN_TABLE,
            )
