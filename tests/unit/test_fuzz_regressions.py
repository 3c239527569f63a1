"""What fuzzing setupNetworks through the real frontd found
(tests/functional/test_fuzz_setup_networks.py), one test per bug.

Each of these requests made frontd answer code 100 ("Internal error") — or
not answer at all — instead of naming the rule the request broke.
"""

from __future__ import annotations

import json

import pytest

from frontd.jsonrpc import INVALID_REQUEST, MAX_MESSAGE, PARSE_ERROR, JsonRpcDispatcher
from shared.errors import ErrorCode, NetError
from shared.netmodel.addresses import prefix_to_netmask, validate_ipv6_cidr
from shared.netmodel.canonical import canonicalize_network
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from shared.netmodel.values import to_int


def test_a_unicode_digit_int_refuses_is_not_an_integer() -> None:
    # "²".isdigit() is True but int("²") raises ValueError.
    with pytest.raises(NetError) as caught:
        to_int("²", "network n: mtu", 68, 65535)
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert "not an integer" in caught.value.message


def test_unicode_decimal_digits_still_coerce_as_before() -> None:
    assert to_int("١٥٠٠", "network n: mtu", 68, 65535) == 1500


def test_an_ipv6_prefix_of_a_superscript_digit_is_a_bad_address() -> None:
    with pytest.raises(NetError) as caught:
        validate_ipv6_cidr("2001:db8::1/²", "network n")
    assert caught.value.code == ErrorCode.BAD_ADDR


def test_an_infinite_prefix_is_a_bad_address() -> None:
    # int(float("inf")) raises OverflowError, not ValueError.
    with pytest.raises(NetError) as caught:
        prefix_to_netmask(float("inf"), "network n")
    assert caught.value.code == ErrorCode.BAD_ADDR


def test_custom_with_an_integer_beyond_64_bits_is_refused() -> None:
    # orjson cannot write it into superd's frame.
    with pytest.raises(NetError) as caught:
        canonicalize_network("n", {"nic": "veth_2", "custom": {"n": 2**64}})
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert "custom" in caught.value.message


def test_host_qos_nested_beyond_what_orjson_writes_is_refused() -> None:
    deep: object = 1
    for _ in range(300):
        deep = {"a": deep}
    with pytest.raises(NetError) as caught:
        canonicalize_network("n", {"nic": "veth_2", "hostQos": deep})
    assert caught.value.code == ErrorCode.BAD_PARAMS


def _dispatcher() -> JsonRpcDispatcher:
    return JsonRpcDispatcher({"Host.setupNetworks": lambda networks=None: {"code": 0}})


def _body(params: str) -> str:
    return '{"jsonrpc":"2.0","id":7,"method":"Host.setupNetworks","params":' + params + "}"


def test_a_request_nested_beyond_the_parser_is_answered() -> None:
    # json.loads raised RecursionError: no answer was ever sent.
    answer = _dispatcher().handle(_body("[" * 100_000 + "]" * 100_000))
    assert answer is not None
    assert answer["error"]["code"] == INVALID_REQUEST


def test_a_request_nested_deeper_than_the_limit_is_invalid() -> None:
    answer = _dispatcher().handle(_body('{"networks":' + "[" * 300 + "]" * 300 + "}"))
    assert answer == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": INVALID_REQUEST, "message": answer["error"]["message"]},
    }
    assert "nested deeper" in answer["error"]["message"]


def test_a_request_within_the_depth_limit_is_dispatched() -> None:
    answer = _dispatcher().handle(_body('{"networks":' + "[" * 40 + "]" * 40 + "}"))
    assert answer == {"jsonrpc": "2.0", "id": 7, "result": {"code": 0}}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_a_parse_error(constant: str) -> None:
    answer = _dispatcher().handle(_body('{"networks":{"n":{"mtu":' + constant + "}}}"))
    assert answer is not None and answer["error"]["code"] == PARSE_ERROR


def test_the_depth_check_leaves_a_large_flat_request_alone() -> None:
    networks = {f"n{i}": {"nic": "veth_0", "vlan": i, "custom": {"k": "v"}} for i in range(5000)}
    answer = _dispatcher().handle(_body(json.dumps({"networks": networks})))
    assert answer == {"jsonrpc": "2.0", "id": 7, "result": {"code": 0}}


# Well-formed requests frontd passed on, that superd then failed with 29
# (after touching the kernel, then rolling back).
def _validate(attrs: dict, name: str = "n") -> None:
    host = NetinfoSnapshot.from_caps({"nics": {"veth_2": {"mtu": 1500}}})
    plan_setup_networks({name: attrs}, {}, {}, host, RunningConfig.from_dict({}))


@pytest.mark.parametrize(
    "attrs",
    [
        {"ipaddr": "0.0.0.0", "prefix": 0},
        {"ipaddr": "224.0.0.1", "prefix": 24},
        {"ipaddr": "203.0.113.4", "prefix": 24, "gateway": "0.0.0.0"},
        {"ipaddr": "203.0.113.4", "prefix": 24, "gateway": "255.255.255.255"},
        {"ipv6addr": "::/0"},
        {"ipv6addr": "ff02::1/64"},
        {"ipv6addr": "2001:db8::4/64", "ipv6gateway": "ff02::2"},
    ],
    ids=lambda attrs: "-".join(str(v) for v in attrs.values()),
)
def test_a_non_unicast_host_address_or_gateway_is_a_bad_address(attrs: dict) -> None:
    with pytest.raises(NetError) as caught:
        _validate({"nic": "veth_2", **attrs})
    assert caught.value.code == ErrorCode.BAD_ADDR
    assert "not a unicast address" in caught.value.message


def test_ipv6_on_a_network_below_1280_bytes_of_mtu_is_refused() -> None:
    with pytest.raises(NetError) as caught:
        _validate({"nic": "veth_2", "mtu": 1279, "ipv6addr": "2001:db8::4/64"})
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert "1280" in caught.value.message


def test_a_bridge_named_like_the_loopback_device_is_refused() -> None:
    with pytest.raises(NetError) as caught:
        _validate({"nic": "veth_2"}, name="lo")
    assert caught.value.code == ErrorCode.BAD_BRIDGE


def test_unicast_addresses_and_ipv6_at_1280_still_pass() -> None:
    _validate(
        {"nic": "veth_2", "mtu": 1280, "ipaddr": "203.0.113.4", "prefix": 24,
         "gateway": "203.0.113.1", "ipv6addr": "2001:db8::4/64", "ipv6gateway": "fe80::1"}
    )  # fmt: skip


def test_a_message_quoting_a_huge_value_is_cut() -> None:
    # "networks must be an object, got [...]" came back at 500 kB.
    def refuse(networks: object = None) -> None:
        raise NetError(ErrorCode.BAD_PARAMS, f"networks must be an object, got {networks!r}")

    body = _body(json.dumps({"networks": ["a"] * 100_000}))
    answer = JsonRpcDispatcher({"Host.setupNetworks": refuse}).handle(body)
    assert answer is not None and answer["error"]["code"] == ErrorCode.BAD_PARAMS
    message = answer["error"]["message"]
    assert len(message) == MAX_MESSAGE and message.endswith("…")
    assert message.startswith("networks must be an object, got ['a', ")
