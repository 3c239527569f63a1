"""Profile settings between plain Python and the D-Bus types NetworkManager
expects (pure logic: dbus-python's types, no bus)."""

from __future__ import annotations

import pytest

dbus = pytest.importorskip("dbus")

from configurators.nm_types import from_dbus, to_dbus  # noqa: E402


def test_keys_networkmanager_types_unsigned_are_sent_unsigned() -> None:
    settings = to_dbus(
        {"802-3-ethernet": {"mtu": 9000}, "bridge": {"forward-delay": 15}, "vlan": {"id": 20}}
    )
    assert isinstance(settings["802-3-ethernet"]["mtu"], dbus.UInt32)
    assert isinstance(settings["bridge"]["forward-delay"], dbus.UInt16)
    assert isinstance(settings["vlan"]["id"], dbus.UInt32)


def test_address_data_entries_carry_an_unsigned_prefix() -> None:
    settings = to_dbus({"ipv4": {"address-data": [{"address": "10.0.0.1", "prefix": 24}]}})
    (entry,) = settings["ipv4"]["address-data"]
    assert isinstance(entry["prefix"], dbus.UInt32) and entry["address"] == "10.0.0.1"


def test_booleans_stay_booleans_and_dns_servers_are_integers() -> None:
    settings = to_dbus({"bridge": {"stp": False}, "ipv4": {"dns": [0x0100000A]}})
    assert isinstance(settings["bridge"]["stp"], dbus.Boolean)
    assert settings["ipv4"]["dns"].signature == "u"


def test_a_reply_unwraps_to_plain_python() -> None:
    reply = dbus.Dictionary(
        {
            "connection": dbus.Dictionary(
                {
                    "id": dbus.String("br0"),
                    "autoconnect": dbus.Boolean(False),
                    "uuid": dbus.String("u"),
                    "mtu": dbus.UInt32(1500),
                },
                signature="sv",
            )
        },
        signature="sa{sv}",
    )
    plain = from_dbus(reply)
    assert plain == {"connection": {"id": "br0", "autoconnect": False, "uuid": "u", "mtu": 1500}}
    assert type(plain["connection"]["autoconnect"]) is bool
    assert type(plain["connection"]["mtu"]) is int
