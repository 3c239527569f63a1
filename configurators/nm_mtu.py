"""The MTU of a NIC or bond outside the change, in its NetworkManager profile.

A change can set the MTU of a device whose profile it does not otherwise
touch (a VLAN with a bigger MTU added on a NIC, a network removed so that
its bond goes back to 1500): :meth:`configurators.nm.NmConfigurator.set_mtu`
sets the kernel's, and the profile netreload holds for the device — a
bond's slaves' profiles too, their MTU is the bond's — follows here
(``Update2`` in memory, autoconnect blocked, no reactivation: the kernel has
the MTU already), so that a later reactivation or rollback does not bring
the old one back. A device without a profile of netreload's (a NIC under a
VLAN only) keeps the kernel's MTU alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from configurators.nm_dbus import MARK_KEY, NmClient
from configurators.nm_profiles import profile_uuid

ETHERNET = "802-3-ethernet"
#: keys GetSettings shows next to their replacement (``address-data``,
#: ``route-data``): not sent back
_DEPRECATED = {"ipv4": ("addresses", "routes"), "ipv6": ("addresses", "routes")}


def with_mtu(settings: Mapping[str, Mapping[str, Any]], mtu: int) -> dict[str, dict[str, Any]]:
    """A held profile's settings (``GetSettings``) with ``mtu``, to be sent
    back whole by ``Update2`` (without what NetworkManager keeps itself:
    the activation ``timestamp``, empty lists and maps, the deprecated
    address and route keys)."""
    # an empty list or dict is the key's default, and gives D-Bus no type
    out = {
        name: {k: v for k, v in setting.items() if k != "timestamp" and v not in ([], {})}
        for name, setting in settings.items()
    }
    for name, keys in _DEPRECATED.items():
        for key in keys:
            out.get(name, {}).pop(key, None)
    out[ETHERNET] = {**out.get(ETHERNET, {}), "mtu": mtu}
    return out


def stale_profiles(
    client: NmClient, kernel: Any, mtus: Mapping[str, int], sent: Collection[str] = ()
) -> dict[str, tuple[str, dict[str, dict[str, Any]]]]:
    """{device: (profile path, settings with the new MTU)} of netreload's
    profiles whose MTU differs from what ``mtus`` sets: each device's, and
    a bond's slaves', but those the change sends or deletes anyway
    (``sent``)."""
    found = {}
    for device, mtu in sorted(mtus.items()):
        names = [device]
        dev = kernel.device(device)
        if dev is not None and dev.get("kind") == "bond":
            names += sorted(port["name"] for port in kernel.ports_of(dev["index"]))
        for name in names:
            if name in sent:
                continue
            path = client.by_uuid(profile_uuid(name))
            settings = client.settings(path) if path is not None else None
            if settings is None or settings.get("user", {}).get("data", {}).get(MARK_KEY) is None:
                continue
            if int(settings.get(ETHERNET, {}).get("mtu") or 0) != mtu:
                found[name] = (path, with_mtu(settings, mtu))
    return found
