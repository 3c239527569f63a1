"""What superd checks in a plan from the wire beyond each value's own form.

``Plan.from_dict`` re-canonicalizes every network and bond; that proves the
attributes are well-typed, not that the plan is one frontd could have
computed. Before these checks a hand-written plan could carry a NIC name
such as ``../x`` (canonical form only bounds a string's length), set the
MTU of any device (the host's ``lo``, a NIC no network uses), repeat an
operation, run operations out of order, put a second untagged network on a
NIC in use, or smuggle keys superd silently dropped. Everything here needs
only the plan itself; what needs the host (does this NIC exist?) is
:func:`check_plan_devices`, given superd's netinfo.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.device import DEFAULT_MTU
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.names import (
    IFNAMSIZ_MAX,
    validate_bond_name,
    validate_nic_name,
    vlan_device_name,
)
from shared.netmodel.ownership import check_unowned
from shared.netmodel.snapshot import NetinfoSnapshot

# frontd's own rule for NIC/bond sharing, applied to the plan's final state
from shared.netmodel.validation import compute_lower_mtus, validate_sharing

BOND_OPS = ("add_bond", "edit_bond", "remove_bond")
PLAN_KEYS = frozenset({"version", "operations", "options", "running"})
RUNNING_KEYS = frozenset({"networks", "bonds"})
_NAMED_KEYS = frozenset({"op", "name", "attrs"})
OPERATION_KEYS: dict[str, frozenset[str]] = {
    "remove_network": _NAMED_KEYS,
    "remove_bond": _NAMED_KEYS,
    "edit_bond": _NAMED_KEYS,
    "add_bond": _NAMED_KEYS,
    "set_mtu": frozenset({"op", "device", "mtu"}),
    "add_network": _NAMED_KEYS | {"blockingdhcp"},
}


def _bad(message: str, code: ErrorCode = ErrorCode.BAD_PARAMS) -> NetError:
    return NetError(code, f"plan: {message}")


def check_keys(data: Mapping, allowed: frozenset[str], what: str) -> None:
    """No key beyond ``allowed``: superd must not drop what it does not read
    (a later version reading it would then act on what this one ignored)."""
    extra = [key for key in data if key not in allowed]
    if extra:
        shown = ", ".join(repr(key)[:40] for key in sorted(map(str, extra))[:5])
        raise _bad(f"{what}: unknown key(s) {shown}")


def check_mapping(value: object, what: str) -> Mapping:
    """An object, not something ``dict()`` would turn into one (a list of pairs)."""
    if not isinstance(value, Mapping):
        raise _bad(f"{what} must be an object")
    return value


def check_network_devices(name: str, attrs: Mapping) -> None:
    """The device names a network's attributes create or touch.

    Mirrors ``Network.validate`` without needing the bond's description (a
    network may sit on a host bond netreload does not define).
    """
    nic, bond = attrs.get("nic"), attrs.get("bonding")
    if nic is not None and bond is not None:
        raise _bad(f"network {name}: both nic and bonding")
    if nic is not None:
        validate_nic_name(nic)
    if bond is not None:
        validate_bond_name(bond)
    lower = nic or bond
    tag = attrs.get("vlan")
    if tag is not None:
        if lower is None:
            raise _bad(f"network {name}: a vlan needs a nic or a bonding", ErrorCode.BAD_VLAN)
        if len(vlan_device_name(lower, tag)) > IFNAMSIZ_MAX:
            raise _bad(
                f"network {name}: vlan device name longer than {IFNAMSIZ_MAX} characters",
                ErrorCode.BAD_VLAN,
            )
    if lower is None and not attrs.get("bridged", True):
        raise _bad(f"network {name}: a bridgeless network needs a nic or a bonding")
    IpConfig.from_attrs(attrs).validate(f"network {name}")


def check_bond_devices(name: str, attrs: Mapping, added: bool) -> None:
    """Slave names always; an added or edited bond in full (as frontd did)."""
    if added:
        Bond.from_attrs(name, dict(attrs), DEFAULT_MTU).validate()
        return
    for slave in attrs.get("nics", ()):
        validate_nic_name(slave)


def check_sequence(operations: list[dict], order: tuple[str, ...]) -> None:
    """Execution ``order``, and each network/bond/device at most once per kind
    (a network may be removed and added: that is an edit)."""
    last, seen = 0, set()
    for op in operations:
        kind, subject = op["op"], op.get("name", op.get("device"))
        index = order.index(kind)
        if index < last:
            raise _bad(f"{kind} {subject} comes after a {order[last]} (out of order)")
        last = index
        key = (kind if kind in ("set_mtu", "remove_network", "add_network") else "bond", subject)
        if key in seen:
            raise _bad(f"{kind} {subject}: a second operation on the same {key[0]} (duplicate)")
        seen.add(key)


def touched_devices(operations: list[dict]) -> set[str]:
    """The NICs and bonds whose MTU a plan may set (``compute_plan``'s rule)."""
    touched = {op["name"] for op in operations if op["op"] in ("add_bond", "edit_bond")}
    for op in operations:
        if op["op"] in ("add_network", "remove_network"):
            lower = op["attrs"].get("nic") or op["attrs"].get("bonding")
            if lower:
                touched.add(lower)
    return touched - {op["name"] for op in operations if op["op"] == "remove_bond"}


def check_mtus(operations: list[dict], running: Mapping) -> None:
    """set_mtu only on a device the plan uses, to the MTU its final users need.

    The value follows from the plan's expected running configuration (which
    superd checks against its own): no plan may set ``lo``, another NIC or a
    bridge, nor give a NIC an MTU no network on it asked for.
    """
    mtu_ops = [op for op in operations if op["op"] == "set_mtu"]
    if not mtu_ops:  # most plans: no walk over the host's networks
        return
    touched = touched_devices(operations)
    targets = compute_lower_mtus(running.get("networks", {}), running.get("bonds", {}))
    for op in mtu_ops:
        device = op["device"]
        if device not in touched:
            raise _bad(f"set_mtu {device}: no operation of the plan uses that device")
        wanted = targets.get(device, DEFAULT_MTU)
        if op["mtu"] != wanted:
            raise _bad(
                f"set_mtu {device}: mtu {op['mtu']} is not {wanted}, what its networks need"
            )


def check_final_state(operations: list[dict], running: Mapping) -> None:
    """The expected running configuration, where the plan's additions change it:
    one untagged network and unique tags per NIC/bond, one default route, a
    NIC either a bond's slave or a network's, never both.

    Only what the plan adds is judged, so an inconsistency that predates the
    plan (running configuration of an older version) does not block every
    later change; frontd's validation applies the same rules to additions.
    """
    nets, bonds = running.get("networks", {}), running.get("bonds", {})
    added_nets = {op["name"] for op in operations if op["op"] == "add_network"}
    added_bonds = {op["name"] for op in operations if op["op"] in ("add_bond", "edit_bond")}
    lowers = {nets[n].get("nic") or nets[n].get("bonding") for n in added_nets if n in nets}
    lowers -= {None, ""}  # a network on no NIC or bond shares nothing
    if lowers:
        validate_sharing(
            {n: a for n, a in nets.items() if (a.get("nic") or a.get("bonding")) in lowers}
        )
    if any(nets.get(n, {}).get("defaultRoute") for n in added_nets):
        holders = sorted(n for n, a in nets.items() if a.get("defaultRoute"))
        if len(holders) > 1:
            raise _bad(f"only one network may hold the default route, got {', '.join(holders)}")
    owner: dict[str, str] = {}
    for bond, attrs in sorted(bonds.items()):
        for slave in attrs.get("nics", ()):
            if slave in owner and (bond in added_bonds or owner[slave] in added_bonds):
                raise _bad(
                    f"bond {bond}: nic {slave} is already a slave of {owner[slave]}",
                    ErrorCode.USED_NIC,
                )
            owner.setdefault(slave, bond)
    # only an added network, or any on a NIC of an added bond, can break the rule
    judged = sorted(nets) if owner and added_bonds else sorted(added_nets & nets.keys())
    for name in judged if owner else ():
        attrs = nets[name]
        nic = attrs.get("nic")
        if nic in owner and (name in added_nets or owner[nic] in added_bonds):
            raise _bad(
                f"network {name}: nic {nic} is a slave of bond {owner[nic]}", ErrorCode.USED_NIC
            )


def check_plan_devices(
    operations: list[dict], nics: Collection[str], bonds: Collection[str]
) -> None:
    """What only the host can tell: each NIC a plan builds on is a NIC.

    ``nics`` and ``bonds``: the names the host's capabilities report as such.
    For superd to call with its own netinfo before applying (frontd ran the
    same rule): a plan naming ``lo``, a bridge or a VLAN device as a
    network's NIC or a bond's slave is refused before the kernel sees it.
    Removals are not checked: their NIC may be gone already.
    """
    new_bonds = {op["name"] for op in operations if op["op"] == "add_bond"}
    for op in operations:
        if op["op"] == "add_network":
            nic = op["attrs"].get("nic")
            if nic is not None and nic not in nics:
                raise _bad(f"network {op['name']}: unknown nic {nic}", ErrorCode.BAD_NIC)
        elif op["op"] in ("add_bond", "edit_bond"):
            for slave in op["attrs"].get("nics", ()):
                if slave not in nics:
                    raise _bad(f"bond {op['name']}: unknown nic {slave}", ErrorCode.BAD_NIC)
        elif op["op"] == "set_mtu":
            device = op["device"]
            if not (device in nics or device in bonds or device in new_bonds):
                raise _bad(f"set_mtu {device}: not a NIC or a bond", ErrorCode.BAD_NIC)


def check_plan_owned(operations: list[dict], running: Mapping, netinfo: NetinfoSnapshot) -> None:
    """What frontd checked against the capabilities, again with superd's own
    netinfo (``netinfo.owned``: the devices with netreload's mark): no plan
    builds a network on a bridge or VLAN device another agent created, nor
    defines, changes or removes such a bond (``shared.netmodel.ownership``).
    ``running``: the running configuration the plan starts from."""
    added = {op["name"]: op["attrs"] for op in operations if op["op"] == "add_network"}
    bonds = [op["name"] for op in operations if op["op"] in BOND_OPS]
    check_unowned(added, bonds, running, netinfo.device_kinds(), netinfo.owned)
