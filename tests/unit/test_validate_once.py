"""frontd's plan does each check and view once per network (a big request
of 1,000 networks paid for each again, benchmarks/README.md round 10): the
request's views are computed once, a bridged network's name checked once
by the model; what is refused is refused as before."""

from __future__ import annotations

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel import bridge, network
from shared.netmodel.ipconfig import IpConfig, IPv6
from shared.netmodel.network import build_network
from shared.netmodel.request import canonicalize_request


def test_the_requests_added_networks_are_computed_once() -> None:
    request = canonicalize_request(
        {"bn1": {"bridged": True}, "bn2": {"remove": True}}, {}, {}
    )  # fmt: skip
    assert request.added_networks is request.added_networks
    assert list(request.added_networks) == ["bn1"]
    assert request.removed_networks == ["bn2"]


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    check = network.validate_bridge_name

    def counted(name: object) -> str:
        seen.append(str(name))
        return check(name)

    monkeypatch.setattr(network, "validate_bridge_name", counted)
    monkeypatch.setattr(bridge, "validate_bridge_name", counted)
    return seen


def test_a_bridged_network_checks_its_bridge_name_once(monkeypatch) -> None:
    seen = _counted(monkeypatch)
    build_network("bn1", {"bridged": True, "mtu": 1500}).validate()
    assert seen == ["bn1"]


def test_a_bridge_on_its_own_still_checks_its_name(monkeypatch) -> None:
    seen = _counted(monkeypatch)
    bridge.Bridge(name="bn1").validate()
    assert seen == ["bn1"]


@pytest.mark.parametrize("name", ["bad:name", "-bn", "a" * 16, "bn 1"])
def test_a_bridged_network_with_a_bad_name_is_refused_as_a_bad_bridge(name) -> None:
    with pytest.raises(NetError) as error:
        build_network(name, {"bridged": True, "mtu": 1500}).validate()
    assert error.value.code == ErrorCode.BAD_BRIDGE


def test_a_bridge_with_a_bad_name_is_refused_on_its_own() -> None:
    with pytest.raises(NetError) as error:
        bridge.Bridge(name="bad:name").validate()
    assert error.value.code == ErrorCode.BAD_BRIDGE


def test_a_network_without_ipv6_gets_the_ipv6_config_it_always_had() -> None:
    attrs = {"ipaddr": "10.0.0.1", "netmask": "255.255.255.0", "dhcpv6": False,
             "ipv6autoconf": False}  # fmt: skip
    assert IpConfig.from_attrs(attrs).ipv6 == IPv6(None, None, False, False)
    assert IpConfig.from_attrs({}).ipv6 == IPv6()
    dynamic = IpConfig.from_attrs({"ipv6autoconf": True})
    assert dynamic.ipv6.autoconf is True and dynamic.ipv6.is_dynamic
