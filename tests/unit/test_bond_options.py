"""Bonding options: parsing, validation, canonical form, netlink, sysfs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond_options import (
    BOND_MODES,
    BOND_OPTIONS,
    canonical_bond_options,
    describe,
    mode_number,
    netlink_bond_attrs,
    parse_bond_options,
    sysfs_only_bond_values,
    sysfs_value_matches,
    validate_bond_options,
)

ALL_MODES = range(7)
UNSETTABLE = ("coupled_control", "ns_ip6_target")


@contextmanager
def bad_bonding(*fragments: str) -> Iterator[None]:
    """Expect a NetError 25 whose message holds every fragment."""
    with pytest.raises(NetError) as info:
        yield
    assert info.value.code is ErrorCode.BAD_BONDING
    for fragment in fragments:
        assert fragment in info.value.message


def valid(options: str, bond: str = "bond0") -> dict[str, str]:
    return validate_bond_options(bond, parse_bond_options(options))


# -- parse_bond_options -------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_parse_of_blank_text_gives_no_options(text):
    assert parse_bond_options(text) == {}


def test_parse_splits_on_any_whitespace():
    assert parse_bond_options(" mode=4\tmiimon=100\nlacp_rate=fast ") == {
        "mode": "4",
        "miimon": "100",
        "lacp_rate": "fast",
    }


def test_parse_keeps_an_empty_value():
    assert parse_bond_options("mode=1 primary=") == {"mode": "1", "primary": ""}


@pytest.mark.parametrize("token", ["miimon", "=100"])
def test_parse_rejects_a_token_that_is_not_key_value(token):
    with bad_bonding(repr(token)):
        parse_bond_options(f"mode=4 {token}")


def test_parse_rejects_a_repeated_key():
    with bad_bonding("'miimon'", "'miimon=200'"):
        parse_bond_options("miimon=100 mode=4 miimon=200")


def test_parse_rejects_a_non_string():
    with bad_bonding("string"):
        parse_bond_options(None)  # type: ignore[arg-type]


# -- validate_bond_options: happy paths ---------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        "mode=4 miimon=100",
        "mode=802.3ad miimon=100 xmit_hash_policy=layer3+4 lacp_rate=fast "
        "ad_select=bandwidth lacp_active=off ad_actor_sys_prio=100 "
        "ad_user_port_key=1023 ad_actor_system=02:00:00:00:00:01 min_links=2",
        "mode=active-backup miimon=100 primary=eth0 primary_reselect=better "
        "fail_over_mac=active num_grat_arp=3 num_unsol_na=3 updelay=200 "
        "downdelay=200 peer_notif_delay=100",
        "mode=1 arp_interval=1000 arp_ip_target=10.0.0.1,10.0.0.2 "
        "arp_validate=all arp_all_targets=all arp_missed_max=5 miimon=0",
        "mode=balance-rr packets_per_slave=0 resend_igmp=255 all_slaves_active=1",
        "mode=5 tlb_dynamic_lb=0 xmit_hash_policy=encap3+4 lp_interval=10",
        "mode=6 tlb_dynamic_lb=on primary=eth1 use_carrier=0",
        "mode=broadcast miimon=50",
        "",
    ],
)
def test_valid_options_are_accepted(options):
    valid(options)


@pytest.mark.parametrize("name, number", sorted(BOND_MODES.items()))
def test_mode_name_is_normalized_to_its_number(name, number):
    assert valid(f"mode={name} miimon=100") == {"mode": str(number), "miimon": "100"}


@pytest.mark.parametrize("number", ALL_MODES)
def test_mode_number_is_kept(number):
    assert valid(f"mode={number}")["mode"] == str(number)


def test_enum_values_are_kept_as_given():
    result = valid("mode=4 lacp_rate=fast xmit_hash_policy=2 ad_select=count")
    assert result == {
        "mode": "4",
        "lacp_rate": "fast",
        "xmit_hash_policy": "2",
        "ad_select": "count",
    }


def test_absent_mode_stays_absent():
    assert valid("miimon=100") == {"miimon": "100"}


def test_validation_does_not_change_its_argument():
    options = {"mode": "802.3ad"}
    validate_bond_options("bond0", options)
    assert options == {"mode": "802.3ad"}


@pytest.mark.parametrize(
    "key, value",
    [
        (opt.name, spelling)
        for opt in BOND_OPTIONS.values()
        if opt.values and opt.name not in UNSETTABLE
        for name, number in opt.values.items()
        for spelling in (name, str(number))
    ],
)
def test_every_enum_value_is_accepted_by_name_and_number(key, value):
    mode = min(BOND_OPTIONS[key].modes)
    options = {"mode": str(mode), key: value} if key != "mode" else {key: value}
    validate_bond_options("bond0", options)


@pytest.mark.parametrize(
    "key, value",
    [
        ("miimon", "0"),
        ("miimon", "2147483647"),
        ("arp_missed_max", "1"),
        ("arp_missed_max", "255"),
        ("ad_actor_sys_prio", "1"),
        ("ad_actor_sys_prio", "65535"),
        ("ad_user_port_key", "0"),
        ("ad_user_port_key", "1023"),
        ("packets_per_slave", "65535"),
        ("peer_notif_delay", "300000"),
        ("lp_interval", "1"),
        ("num_grat_arp", "255"),
        ("resend_igmp", "0"),
    ],
)
def test_integer_range_bounds_are_accepted(key, value):
    mode = min(BOND_OPTIONS[key].modes)
    validate_bond_options("bond0", {"mode": str(mode), key: value})


def test_every_default_is_a_valid_value():
    for opt in BOND_OPTIONS.values():
        if opt.name in UNSETTABLE:
            continue
        mode = min(opt.modes)
        options = {opt.name: opt.default}
        if opt.name != "mode":
            options["mode"] = str(mode)
        validate_bond_options("bond0", options)


def test_primary_may_be_empty_to_clear_it():
    assert valid("mode=1 primary=")["primary"] == ""


# -- validate_bond_options: refusals ------------------------------------------


def test_unknown_option_is_rejected_naming_bond_and_key():
    with bad_bonding("bond7", "'lacp_speed'"):
        valid("mode=4 lacp_speed=fast", bond="bond7")


@pytest.mark.parametrize("value", ["7", "802.3AD", "lacp", "-1", ""])
def test_invalid_mode_is_rejected_listing_the_modes(value):
    with bad_bonding("bond0", "mode", repr(value), "802.3ad (4)"):
        validate_bond_options("bond0", {"mode": value})


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("lacp_rate", "medium", "slow (0), fast (1)"),
        ("lacp_rate", "2", "slow (0), fast (1)"),
        ("lacp_rate", "FAST", "slow (0), fast (1)"),
        ("xmit_hash_policy", "layer4", "layer3+4 (1)"),
        ("ad_select", "", "stable (0)"),
        ("lacp_active", "yes", "off (0), on (1)"),
    ],
)
def test_enum_value_outside_its_set_is_rejected(key, value, allowed):
    with bad_bonding("bond0", key, repr(value), allowed):
        validate_bond_options("bond0", {"mode": "4", key: value})


@pytest.mark.parametrize(
    "key, value",
    [
        ("miimon", "-1"),
        ("miimon", "abc"),
        ("miimon", "1.5"),
        ("miimon", "+100"),
        ("miimon", ""),
        ("miimon", "2147483648"),
        ("miimon", "１００"),  # full-width digits are not decimal to the kernel
        ("arp_missed_max", "0"),
        ("arp_missed_max", "256"),
        ("ad_actor_sys_prio", "0"),
        ("ad_actor_sys_prio", "65536"),
        ("ad_user_port_key", "1024"),
        ("packets_per_slave", "65536"),
        ("peer_notif_delay", "300001"),
        ("lp_interval", "0"),
        ("num_unsol_na", "256"),
        ("resend_igmp", "256"),
    ],
)
def test_integer_outside_its_range_is_rejected(key, value):
    mode = min(BOND_OPTIONS[key].modes)
    with bad_bonding("bond0", key, repr(value), "an integer from"):
        validate_bond_options("bond0", {"mode": str(mode), key: value})


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1;10.0.0.2",
        "10.0.0.256",
        "10.0.0.01",
        "10.0.0.1,",
        "::1",
        "0.0.0.0",
        "0.1.2.3",
        "255.255.255.255",
        "10.0.0.1,10.0.0.1",
        ",".join(f"10.0.0.{i}" for i in range(1, 18)),
    ],
)
def test_arp_ip_target_outside_ipv4_list_is_rejected(value):
    with bad_bonding("bond0", "arp_ip_target", "IPv4"):
        valid(f"mode=1 arp_interval=100 miimon=0 arp_ip_target={value}")


def test_arp_ip_target_accepts_sixteen_addresses():
    targets = ",".join(f"10.0.0.{i}" for i in range(1, 17))
    valid(f"mode=1 arp_interval=100 arp_ip_target={targets}")


@pytest.mark.parametrize(
    "value", ["01:00:5e:00:00:01", "02:00:00:00:00", "0200.0000.0001", "zz:00:00:00:00:01"]
)
def test_ad_actor_system_that_is_not_a_unicast_mac_is_rejected(value):
    with bad_bonding("bond0", "ad_actor_system", repr(value)):
        valid(f"mode=4 ad_actor_system={value}")


@pytest.mark.parametrize("value", ["a" * 16, "eth/0", "eth:0", ".", ".."])
def test_primary_that_is_not_an_interface_name_is_rejected(value):
    with bad_bonding("bond0", "primary", repr(value)):
        validate_bond_options("bond0", {"mode": "1", "primary": value})


def test_non_string_value_is_rejected():
    with bad_bonding("bond0", "miimon"):
        validate_bond_options("bond0", {"miimon": 100})  # type: ignore[dict-item]


# -- validate_bond_options: modes ---------------------------------------------


LACP_ONLY = [
    ("lacp_rate", "fast"),
    ("lacp_active", "on"),
    ("ad_select", "stable"),
    ("ad_actor_sys_prio", "100"),
    ("ad_user_port_key", "5"),
    ("ad_actor_system", "02:00:00:00:00:01"),
]


@pytest.mark.parametrize("mode", [m for m in ALL_MODES if m != 4])
def test_lacp_rate_rejected_outside_802_3ad(mode):
    with bad_bonding("bond0", "lacp_rate", f"({mode})", "802.3ad (4)"):
        valid(f"mode={mode} lacp_rate=fast")


@pytest.mark.parametrize("key, value", LACP_ONLY)
@pytest.mark.parametrize("mode", [m for m in ALL_MODES if m != 4])
def test_802_3ad_options_rejected_in_other_modes(key, value, mode):
    with bad_bonding("bond0", key, "valid only in 802.3ad (4)"):
        validate_bond_options("bond0", {"mode": str(mode), key: value})


@pytest.mark.parametrize("key, value", LACP_ONLY)
def test_802_3ad_options_accepted_in_802_3ad(key, value):
    validate_bond_options("bond0", {"mode": "802.3ad", key: value})


@pytest.mark.parametrize("mode", [0, 2, 3, 4])
def test_primary_rejected_outside_active_backup_tlb_alb(mode):
    with bad_bonding("primary", "active-backup (1), balance-tlb (5), balance-alb (6)"):
        valid(f"mode={mode} primary=eth0")


@pytest.mark.parametrize("mode", [1, 5, 6])
def test_primary_accepted_in_active_backup_tlb_alb(mode):
    valid(f"mode={mode} primary=eth0")


@pytest.mark.parametrize(
    "key, value",
    [
        ("arp_interval", "100"),
        ("arp_validate", "all"),
        ("arp_missed_max", "3"),
    ],
)
@pytest.mark.parametrize("mode", [4, 5, 6])
def test_arp_monitor_options_rejected_in_802_3ad_tlb_alb(key, value, mode):
    with bad_bonding("bond0", key, f"({mode})"):
        validate_bond_options("bond0", {"mode": str(mode), key: value})


@pytest.mark.parametrize("mode", [0, 1, 3])
def test_xmit_hash_policy_rejected_in_modes_that_do_not_hash(mode):
    with bad_bonding("xmit_hash_policy", f"({mode})"):
        valid(f"mode={mode} xmit_hash_policy=layer2+3")


@pytest.mark.parametrize("mode", [2, 4, 5, 6])
def test_xmit_hash_policy_accepted_in_hashing_modes(mode):
    valid(f"mode={mode} xmit_hash_policy=layer2+3")


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4])
def test_tlb_dynamic_lb_rejected_outside_tlb_and_alb(mode):
    with bad_bonding("tlb_dynamic_lb", f"({mode})"):
        valid(f"mode={mode} tlb_dynamic_lb=0")


@pytest.mark.parametrize("mode", [1, 2, 3, 4, 5, 6])
def test_packets_per_slave_rejected_outside_balance_rr(mode):
    with bad_bonding("packets_per_slave", "valid only in balance-rr (0)"):
        valid(f"mode={mode} packets_per_slave=2")


def test_absent_mode_is_checked_as_balance_rr():
    valid("packets_per_slave=2")
    with bad_bonding("lacp_rate", "balance-rr (0)"):
        valid("lacp_rate=fast")


@pytest.mark.parametrize(
    "key, value",
    [
        ("miimon", "100"),
        ("updelay", "200"),
        ("downdelay", "200"),
        ("peer_notif_delay", "100"),
        ("use_carrier", "1"),
        ("arp_ip_target", "10.0.0.1"),
        ("arp_all_targets", "all"),
        ("primary_reselect", "failure"),
        ("fail_over_mac", "follow"),
        ("resend_igmp", "2"),
        ("num_grat_arp", "2"),
        ("num_unsol_na", "2"),
        ("all_slaves_active", "1"),
        ("min_links", "1"),
        ("lp_interval", "5"),
    ],
)
@pytest.mark.parametrize("mode", ALL_MODES)
def test_mode_independent_options_are_accepted_in_every_mode(key, value, mode):
    validate_bond_options("bond0", {"mode": str(mode), key: value})


@pytest.mark.parametrize("key, value", [("coupled_control", "0"), ("ns_ip6_target", "fd00::1")])
def test_options_netreload_cannot_set_are_rejected(key, value):
    with bad_bonding("bond0", key, "cannot be set"):
        validate_bond_options("bond0", {"mode": "4", key: value})


def test_peer_notification_aliases_with_different_values_are_rejected():
    with bad_bonding("bond0", "num_grat_arp=2", "num_unsol_na=3"):
        valid("mode=1 num_grat_arp=2 num_unsol_na=3")


def test_peer_notification_aliases_with_equal_values_are_accepted():
    valid("mode=1 num_grat_arp=2 num_unsol_na=02")


def test_miimon_with_arp_interval_is_rejected():
    with bad_bonding("bond0", "miimon=100", "arp_interval=200"):
        valid("mode=1 miimon=100 arp_interval=200 arp_ip_target=10.0.0.1")


def test_arp_interval_with_miimon_disabled_is_accepted():
    valid("mode=1 miimon=0 arp_interval=200 arp_ip_target=10.0.0.1")


def test_mode_number_defaults_to_balance_rr():
    assert mode_number({}) == 0
    assert mode_number({"mode": "balance-alb"}) == 6


# -- canonical_bond_options ---------------------------------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        ("mode=802.3ad miimon=100", "miimon=100 mode=4"),
        ("mode=4 lacp_rate=fast", "lacp_rate=1 mode=802.3ad"),
        ("mode=1 miimon=0100", "miimon=100  mode=active-backup"),
        (
            "mode=4 ad_actor_system=02:AB:00:00:00:01",
            "ad_actor_system=02:ab:00:00:00:01 mode=4",
        ),
        (
            "mode=1 arp_interval=9 arp_ip_target=10.0.0.2,10.0.0.10",
            "arp_ip_target=10.0.0.10,10.0.0.2 arp_interval=9 mode=1",
        ),
    ],
)
def test_two_spellings_of_the_same_options_have_one_canonical_form(first, second):
    assert canonical_bond_options(first) == canonical_bond_options(second)


def test_canonical_form_puts_numeric_mode_first_then_sorted_options():
    text = "xmit_hash_policy=layer3+4 miimon=100 mode=802.3ad ad_select=count"
    assert canonical_bond_options(text) == ("mode=4 ad_select=2 miimon=100 xmit_hash_policy=1")


def test_canonical_form_does_not_add_a_missing_mode():
    assert canonical_bond_options("miimon=100") == "miimon=100"


def test_canonical_form_of_no_options_is_empty():
    assert canonical_bond_options("") == ""


def test_canonical_form_differs_for_different_options():
    assert canonical_bond_options("mode=4") != canonical_bond_options("mode=1")


def test_canonical_form_rejects_invalid_options_naming_the_bond():
    with bad_bonding("bond3", "lacp_rate"):
        canonical_bond_options("mode=1 lacp_rate=fast", bond_name="bond3")


# -- netlink_bond_attrs -------------------------------------------------------


def test_netlink_attrs_are_pyroute2_keywords_with_numbers():
    options = valid("mode=802.3ad miimon=100 lacp_rate=fast xmit_hash_policy=layer3+4")
    assert netlink_bond_attrs(options) == {
        "bond_mode": 4,
        "bond_miimon": 100,
        "bond_ad_lacp_rate": 1,
        "bond_xmit_hash_policy": 1,
    }


def test_netlink_ad_actor_system_is_six_raw_bytes():
    attrs = netlink_bond_attrs(valid("mode=4 ad_actor_system=02:00:00:aa:bb:cc"))
    assert attrs["bond_ad_actor_system"] == bytes.fromhex("020000aabbcc")


def test_netlink_arp_ip_target_is_a_list_of_addresses():
    attrs = netlink_bond_attrs(valid("mode=1 arp_interval=100 arp_ip_target=10.0.0.1,192.168.1.1"))
    assert attrs["bond_arp_ip_target"] == ["10.0.0.1", "192.168.1.1"]


def test_netlink_primary_is_resolved_through_ifindex_of():
    attrs = netlink_bond_attrs(valid("mode=1 primary=eth1"), ifindex_of={"eth1": 7}.get)
    assert attrs["bond_primary"] == 7


def test_netlink_primary_stays_a_name_without_a_resolver():
    assert BOND_OPTIONS["primary"].needs_ifindex
    assert netlink_bond_attrs(valid("mode=1 primary=eth1"))["bond_primary"] == "eth1"


def test_netlink_empty_primary_clears_it_with_ifindex_zero():
    attrs = netlink_bond_attrs(valid("mode=1 primary="), ifindex_of={}.__getitem__)
    assert attrs["bond_primary"] == 0


def test_netlink_peer_notification_aliases_share_one_keyword():
    attrs = netlink_bond_attrs(valid("mode=1 num_grat_arp=4"))
    assert attrs == {"bond_mode": 1, "bond_num_peer_notif": 4}


def test_options_pyroute2_cannot_carry_go_to_sysfs_instead():
    options = valid("mode=4 lacp_active=off miimon=100")
    assert "lacp_active" not in str(netlink_bond_attrs(options))
    assert sysfs_only_bond_values(options) == {"lacp_active": "off"}
    options = valid("mode=1 arp_interval=100 arp_missed_max=3 peer_notif_delay=200")
    assert sysfs_only_bond_values(options) == {
        "arp_missed_max": "3",
        "peer_notif_delay": "200",
    }


def test_netlink_keywords_are_bond_attributes_pyroute2_knows():
    bond_plugin = pytest.importorskip("pyroute2.netlink.rtnl.ifinfmsg.plugins.bond")
    known = {name for name, _ in bond_plugin.bond.nla_map}
    for opt in BOND_OPTIONS.values():
        if opt.netlink is not None:
            assert "IFLA_" + opt.netlink.upper() in known, opt.name


def test_netlink_attrs_encode_as_pyroute2_bond_attributes():
    bond_plugin = pytest.importorskip("pyroute2.netlink.rtnl.ifinfmsg.plugins.bond")
    options = valid(
        "mode=1 arp_interval=100 arp_ip_target=10.0.0.1,10.0.0.2 primary=eth0 "
        "arp_validate=filter num_unsol_na=3 fail_over_mac=follow"
    )
    msg = bond_plugin.bond()
    attrs = netlink_bond_attrs(options, ifindex_of=lambda name: 2)
    msg["attrs"] = [("IFLA_" + key.upper(), value) for key, value in attrs.items()]
    msg.encode()
    decoded = bond_plugin.bond(msg.data[: msg["header"]["length"]])
    decoded.decode()
    assert decoded.get_attr("IFLA_BOND_MODE") == 1
    assert decoded.get_attr("IFLA_BOND_ARP_VALIDATE") == 4
    assert decoded.get_attr("IFLA_BOND_PRIMARY") == 2


# -- sysfs_value_matches ------------------------------------------------------


@pytest.mark.parametrize(
    "key, wanted, shown",
    [
        ("mode", "802.3ad", "802.3ad 4\n"),
        ("mode", "4", "802.3ad 4\n"),
        ("lacp_rate", "fast", "fast 1\n"),
        ("lacp_rate", "1", "fast 1"),
        ("xmit_hash_policy", "layer3+4", "layer3+4 1\n"),
        ("use_carrier", "on", "1\n"),
        ("tlb_dynamic_lb", "0", "0\n"),
        ("miimon", "100", "100\n"),
        ("miimon", "0100", "100\n"),
        ("arp_ip_target", "10.0.0.2,10.0.0.1", "10.0.0.1 10.0.0.2\n"),
        ("arp_ip_target", "", ""),
        ("ad_actor_system", "02:AB:00:00:00:01", "02:ab:00:00:00:01\n"),
        ("primary", "eth0", "eth0\n"),
        ("primary", "", ""),
    ],
)
def test_sysfs_text_showing_the_wanted_value_matches(key, wanted, shown):
    assert sysfs_value_matches(key, wanted, shown)


@pytest.mark.parametrize(
    "key, wanted, shown",
    [
        ("mode", "802.3ad", "active-backup 1\n"),
        ("lacp_rate", "fast", "slow 0\n"),
        ("miimon", "100", "0\n"),
        ("miimon", "100", "\n"),
        ("arp_ip_target", "10.0.0.1,10.0.0.2", "10.0.0.1\n"),
        ("arp_ip_target", "10.0.0.1", "garbage\n"),
        ("ad_actor_system", "02:00:00:00:00:01", ""),
        ("primary", "eth0", "eth1\n"),
        ("lacp_rate", "medium", "medium 3\n"),
    ],
)
def test_sysfs_text_showing_another_value_does_not_match(key, wanted, shown):
    assert not sysfs_value_matches(key, wanted, shown)


def test_sysfs_match_of_an_unknown_option_is_refused():
    with bad_bonding("'speed'"):
        sysfs_value_matches("speed", "1", "1\n")


# -- table and documentation --------------------------------------------------


def test_bond_modes_are_the_kernel_numbers():
    assert dict(BOND_MODES) == {
        "balance-rr": 0,
        "active-backup": 1,
        "balance-xor": 2,
        "broadcast": 3,
        "802.3ad": 4,
        "balance-tlb": 5,
        "balance-alb": 6,
    }


def test_describe_documents_every_option_once():
    rows = describe()
    assert [row["name"] for row in rows] == list(BOND_OPTIONS)
    for row in rows:
        assert row["help"] and row["allowed"] and row["modes"]
    lacp_rate = next(row for row in rows if row["name"] == "lacp_rate")
    assert lacp_rate["modes"] == ["802.3ad"]
    assert lacp_rate["sysfs"] == "lacp_rate"
    assert lacp_rate["netlink"] == "bond_ad_lacp_rate"
    assert lacp_rate["allowed"] == "slow (0), fast (1)"
