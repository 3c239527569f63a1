"""Settings of NetworkManager profiles between plain Python and D-Bus types.

:func:`to_dbus` gives each key the D-Bus type NetworkManager expects
(:data:`SIGNATURES`: dbus-python guesses "i" for every Python int, where
NetworkManager wants "u" for an MTU, "q" for a bridge's forward delay…);
:func:`from_dbus` unwraps a reply into ``str``, ``int``, ``bool``,
``bytes``, lists and dicts. dbus-python is imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import ErrorCode, NetError

#: (setting, key) → D-Bus signature, for the keys whose type dbus-python
#: cannot guess (a Python int is "i"; NetworkManager wants "u" for these)
SIGNATURES: dict[tuple[str, str], str] = {
    ("802-3-ethernet", "mtu"): "u",
    ("bridge", "forward-delay"): "q",
    ("bridge", "hello-time"): "q",
    ("bridge", "max-age"): "q",
    ("bridge", "ageing-time"): "u",
    ("bridge", "priority"): "q",
    ("bridge", "group-forward-mask"): "u",
    ("bridge", "multicast-hash-max"): "u",
    ("bridge", "multicast-last-member-count"): "u",
    ("bridge", "multicast-startup-query-count"): "u",
    ("bridge", "multicast-router"): "s",
    ("bridge", "group-address"): "ay",
    ("bridge", "vlan-default-pvid"): "u",
    ("bridge", "multicast-last-member-interval"): "t",
    ("bridge", "multicast-membership-interval"): "t",
    ("bridge", "multicast-querier-interval"): "t",
    ("bridge", "multicast-query-interval"): "t",
    ("bridge", "multicast-query-response-interval"): "t",
    ("bridge", "multicast-startup-query-interval"): "t",
    ("vlan", "id"): "u",
    ("vlan", "flags"): "u",
    ("connection", "autoconnect-priority"): "i",
    ("connection", "wait-device-timeout"): "i",
    ("ipv4", "route-table"): "u",
    ("ipv6", "route-table"): "u",
    ("ipv4", "dns"): "au",
    ("ipv4", "dhcp-timeout"): "i",
    ("ipv6", "dns"): "aay",
    ("ipv6", "addr-gen-mode"): "i",
    ("ipv4", "route-metric"): "x",
    ("ipv6", "route-metric"): "x",
    ("ipv4", "routing-rules"): "aa{sv}",
    ("ipv4", "route-data"): "aa{sv}",
    ("ipv6", "route-data"): "aa{sv}",
    ("ipv4", "address-data"): "aa{sv}",
    ("ipv6", "address-data"): "aa{sv}",
    ("user", "data"): "a{ss}",
    ("bond", "options"): "a{ss}",
    ("ethtool", "dummy"): "s",
}
#: keys inside address-data, route-data and routing-rules entries
_ENTRY_SIGNATURES = {
    "prefix": "u",
    "metric": "u",
    "table": "u",
    "priority": "u",
    "from-len": "y",
    "to-len": "y",
    "family": "i",
    "action": "y",
}


def import_dbus() -> Any:
    try:
        import dbus
    except ImportError as error:
        raise NetError(
            ErrorCode.NM_CONNECTION, f"NetworkManager: dbus-python is not installed ({error})"
        ) from None
    return dbus


def _typed(dbus: Any, value: Any, signature: str | None) -> Any:
    if signature == "u":
        return dbus.UInt32(value)
    if signature == "q":
        return dbus.UInt16(value)
    if signature == "t":
        return dbus.UInt64(value)
    if signature == "x":
        return dbus.Int64(value)
    if signature == "y":
        return dbus.Byte(value)
    if signature == "i":
        return dbus.Int32(value)
    if signature == "ay":
        return dbus.ByteArray(bytes(value))
    if signature == "au":
        return dbus.Array([dbus.UInt32(v) for v in value], signature="u")
    if signature == "aay":
        return dbus.Array([dbus.ByteArray(bytes(v)) for v in value], signature="ay")
    if signature == "a{ss}":
        return dbus.Dictionary({str(k): str(v) for k, v in value.items()}, signature="ss")
    if signature == "aa{sv}":
        return dbus.Array(
            [
                dbus.Dictionary(
                    {k: _typed(dbus, v, _ENTRY_SIGNATURES.get(k)) for k, v in e.items()},
                    signature="sv",
                )
                for e in value
            ],
            signature="a{sv}",
        )
    if isinstance(value, bool):
        return dbus.Boolean(value)
    if isinstance(value, bytes):
        return dbus.ByteArray(value)
    if isinstance(value, int):
        return dbus.Int32(value)
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return dbus.Array([str(v) for v in value], signature="s")
        return dbus.Array(value)
    return value


def to_dbus(settings: Mapping[str, Mapping[str, Any]]) -> Any:
    """Plain settings → ``a{sa{sv}}`` with NetworkManager's types."""
    dbus = import_dbus()
    return dbus.Dictionary(
        {
            name: dbus.Dictionary(
                {
                    key: _typed(dbus, value, SIGNATURES.get((name, key)))
                    for key, value in setting.items()
                },
                signature="sv",
            )
            for name, setting in settings.items()
        },
        signature="sa{sv}",
    )


def from_dbus(value: Any) -> Any:
    """A reply's D-Bus values as plain Python."""
    dbus = import_dbus()
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, dbus.ByteArray | bytes):
        return bytes(value)
    if isinstance(value, dbus.Array) and getattr(value, "signature", None) == "y":
        return bytes(bytearray(value))
    if isinstance(value, dict):
        return {str(k): from_dbus(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_dbus(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value
