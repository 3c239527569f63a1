"""Sending a transaction's difference to NetworkManager (for
:meth:`configurators.nm.NmConfigurator.flush`, over :mod:`configurators.nm_dbus`).

* :func:`deactivate_and_delete`: the profiles no longer wanted, when they
  are netreload's (marked, :data:`configurators.nm_dbus.MARK_KEY`) and still
  the network's (a NIC another network took keeps its profile), deactivated
  (awaited) and deleted;
* :func:`add_and_activate`: the profiles wanted and not held as wanted added
  or updated in memory, activated in order (a port after its bridge), the
  activations awaited together; a failed activation is code 29. The
  bridges, bonds and VLANs NetworkManager created then get netreload's
  kernel mark, and what NetworkManager sets otherwise than the iproute2
  configurator is put back (:func:`as_the_kernel_has_it`).

Unchanged profiles are neither updated nor reactivated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from configurators.nm_dbus import DEACTIVATED, MARK_KEY, NmClient
from configurators.nm_lease_rules import route_table
from configurators.nm_profiles import WantedProfile, activation_order, same_settings
from configurators.nm_profiles_bond import with_role
from shared.errors import ErrorCode, NetError

log = logging.getLogger("netreload.nm")

#: a profile dropped whatever its master
ANY = "*"
NAME_STATES = {1: "activating", 2: "activated", 3: "deactivating", 4: "deactivated"}


def deactivate_and_delete(
    client: NmClient,
    drop: Mapping[str, str | None],
    held: Mapping[str, str | None],
    held_tables: dict[str, int],
) -> list[str]:
    """Deactivate (awaited) and delete the profiles ``drop`` names that
    netreload made (``held``: their paths) and that still have the master
    ``drop`` gives (``ANY``: whatever it is); ``held_tables`` gets the
    route table of each one held. The names whose profiles were deleted."""
    active, paths = {}, {}
    for name in drop:
        path = held.get(name)
        if path is None:
            continue
        settings = client.settings(path)
        if settings is None:
            continue
        held_tables[name] = route_table(settings)
        if settings.get("user", {}).get("data", {}).get(MARK_KEY) is None:
            log.warning("%s: a NetworkManager profile netreload did not make: left", name)
            continue
        master = settings.get("connection", {}).get("master") or None
        if drop[name] is not ANY and master != drop[name]:
            continue  # another network's now (its port, or its own NIC)
        paths[name] = path
        device = client.device(name)
        if device is not None:
            state = client.device_state(device)
            if state.get("ActiveConnection", "/") not in ("/", None):
                active[name] = state["ActiveConnection"]
    for path in active.values():
        client.deactivate(path)
    left = client.wait_active(active, want=DEACTIVATED)
    if left:
        raise NetError(
            ErrorCode.FAILED_IFUP,
            f"NetworkManager did not deactivate {', '.join(sorted(left))}",
        )
    for path in paths.values():
        client.delete_connection(path)
    return list(paths)


def add_and_activate(
    client: NmClient,
    kernel_side: Any,
    want: Mapping[str, WantedProfile],
    held: Mapping[str, str | None],
    held_tables: dict[str, int],
) -> None:
    """Add or update (in memory) the ``want`` profiles not held as wanted
    (``held``: their paths), activate them in order and await it; then the
    kernel side (``kernel_side``, the iproute2 configurator) marks the
    devices NetworkManager created and puts back what it changes
    (:func:`as_the_kernel_has_it`). ``held_tables`` gets the route table
    of each one held."""
    kernel = kernel_side.kernel
    changed: dict[str, str] = {}
    held_settings = {}
    for profile in want.values():
        if not profile.created:
            manage(client, profile.device)
        if profile.parent_nic is not None:  # a VLAN's NIC: managed and up, no profile
            manage(client, profile.parent_nic)
            kernel.ensure_up(
                kernel.require(profile.parent_nic, ErrorCode.BAD_NIC, "VLAN lower device")
            )
        path = held.get(profile.device)
        held_settings[profile.device] = client.settings(path) if path is not None else None
        held_tables[profile.device] = route_table(held_settings[profile.device])
    order = activation_order(
        with_role(profile, held_settings[profile.device]) for profile in want.values()
    )
    for profile in order:
        path = held.get(profile.device)
        settings = held_settings[profile.device]
        if settings is None:
            changed[profile.device] = client.add_connection(profile.settings)
            continue
        if settings.get("user", {}).get("data", {}).get(MARK_KEY) is None:
            raise NetError(
                ErrorCode.USED_BRIDGE if profile.created else ErrorCode.USED_NIC,
                f"{profile.device}: a NetworkManager profile netreload did not "
                "make has its UUID: not taken over",
            )
        if same_settings(profile.settings, settings) and is_active(client, profile):
            continue
        client.update_connection(path, profile.settings)
        changed[profile.device] = path
    for profile in order:  # a port follows its bridge's reactivation
        if profile.device not in changed and set(profile.after) & set(changed):
            changed[profile.device] = held[profile.device] or ""
    active = {
        p.device: client.activate(changed[p.device]) for p in order if p.device in changed
    }
    failed = client.wait_active(active, layer2=[p.device for p in order if p.layer2])
    if failed:
        shown = ", ".join(
            f"{name} ({NAME_STATES.get(state, state)})"
            for name, state in sorted(failed.items())
        )
        raise NetError(ErrorCode.FAILED_IFUP, f"NetworkManager could not activate {shown}")
    kernel.cache_addresses(kernel.caching)  # devices came and went
    for profile in order:
        if profile.created:
            dev = kernel.device(profile.device)
            if dev is not None and not kernel.owned(dev):
                kernel.mark(dev)
        as_the_kernel_has_it(kernel_side, profile)
        if profile.settings.get("ipv6", {}).get("method") in ("ignore", "auto"):
            # IPv6 autoconf: the kernel's SLAAC, as with iproute2
            kernel_side.ip_applier.set_autoconf(profile.device, True)


def as_the_kernel_has_it(kernel_side: Any, profile: WantedProfile) -> None:
    """Put back what NetworkManager changes and the iproute2 configurator
    leaves or sets otherwise, so that the report does not depend on the
    configurator: a bridge's forward delay with STP off, and a bridge
    port's or a bond's without a network IPv6 sysctls (NetworkManager
    turns accept_ra off on every device it manages, and leaves IPv6
    disabled on a NIC whose bridgeless network became bridged; such a
    device keeps the namespace's defaults)."""
    kernel = kernel_side.kernel
    dev = kernel.device(profile.device)
    if dev is None:
        return
    if profile.forward_delay is not None:
        if dev["info"].get("br_forward_delay") != profile.forward_delay:
            kernel.set_link(
                dev,
                f"set forward_delay {profile.forward_delay}",
                kind="bridge",
                br_forward_delay=profile.forward_delay,
            )
    if profile.settings["connection"].get("master") or profile.plain:
        kernel_side.give_back_ipv6(profile.device, autoconf=True)


def manage(client: NmClient, name: str) -> None:
    device = client.device(name)
    if device is None:
        raise NetError(ErrorCode.BAD_NIC, f"NIC {name}: NetworkManager does not know it")
    if not client.managed(device):
        client.set_managed(device, True)


def is_active(client: NmClient, profile: WantedProfile) -> bool:
    device = client.device(profile.device)
    if device is None:
        return False
    state = client.device_state(device)
    return int(state.get("State", 0)) == 100  # NM_DEVICE_STATE_ACTIVATED
