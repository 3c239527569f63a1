"""Which names may become a device's directory under
/proc/sys/net/ipv6/conf: a NetworkManager profile's name is given IPv6 back
through that path, so it must be one device's, and never all or default."""

from __future__ import annotations

import pytest

from shared.netmodel.names import is_device_conf_name


@pytest.mark.parametrize("name", ["eth0", "bond0.20", "br_net-1", "veth:0", "a" * 15])
def test_a_device_name_is_a_conf_directory(name: str) -> None:
    assert is_device_conf_name(name)


@pytest.mark.parametrize("name", ["../../x", "", "..", ".", "a/b", "a" * 16, "-x", " eth0", None])
def test_a_name_that_is_not_a_device_is_not_a_conf_directory(name: object) -> None:
    assert not is_device_conf_name(name)


@pytest.mark.parametrize("name", ["all", "default"])
def test_the_directories_of_every_device_and_of_new_ones_are_not_a_device(name: str) -> None:
    """Writing conf/all/disable_ipv6 would switch IPv6 on every device."""
    assert not is_device_conf_name(name)
