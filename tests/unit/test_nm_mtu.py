"""A held profile sent back with another MTU (configurators.nm_mtu.with_mtu)."""

from __future__ import annotations

from configurators.nm_mtu import with_mtu

HELD = {
    "connection": {"id": "eth0", "type": "802-3-ethernet", "timestamp": 1796592340,
                   "permissions": []},
    "802-3-ethernet": {"mtu": 1500, "s390-options": {}, "mac-address-blacklist": []},
    "ipv4": {"method": "manual", "address-data": [{"address": "192.0.2.5", "prefix": 24}],
             "addresses": [[84017344, 24, 0]]},
    "proxy": {},
}  # fmt: skip


def test_the_mtu_is_replaced_and_the_rest_kept() -> None:
    sent = with_mtu(HELD, 9000)
    assert sent["802-3-ethernet"] == {"mtu": 9000}
    assert sent["ipv4"] == {"method": "manual",
                            "address-data": [{"address": "192.0.2.5", "prefix": 24}]}  # fmt: skip
    assert sent["connection"] == {"id": "eth0", "type": "802-3-ethernet"}

