"""What one request, and the host as a whole, may carry: bounds that keep
valid-looking requests from inflating the daemons (free-form attributes are
kept as sent, in every plan, in superd's running configuration and on disk)."""

from __future__ import annotations

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.canonical import (
    MAX_BOND_NICS,
    MAX_BOND_OPTIONS,
    MAX_FREE_FORM_BYTES,
    MAX_NAMESERVERS,
    canonicalize_bond,
    canonicalize_network,
)
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.request import MAX_FREE_FORM_PER_REQUEST, canonicalize_request
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from shared.netmodel.validation import MAX_FREE_FORM_PER_HOST
from shared.wire import to_json


def custom_of(size: int) -> dict:
    """A custom property whose JSON is exactly ``size`` bytes."""
    value = {"note": ""}
    value["note"] = "x" * (size - len(to_json(value)))
    assert len(to_json(value)) == size
    return value


def test_a_custom_attribute_up_to_its_limit_is_kept_as_sent() -> None:
    # hostQos is bounded the same way but has a shape (test_host_qos.py)
    value = custom_of(MAX_FREE_FORM_BYTES)
    assert canonicalize_network("n", {"nic": "veth_0", "custom": value})["custom"] == value


@pytest.mark.parametrize("key", ["custom", "hostQos"])
def test_a_free_form_attribute_over_its_limit_is_refused(key: str) -> None:
    with pytest.raises(NetError) as caught:
        canonicalize_network("n", {"nic": "veth_0", key: custom_of(MAX_FREE_FORM_BYTES + 1)})
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert key in caught.value.message and str(MAX_FREE_FORM_BYTES) in caught.value.message


def test_free_form_attributes_of_a_request_are_bounded_in_total() -> None:
    count = MAX_FREE_FORM_PER_REQUEST // MAX_FREE_FORM_BYTES + 1
    networks = {f"n{i}": {"nic": "veth_0", "vlan": i + 1, "custom": custom_of(MAX_FREE_FORM_BYTES)}
                for i in range(count)}  # fmt: skip
    with pytest.raises(NetError) as caught:
        canonicalize_request(networks, {}, {})
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert str(MAX_FREE_FORM_PER_REQUEST) in caught.value.message


def test_free_form_attributes_within_the_total_are_accepted() -> None:
    count = MAX_FREE_FORM_PER_REQUEST // MAX_FREE_FORM_BYTES
    networks = {f"n{i}": {"nic": "veth_0", "vlan": i + 1, "custom": custom_of(MAX_FREE_FORM_BYTES)}
                for i in range(count)}  # fmt: skip
    assert len(canonicalize_request(networks, {}, {}).added_networks) == count


def test_more_nameservers_than_the_limit_is_a_bad_address() -> None:
    servers = [f"192.0.2.{i}" for i in range(MAX_NAMESERVERS + 1)]
    with pytest.raises(NetError) as caught:
        canonicalize_network("n", {"nic": "veth_0", "nameservers": servers})
    assert caught.value.code == ErrorCode.BAD_ADDR
    servers.pop()
    assert canonicalize_network("n", {"nic": "veth_0", "nameservers": servers})["nameservers"]


def test_a_bond_of_more_nics_than_the_limit_is_a_bad_bonding() -> None:
    nics = [f"eth{i}" for i in range(MAX_BOND_NICS + 1)]
    with pytest.raises(NetError) as caught:
        canonicalize_bond("bond0", {"nics": nics})
    assert caught.value.code == ErrorCode.BAD_BONDING


def test_bond_options_longer_than_the_limit_are_a_bad_bonding() -> None:
    options = "mode=4 " + " " * MAX_BOND_OPTIONS
    with pytest.raises(NetError) as caught:
        canonicalize_bond("bond0", {"nics": ["eth0", "eth1"], "options": options})
    assert caught.value.code == ErrorCode.BAD_BONDING
    assert "at most" in caught.value.message


# -- the whole host: what requests leave behind together ------------------------------


def host_full_of_custom(extra: int = 0) -> RunningConfig:
    """Nic-less networks whose custom properties fill the host's bound exactly
    (``extra`` more: a host that got past it before the bound existed)."""
    count = MAX_FREE_FORM_PER_HOST // MAX_FREE_FORM_BYTES + extra
    networks = {
        f"h{i}": canonicalize_network(f"h{i}", {"custom": custom_of(MAX_FREE_FORM_BYTES)})
        for i in range(count)
    }
    return RunningConfig.from_dict({"networks": networks, "bonds": {}})


def plan_on(running: RunningConfig, networks: dict) -> None:
    netinfo = NetinfoSnapshot.from_caps({"nics": {"veth_0": {"mtu": 1500}}})
    plan_setup_networks(networks, {}, {"connectivityCheck": False}, netinfo, running)


def test_custom_properties_past_the_hosts_total_are_refused() -> None:
    with pytest.raises(NetError) as caught:
        plan_on(host_full_of_custom(), {"extra": {"custom": {"ethtool_opts": "-K eth0 tso off"}}})
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert str(MAX_FREE_FORM_PER_HOST) in caught.value.message


def test_a_host_past_its_total_still_takes_networks_without_custom_and_removals() -> None:
    over = host_full_of_custom(extra=1)
    plan_on(over, {"plain": {"nic": "veth_0"}})
    plan_on(over, {"h0": {"remove": True}})


def test_replacing_a_networks_custom_counts_only_the_new_one() -> None:
    plan_on(host_full_of_custom(), {"h0": {"custom": custom_of(MAX_FREE_FORM_BYTES)}})
