"""Request attributes → canonical attributes, as golden cases plus rules.

A golden case is a folder under golden/canonical/ holding request.json (one
network's attributes) and expected.json; adding a case is adding files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.canonical import (
    canonicalize_bond,
    canonicalize_network,
    canonicalize_options,
)

GOLDEN = Path(__file__).parent / "golden" / "canonical"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_golden_canonicalization(case: str) -> None:
    request = json.loads((GOLDEN / case / "request.json").read_text())
    expected = json.loads((GOLDEN / case / "expected.json").read_text())
    assert canonicalize_network("net1", request, ["192.0.2.53"]) == expected


@pytest.mark.parametrize("case", CASES)
def test_canonical_form_is_a_fixpoint(case: str) -> None:
    once = canonicalize_network(
        "net1", json.loads((GOLDEN / case / "request.json").read_text()), ["192.0.2.53"]
    )
    if once is not None:
        assert canonicalize_network("net1", once) == once


def _code(call, *args) -> ErrorCode:
    with pytest.raises(NetError) as info:
        call(*args)
    return info.value.code


def test_prefix_and_netmask_together_rejected() -> None:
    attrs = {"nic": "veth_0", "ipaddr": "10.0.0.1", "prefix": 24, "netmask": "255.0.0.0"}
    assert _code(canonicalize_network, "n", attrs) == ErrorCode.BAD_PARAMS


def test_prefix_out_of_range_is_bad_address() -> None:
    attrs = {"nic": "veth_0", "ipaddr": "10.0.0.1", "prefix": 33}
    assert _code(canonicalize_network, "n", attrs) == ErrorCode.BAD_ADDR


def test_remove_with_other_attributes_rejected() -> None:
    assert _code(canonicalize_network, "n", {"remove": True, "nic": "x"}) == 21


def test_unknown_network_attribute_rejected() -> None:
    assert _code(canonicalize_network, "n", {"nic": "veth_0", "colour": "red"}) == 21


def test_stp_on_bridgeless_network_rejected() -> None:
    attrs = {"nic": "veth_0", "bridged": False, "stp": True}
    assert _code(canonicalize_network, "n", attrs) == ErrorCode.BAD_PARAMS


def test_non_boolean_bridged_rejected() -> None:
    assert _code(canonicalize_network, "n", {"nic": "veth_0", "bridged": "maybe"}) == 21


@pytest.mark.parametrize("tag", [-1, 4095, "ten", 1.5])
def test_vlan_tag_outside_0_to_4094_is_bad_vlan(tag: object) -> None:
    assert _code(canonicalize_network, "n", {"nic": "veth_0", "vlan": tag}) == 26


@pytest.mark.parametrize("mtu", [67, 65536, "big"])
def test_mtu_out_of_range_rejected(mtu: object) -> None:
    assert _code(canonicalize_network, "n", {"nic": "veth_0", "mtu": mtu}) == 21


def test_unknown_bootproto_rejected() -> None:
    assert _code(canonicalize_network, "n", {"nic": "veth_0", "bootproto": "bootp"}) == 21


def test_unknown_switch_rejected() -> None:
    assert _code(canonicalize_network, "n", {"nic": "veth_0", "switch": "vpp"}) == 21


@pytest.mark.parametrize("prefix", ["129", "-1", "x"])
def test_ipv6_prefix_outside_0_to_128_is_bad_address(prefix: str) -> None:
    attrs = {"nic": "veth_0", "ipv6addr": f"2001:db8::1/{prefix}"}
    assert _code(canonicalize_network, "n", attrs) == ErrorCode.BAD_ADDR


def test_bond_nics_are_stored_sorted() -> None:
    bond = canonicalize_bond("bond0", {"nics": ["veth_2", "veth_0"], "options": "mode=1"})
    assert bond["nics"] == ["veth_0", "veth_2"]


def test_bond_option_spellings_compare_equal() -> None:
    one = canonicalize_bond("bond0", {"nics": ["a"], "options": "mode=802.3ad miimon=100"})
    two = canonicalize_bond("bond0", {"nics": ["a"], "options": "miimon=100  mode=4"})
    assert one == two


def test_bond_unknown_attribute_rejected() -> None:
    assert _code(canonicalize_bond, "bond0", {"nics": ["a"], "slaves": []}) == 21


def test_bond_nics_must_be_a_list_of_names() -> None:
    assert _code(canonicalize_bond, "bond0", {"nics": "veth_0"}) == ErrorCode.BAD_BONDING


def test_options_defaults() -> None:
    assert canonicalize_options({}) == {
        "connectivityCheck": True,
        "connectivityTimeout": 4,
        "commitOnSuccess": False,
        "_inRollback": False,
    }


def test_options_unknown_key_is_ignored() -> None:
    assert canonicalize_options({"reboot": True}) == canonicalize_options({})


@pytest.mark.parametrize(("sent", "taken"), [(0.1, 0), (2.9, 2), (7.0, 7), ("5", 5), (3, 3)])
def test_options_connectivity_timeout_is_cut_to_an_integer(sent: object, taken: int) -> None:
    assert canonicalize_options({"connectivityTimeout": sent})["connectivityTimeout"] == taken


@pytest.mark.parametrize("sent", ["0.1", -0.5 - 1, 3601.5, 1e300, [1], True])
def test_options_connectivity_timeout_out_of_reach_is_bad_params(sent: object) -> None:
    assert _code(canonicalize_options, {"connectivityTimeout": sent}) == ErrorCode.BAD_PARAMS


@pytest.mark.parametrize(
    "sent",
    ["2001:0db8:0000:0000:0000:0000:0000:0001/64", "2001:DB8::1/64", "2001:db8:0::0:1/64"],
)
def test_ipv6_address_is_kept_in_canonical_text(sent: str) -> None:
    attrs = canonicalize_network("n", {"nic": "veth_0", "ipv6addr": sent})
    assert attrs["ipv6addr"] == "2001:db8::1/64"


def test_ipv6_gateway_is_kept_in_canonical_text() -> None:
    attrs = {"nic": "veth_0", "ipv6addr": "2001:db8::1/64", "ipv6gateway": "2001:0DB8::00fe"}
    assert canonicalize_network("n", attrs)["ipv6gateway"] == "2001:db8::fe"


@pytest.mark.parametrize(("key", "sent", "taken"), [("mtu", 9000.0, 9000), ("vlan", 5.0, 5)])
def test_whole_floats_are_integers(key: str, sent: float, taken: int) -> None:
    attrs = canonicalize_network("n", {"nic": "veth_0", key: sent})
    assert attrs[key] == taken and type(attrs[key]) is int


def test_options_connectivity_timeout_must_be_a_number() -> None:
    assert _code(canonicalize_options, {"connectivityTimeout": "soon"}) == 21
