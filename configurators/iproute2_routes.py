"""Routes and rules of a network's gateways, through netlink.

* on the default-route network, an IPv4 gateway is the main table's only
  IPv4 default route;
* on any other, it is source routing, as in the production agent
  (:mod:`shared.source_routing`): the network's own routing table, numbered
  after its top device, with the subnet and a default route via the
  gateway, and the rules ``from <subnet>`` and ``to <subnet>`` looking it
  up;
* an IPv6 gateway is a ``::/0`` route in the main table.

A gateway outside the address's subnet is installed ``onlink``. Nothing is
recorded on disk: the table is found again from the device's name.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from configurators.iproute2_netlink import MAIN_TABLE, RTNH_F_ONLINK, SCOPE_LINK, Kernel
from configurators.iproute2_reads import GONE
from shared.netmodel.ipconfig import IpConfig
from shared.source_routing import RULE_PRIORITY, source_table


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
    def gateway_onlink(self) -> bool:
        """A gateway outside the subnet needs the onlink flag."""
        return self.gateway is not None and ipaddress.IPv4Address(self.gateway) not in self.subnet


def static_v4(ip: IpConfig | None) -> StaticV4 | None:
    if ip is None or ip.ipv4.address is None or ip.ipv4.prefixlen is None:
        return None
    return StaticV4(ip.ipv4.address, ip.ipv4.prefixlen, ip.ipv4.gateway, ip.ipv4.default_route)


def _rule_key(rule: dict[str, Any]) -> tuple:
    return (rule["src"], rule["src_len"], rule["dst"], rule["dst_len"])


class RouteApplier:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    # -- IPv4 gateway: main default route and source routing ----------------
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

    def ensure_gateway(self, dev: dict[str, Any], v4: StaticV4) -> None:
        """The main default route on the default-route network (and no
        table of its own), source routing on any other."""
        if v4.default_route:
            self.ensure_main_default(dev, v4)
            self.remove_source_routing(dev["name"], dev)
        else:
            self.ensure_source_routing(dev, v4)

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
        """Exactly the two rules looking the device's table up, and the
        subnet and default routes in it (what a previous address left there
        is removed). The default route comes last: once it is there (the
        capabilities report the gateway from it) everything is."""
        table, subnet = source_table(dev["name"]), v4.subnet
        have_subnet = have_default = False
        for route in self.kernel.routes(socket.AF_INET, table):
            if route["oif"] != dev["index"]:
                continue  # not ours to judge
            if (route["dst_len"], route["dst"], route["gateway"]) == (
                subnet.prefixlen, str(subnet.network_address), None
            ) and route["prefsrc"] == v4.address:
                have_subnet = True
            elif route["dst_len"] == 0 and route["gateway"] == v4.gateway:
                have_default = True
            else:
                self._delete_table_route(dev, table, route)
        net, plen = str(subnet.network_address), subnet.prefixlen
        wanted = {(net, plen, None, 0): {"src": net, "src_len": plen},
                  (None, 0, net, plen): {"dst": net, "dst_len": plen}}  # fmt: skip
        for rule in self._rules(table):
            if wanted.pop(_rule_key(rule), None) is None:
                self._delete_rule(dev["name"], rule)
        for (src, src_len, dst, dst_len), spec in wanted.items():
            way = f"from {subnet}" if "src" in spec else f"to {subnet}"
            self.kernel.request(
                dev["name"],
                f"add rule {way} lookup {table}",
                "rule",
                "add",
                family=socket.AF_INET,
                table=table,
                priority=RULE_PRIORITY,
                **spec,
            )
            self.kernel.rule_added({"src": src, "src_len": src_len, "dst": dst,
                                    "dst_len": dst_len, "table": table,
                                    "priority": RULE_PRIORITY})  # fmt: skip
        if not have_subnet:
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
        if not have_default:
            self._route(
                dev,
                f"add default route via {v4.gateway} to table {table}",
                "replace",
                **self._default_spec(dev, v4.gateway, v4.gateway_onlink, table=table),
            )

    def _rules(self, table: int) -> list[dict[str, Any]]:
        return [r for r in self.kernel.rules(socket.AF_INET) if r["table"] == table]

    def _delete_rule(self, device: str, rule: dict[str, Any]) -> None:
        spec = {k: rule[k] for k in ("src", "src_len", "dst", "dst_len") if rule[k]}
        self.kernel.request(
            device,
            f"remove rule {spec} lookup {rule['table']}",
            "rule",
            "del",
            family=socket.AF_INET,
            table=rule["table"],
            priority=rule["priority"],
            tolerate=GONE,
            **spec,
        )
        self.kernel.rule_removed(rule)

    def _delete_table_route(self, dev: dict[str, Any], table: int, route: dict) -> None:
        dst = f"{route['dst'] or '0.0.0.0'}/{route['dst_len']}"
        spec = {"gateway": route["gateway"]} if route["gateway"] else {}
        self._route(
            dev,
            f"remove route {dst} from table {table}",
            "del",
            family=socket.AF_INET,
            dst=dst,
            oif=dev["index"],
            table=table,
            priority=route["priority"],
            **spec,
        )

    def remove_source_routing(self, device: str, dev: dict[str, Any] | None) -> None:
        """The rules of ``device``'s table, and the routes through it there
        (``dev`` None: the device is gone, and its routes with it; a rule is
        not tied to a device)."""
        table = source_table(device)
        if dev is not None:  # the default route first: the gateway is gone
            routes = self.kernel.routes(socket.AF_INET, table)
            for route in sorted(routes, key=lambda r: r["dst_len"]):
                if route["oif"] == dev["index"]:
                    self._delete_table_route(dev, table, route)
        for rule in self._rules(table):
            self._delete_rule(device, rule)

    def remove_gateway(self, dev: dict[str, Any], v4: StaticV4) -> None:
        """Undo :meth:`ensure_gateway`."""
        if v4.default_route:
            self.remove_main_default(dev, v4)
        else:
            self.remove_source_routing(dev["name"], dev)

    def remove_main_default(self, dev: dict[str, Any], v4: StaticV4) -> None:
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
