"""Validation of a request as a whole against the host.

Each primitive validates itself (``Network.validate``, ``Bond.validate``);
what needs several objects at once — who uses which NIC, tags on one
device, the single default route — is checked here on the *final* state:
running configuration, minus removals, plus additions and edits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.canonical import FREE_FORM_KEYS, free_form_bytes
from shared.netmodel.device import DEFAULT_MTU
from shared.netmodel.names import vlan_device_name
from shared.netmodel.network import Network, build_network
from shared.netmodel.ownership import check_unowned
from shared.netmodel.request import Request
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig

# custom and hostQos held for the whole host (running configuration after a
# request): every plan carries them to superd in a frame of at most 32 MiB,
# and superd keeps them in memory. Far above what an engine sets (a few
# hundred bytes on a few networks); without it, requests that each pass the
# per-request bound could pile up until no plan fits a frame.
MAX_FREE_FORM_PER_HOST = 4 * 1024 * 1024


@dataclass(frozen=True)
class FinalState:
    networks: dict[str, dict]
    bonds: dict[str, dict]
    lower_mtus: dict[str, int]
    models: dict[str, Network]


def final_state(request: Request, running: RunningConfig) -> tuple[dict, dict]:
    # shallow: the running configuration's entries are shared, never changed
    # (a copy of each would make every request cost the size of the host)
    nets = dict(running.networks)
    bonds = dict(running.bonds)
    for name, attrs in request.networks.items():
        if attrs is None:
            nets.pop(name, None)
        else:
            nets[name] = attrs
    for name, attrs in request.bonds.items():
        if attrs is None:
            bonds.pop(name, None)
        else:
            bonds[name] = attrs
    return nets, bonds


def compute_lower_mtus(nets: Mapping[str, Mapping], bonds: Mapping) -> dict[str, int]:
    """Each NIC/bond carries the maximum MTU of the networks on it."""
    mtus: dict[str, int] = {bond: DEFAULT_MTU for bond in bonds}
    for attrs in nets.values():
        lower = attrs.get("nic") or attrs.get("bonding")
        if lower:
            mtus[lower] = max(mtus.get(lower, 0), attrs.get("mtu", DEFAULT_MTU))
    return mtus


@dataclass(frozen=True)
class _HostScan:
    """What validation needs of the whole final state, in one pass over it:
    the networks on the lowers the request touches, the default route's
    holders. (Separate walks, one per check, made a one-network request on
    a host of thousands cost several times the whole host.)"""

    users: dict[str, dict[str, Mapping]]  # touched lower → {network: attrs}
    default_route: list[str]


def _scan(nets: Mapping[str, Mapping], lowers: set[str]) -> _HostScan:
    users: dict[str, dict[str, Mapping]] = {lower: {} for lower in lowers}
    if users:  # a request touching no NIC or bond (a nic-less bridge) needs no users
        for name, attrs in nets.items():
            lower = attrs.get("nic") or attrs.get("bonding")
            if lower in users:
                users[lower][name] = attrs
    # one read per network, at C speed (the walk every request makes)
    holders = [name for name, attrs in nets.items() if attrs.get("defaultRoute")]
    return _HostScan(users, holders)


def _touched_lowers(request: Request, running: RunningConfig) -> set[str]:
    """The NICs and bonds whose networks the request may change: those of
    the networks it adds, edits or removes, and the bonds it names."""
    lowers = set(request.bonds)
    for name, attrs in request.networks.items():
        for each in (attrs, running.networks.get(name)):
            lower = each and (each.get("nic") or each.get("bonding"))
            if lower:
                lowers.add(lower)
    return lowers


def _lower_mtus(scan: _HostScan, bonds: Mapping) -> dict[str, int]:
    """compute_lower_mtus for the touched lowers only (what the plan's MTU
    operations and the models of the request look up)."""
    mtus: dict[str, int] = {}
    for lower, users in scan.users.items():
        if lower in bonds:
            mtus[lower] = DEFAULT_MTU
        for attrs in users.values():
            mtus[lower] = max(mtus.get(lower, 0), attrs.get("mtu", DEFAULT_MTU))
    return mtus


def validate_request(
    request: Request,
    netinfo: NetinfoSnapshot,
    running: RunningConfig,
) -> FinalState:
    for name in request.removed_networks:
        if name not in running.networks:
            raise NetError(
                ErrorCode.BAD_BRIDGE,
                f"Cannot delete network {name!r}: it does not exist in the system",
            )
    for name in request.removed_bonds:
        if name not in running.bonds and name not in netinfo.bondings:
            raise NetError(
                ErrorCode.BAD_BONDING,
                f"Cannot delete bond {name!r}: it does not exist in the system",
            )
    nets, bonds = final_state(request, running)
    scan = _scan(nets, _touched_lowers(request, running))
    lower_mtus = _lower_mtus(scan, bonds)  # of the touched lowers: all the plan looks up
    models: dict[str, Network] = {}
    for name, attrs in request.added_networks.items():
        bond = attrs.get("bonding")
        if bond is not None and bond not in bonds and bond not in netinfo.bondings:
            raise NetError(ErrorCode.BAD_BONDING, f"network {name}: bond {bond} does not exist")
        lower = attrs.get("nic") or bond
        model = build_network(
            name,
            attrs,
            lower_mtus.get(lower) if lower else None,
            _bond_description(attrs.get("bonding"), bonds, netinfo),
        )
        model.validate()
        models[name] = model
    for name, attrs in request.added_bonds.items():
        Bond.from_attrs(name, attrs, lower_mtus.get(name, DEFAULT_MTU)).validate()
    _validate_bond_slaves(request, netinfo, running, nets, bonds)
    _validate_network_lowers(request, netinfo, scan, bonds)
    validate_sharing(_sharing_lowers(request, scan))
    _validate_default_route(request, scan)
    _validate_bridge_names(request, netinfo, running)
    check_unowned(
        request.added_networks,
        [*request.bonds],
        {"networks": running.networks, "bonds": running.bonds},  # read only: no copy
        netinfo.device_kinds(),
        netinfo.owned,
    )
    _validate_free_form_total(request, nets)
    return FinalState(nets, bonds, lower_mtus, models)


def _validate_free_form_total(request: Request, nets: Mapping[str, Mapping]) -> None:
    """Only a request that sets free-form attributes can be refused for
    their total: a host over it can still remove and change the rest."""
    if not any(key in attrs for attrs in request.added_networks.values() for key in FREE_FORM_KEYS):
        return
    total = free_form_bytes(nets.values())
    if total > MAX_FREE_FORM_PER_HOST:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"custom and hostQos of all networks would be {total} bytes of JSON,"
            f" at most {MAX_FREE_FORM_PER_HOST}",
        )


def _bond_description(
    bond: str | None, bonds: Mapping, netinfo: NetinfoSnapshot
) -> Mapping | None:
    """A bond netreload defines, or one found on the host (legacy: adopted)."""
    if bond is None:
        return None
    if bond in bonds:
        return bonds[bond]
    if bond in netinfo.bondings:
        return {"nics": sorted(netinfo.bondings[bond].get("slaves", []))}
    return None


def _external_slaves(
    netinfo: NetinfoSnapshot, request: Request, bonds: Mapping
) -> dict:
    """NICs enslaved on the host to bonds netreload will not (re)define."""
    owner = {}
    for bond, attrs in netinfo.bondings.items():
        if bond in bonds or bond in request.bonds:
            continue
        for slave in attrs.get("slaves", ()):
            owner[slave] = bond
    return owner


def _validate_bond_slaves(
    request: Request,
    netinfo: NetinfoSnapshot,
    running: RunningConfig,
    nets: Mapping,
    bonds: Mapping,
) -> None:
    external = _external_slaves(netinfo, request, bonds)
    removed_vlans = {
        vlan_device_name(a.get("nic") or a.get("bonding"), a["vlan"])
        for a in (running.networks.get(n) for n in request.networks)
        if a is not None and "vlan" in a and (a.get("nic") or a.get("bonding"))
    }
    # the whole host's NIC users: only for the slaves of bonds the request adds
    nic_users = {a["nic"]: n for n, a in nets.items() if "nic" in a} if request.added_bonds else {}
    slave_owner: dict[str, str] = {}
    for bond, attrs in sorted(bonds.items()):
        for slave in attrs.get("nics", ()):
            if slave in slave_owner:
                raise NetError(
                    ErrorCode.USED_NIC,
                    f"bond {bond}: nic {slave} is already a slave of {slave_owner[slave]}",
                )
            slave_owner[slave] = bond
    for bond, attrs in sorted(request.added_bonds.items()):
        for slave in attrs["nics"]:
            if slave not in netinfo.nics:
                raise NetError(ErrorCode.BAD_NIC, f"bond {bond}: unknown nic {slave}")
            if slave in external:
                raise NetError(
                    ErrorCode.USED_NIC,
                    f"bond {bond}: nic {slave} is already a slave of {external[slave]}",
                )
            if slave in nic_users:
                raise NetError(
                    ErrorCode.USED_NIC,
                    f"bond {bond}: nic {slave} already carries network {nic_users[slave]}",
                )
            vlans = [v for v in netinfo.vlans_on(slave) if v not in removed_vlans]
            if vlans:
                raise NetError(
                    ErrorCode.USED_NIC,
                    f"bond {bond}: nic {slave} already carries vlan(s) {', '.join(vlans)}",
                )


def _validate_network_lowers(
    request: Request, netinfo: NetinfoSnapshot, scan: _HostScan, bonds: Mapping
) -> None:
    external = _external_slaves(netinfo, request, bonds)
    slaves = {s: b for b, a in bonds.items() for s in a.get("nics", ())}
    for name, attrs in sorted(request.added_networks.items()):
        nic, bond = attrs.get("nic"), attrs.get("bonding")
        if nic is not None:
            if nic not in netinfo.nics:
                raise NetError(ErrorCode.BAD_NIC, f"network {name}: unknown nic {nic}")
            owner = slaves.get(nic) or external.get(nic)
            if owner:
                raise NetError(
                    ErrorCode.USED_NIC,
                    f"network {name}: nic {nic} is a slave of bond {owner}",
                )
        if bond is not None:
            if bond not in bonds and bond not in netinfo.bondings:
                raise NetError(
                    ErrorCode.BAD_BONDING, f"network {name}: unknown bond {bond}"
                )
            bond_switch = bonds.get(bond, {}).get("switch", "legacy")
            if bond_switch != attrs["switch"]:
                raise NetError(
                    ErrorCode.BAD_PARAMS,
                    f"network {name}: switch {attrs['switch']} differs from bond "
                    f"{bond}'s switch {bond_switch}",
                )
    for bond in request.removed_bonds:  # a bond the request names is a touched lower
        users = sorted(n for n, a in scan.users[bond].items() if a.get("bonding") == bond)
        if users:
            raise NetError(
                ErrorCode.USED_BOND,
                f"Cannot delete bond {bond}: used by network(s) {', '.join(users)}",
            )


def _sharing_lowers(request: Request, scan: _HostScan) -> dict[str, Mapping]:
    """The final networks on the NICs and bonds the request's additions use:
    only there can the request break the sharing rules (the rest of the
    host was checked when it was added)."""
    lowers = {a.get("nic") or a.get("bonding") for a in request.added_networks.values()}
    lowers.discard(None)
    return {n: a for lower in lowers for n, a in scan.users[lower].items()}


def validate_sharing(nets: Mapping[str, Mapping]) -> None:
    """At most one untagged network and unique VLAN tags per NIC/bond."""
    by_lower: dict[str, list[tuple[str, Mapping]]] = defaultdict(list)
    for name, attrs in sorted(nets.items()):
        lower = attrs.get("nic") or attrs.get("bonding")
        if lower:
            by_lower[lower].append((name, attrs))
    switches: dict[str, set[str]] = defaultdict(set)
    for lower, users in by_lower.items():
        untagged = [n for n, a in users if a.get("vlan") is None]
        if len(untagged) > 1:  # the production agent's code: 21, on a NIC or a bond
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"multiple networks cannot be defined on a single underlying device:"
                f" {lower} would carry more than one untagged network: {', '.join(untagged)}",
            )
        seen: dict[int, str] = {}
        for name, attrs in users:
            tag = attrs.get("vlan")
            if tag is not None and tag in seen:
                raise NetError(
                    ErrorCode.BAD_PARAMS,
                    f"similar vlans cannot be defined on a single underlying device:"
                    f" networks {seen[tag]} and {name} both use vlan {tag} on {lower}",
                )
            if tag is not None:
                seen[tag] = name
            switches[lower].add(attrs.get("switch", "legacy"))
        if len(switches[lower]) > 1:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"{lower} would carry networks of different switch types",
            )


def _validate_default_route(request: Request, scan: _HostScan) -> None:
    asked = sorted(n for n, a in request.added_networks.items() if a["defaultRoute"])
    if len(asked) > 1:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"only one network may hold the default route, got {', '.join(asked)}",
        )
    holders = sorted(scan.default_route)
    if len(holders) > 1:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"only one network may hold the default route, got {', '.join(holders)}",
        )


def _validate_bridge_names(
    request: Request, netinfo: NetinfoSnapshot, running: RunningConfig
) -> None:
    for name, attrs in request.added_networks.items():
        if not attrs["bridged"] or name in running.networks:
            continue
        # "lo" is in no section of the report, yet every namespace has it
        if name in netinfo.nics or name in netinfo.bondings or name in netinfo.vlans or (
            name == "lo"
        ):
            raise NetError(
                ErrorCode.BAD_BRIDGE,
                f"network {name}: a device of that name exists and is not a bridge",
            )
