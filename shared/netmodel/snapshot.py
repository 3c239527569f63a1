"""Plain-data views of the host that planning needs: the netinfo snapshot
(the capabilities report) and the running configuration."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from shared.errors import ErrorCode, NetError
from shared.netinfo_report import stp_is_on

REPORT_SECTIONS = ("nics", "bondings", "bridges", "vlans", "networks")


@dataclass(frozen=True)
class NetinfoSnapshot:
    """The host's devices as the capabilities report describes them."""

    nics: Mapping[str, Mapping] = field(default_factory=dict)
    bondings: Mapping[str, Mapping] = field(default_factory=dict)
    bridges: Mapping[str, Mapping] = field(default_factory=dict)
    vlans: Mapping[str, Mapping] = field(default_factory=dict)
    networks: Mapping[str, Mapping] = field(default_factory=dict)
    nameservers: tuple[str, ...] = ()
    # devices carrying netreload's mark (shared.netmodel.ownership): not in
    # the report, superd's netinfo answer gives them apart
    owned: frozenset[str] = frozenset()

    @classmethod
    def from_caps(cls, caps: object, owned: object = ()) -> NetinfoSnapshot:
        if not isinstance(caps, Mapping):
            raise NetError(ErrorCode.BAD_PARAMS, "netinfo report must be an object")
        sections = {}
        for key in REPORT_SECTIONS:
            value = caps.get(key, {})
            values = value.values() if isinstance(value, Mapping) else None
            # plain dicts (a decoded report) checked at C speed: thousands of entries
            if values is None or not (
                set(map(type, values)) <= {dict} or all(isinstance(v, Mapping) for v in values)
            ):
                raise NetError(
                    ErrorCode.BAD_PARAMS,
                    f"netinfo report: {key} must map names to objects",
                )
            sections[key] = value
        nameservers = caps.get("nameservers", [])
        if not isinstance(nameservers, list):
            raise NetError(
                ErrorCode.BAD_PARAMS, "netinfo report: nameservers must be a list"
            )
        # any set: superd's marked devices are a shared.layered.LayeredSet
        if not isinstance(owned, (list, tuple, AbstractSet)):
            raise NetError(ErrorCode.BAD_PARAMS, "netinfo: owned must be a list")
        return cls(
            nameservers=tuple(map(str, nameservers)),
            # a frozenset (frontd's held one, of strings) is taken as it is
            owned=owned if type(owned) is frozenset else frozenset(map(str, owned)),
            **sections,
        )

    def device_kinds(self) -> Mapping[str, str | None]:
        """{device: "bridge" | "bond" | "vlan" | None (a NIC)} of the report:
        a view looking names up in the sections (a request's few devices),
        not a copy of the host's thousands."""
        return _DeviceKinds(self)

    def device_mtu(self, name: str) -> int | None:
        for section in (self.nics, self.bondings, self.vlans, self.bridges):
            if name in section:
                mtu = section[name].get("mtu")
                return int(mtu) if mtu is not None else None
        return None

    def bond_of(self, nic: str) -> str | None:
        """The bond (present on the host) that enslaves ``nic``."""
        for bond, attrs in self.bondings.items():
            if nic in attrs.get("slaves", ()):
                return bond
        return None

    def vlans_on(self, device: str) -> list[str]:
        return sorted(
            v for v, attrs in self.vlans.items() if attrs.get("iface") == device
        )

    def device_exists(self, name: str) -> bool:
        return any(
            name in section
            for section in (self.nics, self.bondings, self.bridges, self.vlans)
        )


class _DeviceKinds(Mapping):
    """NetinfoSnapshot.device_kinds: a device in several sections has the
    kind of the last of nics, vlans, bondings, bridges."""

    def __init__(self, snapshot: NetinfoSnapshot) -> None:
        self._sections: list[tuple[Mapping, str | None]] = [
            (snapshot.bridges, "bridge"), (snapshot.bondings, "bond"),
            (snapshot.vlans, "vlan"), (snapshot.nics, None),
        ]  # fmt: skip

    def __getitem__(self, device: str) -> str | None:
        for section, kind in self._sections:
            if device in section:
                return kind
        raise KeyError(device)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for section, _kind in reversed(self._sections):
            for device in section:
                if device not in seen:
                    seen.add(device)
                    yield device

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class RunningConfig:
    """What netreload configured: canonical attributes per network and bond."""

    networks: Mapping[str, Mapping] = field(default_factory=dict)
    bonds: Mapping[str, Mapping] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"networks": dict(self.networks), "bonds": dict(self.bonds)}

    @classmethod
    def from_dict(cls, data: Mapping) -> RunningConfig:
        return cls(
            networks=dict(data.get("networks", {})), bonds=dict(data.get("bonds", {}))
        )


def running_config_from_caps(caps: Mapping) -> RunningConfig:
    """Reconstruct canonical attributes from a capabilities report.

    Offline planning (``netreload plan --netinfo HOST.json``) has only the
    report, so the networks it lists are read back into the request form.
    """
    snapshot = NetinfoSnapshot.from_caps(caps)
    networks: dict[str, dict] = {}
    bonds_used: set[str] = set()
    for name, net in snapshot.networks.items():
        bridged = bool(net.get("bridged", True))
        attrs: dict = {"bridged": bridged, "mtu": int(net.get("mtu", 1500))}
        if bridged:
            attrs["stp"] = stp_is_on(net.get("stp", False))
            ports = [p for p in net.get("ports", []) if not str(p).startswith("vnet")]
            lower = ports[0] if ports else None
        else:
            lower = net.get("interface") or net.get("iface")
        if lower in snapshot.vlans:
            attrs["vlan"] = int(snapshot.vlans[lower]["vlanid"])
            lower = snapshot.vlans[lower]["iface"]
        if lower in snapshot.bondings:
            attrs["bonding"] = lower
            bonds_used.add(lower)
        elif lower is not None:
            attrs["nic"] = lower
        attrs.update(_ip_attrs_from_caps(net))
        attrs["switch"] = net.get("switch", "legacy")
        networks[name] = attrs
    bonds = {
        name: {
            "nics": sorted(snapshot.bondings[name].get("slaves", [])),
            "options": _bond_options_string(snapshot.bondings[name].get("opts", {})),
            "switch": snapshot.bondings[name].get("switch", "legacy"),
        }
        for name in sorted(bonds_used)
    }
    return RunningConfig(networks=networks, bonds=bonds)


def _ip_attrs_from_caps(net: Mapping) -> dict:
    attrs: dict = {
        "bootproto": "dhcp" if net.get("dhcpv4") else "none",
        "defaultRoute": bool(net.get("ipv4defaultroute", False)),
        "dhcpv6": bool(net.get("dhcpv6", False)),
        "ipv6autoconf": bool(net.get("ipv6autoconf", False)),
        "nameservers": [],
    }
    if not net.get("dhcpv4") and net.get("addr"):
        attrs["ipaddr"] = net["addr"]
        attrs["netmask"] = net.get("netmask", "")
        if net.get("gateway"):
            attrs["gateway"] = net["gateway"]
    if not (net.get("dhcpv6") or net.get("ipv6autoconf")):
        v6 = [a for a in net.get("ipv6addrs", []) if not a.startswith("fe80")]
        if v6:
            attrs["ipv6addr"] = v6[0]
        if net.get("ipv6gateway") not in (None, "", "::"):
            attrs["ipv6gateway"] = net["ipv6gateway"]
    return attrs


def _bond_options_string(opts: Mapping) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(opts.items()))
