"""Which kernel devices are netreload's, and the requests that would take
over one that is not (pure: plain data in, ``NetError`` out).

netreload creates three kinds of kernel devices: bridges (a bridged
network), VLAN devices (a network with ``vlan``) and bonds. Each one it
creates carries the interface alias (``IFLA_IFALIAS``, ``ip link show``
prints ``alias netreload``) :data:`OWNER_ALIAS`, set by the iproute2
configurator right after creating it; Open vSwitch rows carry
``external_ids:netreload`` the same way (``configurators.ovs_layout``).
Only a device with the mark is ever deleted or reconfigured as a bridge,
VLAN device or bond of netreload's: another agent's (libvirt's ``virbr0``,
an administrator's bond) is never taken over.

The upgrade rule (superd at start-up, :func:`named_devices`): a device of
the right kind that netreload's own running configuration names — the
bridges, VLAN devices and bonds an older version created before devices
were marked, or one created just before a crash cut the transaction short
of marking it — gets the mark; from then on only the mark counts.

A request is refused before any change when it would reuse an existing
device that is not netreload's (:func:`check_unowned`, run by frontd on
the capabilities and by superd on its own netinfo):

* a bridged network named like such a bridge: 28 ``USED_BRIDGE``
  ("Network already exists", the production agent's answer);
* a network whose VLAN device (``nic.tag``) exists and is not netreload's:
  24 ``USED_NIC`` (the NIC's tag is in use);
* a bond defined (added or edited) or removed while such a bond of that
  name exists: 31 ``USED_BOND``.

A network may still sit on a bond netreload does not define (the bond is
then used like a NIC: enslaved to the network's bridge, never deleted).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from shared.errors import ErrorCode, NetError
from shared.netmodel.names import vlan_device_name

OWNER_ALIAS = "netreload"


def owned_links(links: Iterable[Mapping]) -> frozenset[str]:
    """Names of the links (plain link dicts with ``alias``) carrying the mark."""
    return frozenset(link["name"] for link in links if link.get("alias") == OWNER_ALIAS)


def network_devices(name: str, attrs: Mapping) -> dict[str, str]:
    """The kernel devices a legacy network has of its own: {name: kind}."""
    if attrs.get("switch", "legacy") == "ovs":
        return {}
    out: dict[str, str] = {}
    lower = attrs.get("nic") or attrs.get("bonding")
    if lower and attrs.get("vlan") is not None:
        out[vlan_device_name(lower, int(attrs["vlan"]))] = "vlan"
    if attrs.get("bridged", True):
        out[name] = "bridge"
    return out


def named_devices(running: Mapping) -> dict[str, str]:
    """{device: kind} of the bridges, VLAN devices and bonds a running
    configuration (``{"networks": …, "bonds": …}``) names."""
    out: dict[str, str] = {}
    for name, attrs in running.get("networks", {}).items():
        out.update(network_devices(name, attrs))
    for name, attrs in running.get("bonds", {}).items():
        if attrs.get("switch", "legacy") != "ovs":
            out[name] = "bond"
    return out


def check_unowned(
    added_networks: Mapping[str, Mapping],
    bonds: Collection[str],
    running: Mapping,
    existing: Mapping[str, str | None],
    owned: Collection[str],
) -> None:
    """Refuse what would reuse a device that exists and is not netreload's.

    ``added_networks``: networks the request adds or edits (canonical
    attributes); ``bonds``: bonds it adds, edits or removes; ``running``: the
    running configuration it starts from; ``existing``: {device: kind} on
    the host (``None`` for a NIC); ``owned``: the devices with the mark.
    A network already running keeps its bridge (an edit removes it first);
    a VLAN device another running network has is netreload's.
    """
    running_nets = running.get("networks", {})
    named: dict[str, str] | None = None  # the whole host's: only when needed
    for name, attrs in sorted(added_networks.items()):
        for device, kind in network_devices(name, attrs).items():
            if device not in existing or device in owned:
                continue
            if kind == "bridge" and name not in running_nets:
                if existing[device] != "bridge":
                    raise NetError(
                        ErrorCode.BAD_BRIDGE,
                        f"network {name}: a device of that name exists and is not a bridge",
                    )
                raise NetError(
                    ErrorCode.USED_BRIDGE,
                    f"Network already exists ({name}): bridge {name} was not created by"
                    " netreload",
                )
            if kind == "vlan" and named is None:
                named = named_devices(running)
            if kind == "vlan" and device not in named:
                lower = attrs.get("nic") or attrs.get("bonding")
                raise NetError(
                    ErrorCode.USED_NIC,
                    f"network {name}: {lower} already carries VLAN device {device}, which"
                    " netreload did not create",
                )
    for bond in sorted(bonds):
        if bond in existing and bond not in owned and bond not in running.get("bonds", {}):
            raise NetError(
                ErrorCode.USED_BOND,
                f"bond {bond} exists and was not created by netreload: it is not changed",
            )


def taken_over(
    wanted: Mapping,
    running: Mapping,
    existing: Mapping[str, str | None],
    owned: Collection[str],
) -> tuple[dict[str, NetError], dict[str, NetError]]:
    """The networks and bonds of ``wanted`` (``{"networks": …, "bonds": …}``)
    that :func:`check_unowned` refuses one by one, as ({network: error},
    {bond: error}); a network on such a bond is refused with the bond's
    error. restore-nets builds every other one: another agent taking one
    network's name at boot does not keep the host without the rest."""
    bonds: dict[str, NetError] = {}
    for name in sorted(wanted.get("bonds", {})):
        try:
            check_unowned({}, [name], running, existing, owned)
        except NetError as error:
            bonds[name] = error
    networks: dict[str, NetError] = {}
    for name, attrs in sorted(wanted.get("networks", {}).items()):
        if attrs.get("bonding") in bonds:
            networks[name] = bonds[attrs["bonding"]]
            continue
        try:
            check_unowned({name: attrs}, [], running, existing, owned)
        except NetError as error:
            networks[name] = error
    return networks, bonds
