"""Bonding options translated to a teamd configuration (``bonding_driver =
team``); what has no team equivalent is refused with 25 naming the option
(the kernel side is tests/vm/test_team.py)."""

from __future__ import annotations

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.team_runner import runner_config, teamd_config


@pytest.mark.parametrize(
    ("options", "runner"),
    [
        ("", {"name": "roundrobin"}),
        ("mode=0", {"name": "roundrobin"}),
        ("mode=active-backup", {"name": "activebackup"}),
        ("mode=2", {"name": "loadbalance"}),
        ("mode=2 xmit_hash_policy=layer3+4", {"name": "loadbalance",
                                              "tx_hash": ["ipv4", "ipv6", "l4"]}),
        ("mode=3", {"name": "broadcast"}),
        ("mode=4", {"name": "lacp", "active": True}),
        ("mode=802.3ad lacp_rate=fast xmit_hash_policy=layer2",
         {"name": "lacp", "active": True, "fast_rate": True, "tx_hash": ["eth"]}),
        ("mode=4 lacp_rate=0", {"name": "lacp", "active": True, "fast_rate": False}),
    ],
)  # fmt: skip
def test_each_supported_mode_becomes_its_runner(options: str, runner: dict) -> None:
    assert runner_config("bond1", options)["runner"] == runner


def test_miimon_with_delays_becomes_the_ethtool_link_watch() -> None:
    config = runner_config("bond1", "mode=1 miimon=100 updelay=200 downdelay=300")
    assert config["link_watch"] == {"name": "ethtool", "delay_up": 200, "delay_down": 300}


def test_miimon_zero_leaves_teamds_default_link_watch() -> None:
    assert "link_watch" not in runner_config("bond1", "mode=1 miimon=0")


def test_arp_monitoring_becomes_one_arp_ping_per_target() -> None:
    config = runner_config(
        "bond1", "mode=1 arp_interval=500 arp_ip_target=192.0.2.1,192.0.2.2 arp_validate=all"
    )
    assert config["link_watch"] == [
        {"name": "arp_ping", "interval": 500, "target_host": host,
         "validate_active": True, "validate_inactive": True}
        for host in ("192.0.2.1", "192.0.2.2")
    ]  # fmt: skip


def test_primary_becomes_the_ports_priorities() -> None:
    config = teamd_config("bond1", "mode=1 primary=eth1", ("eth0", "eth1"))
    assert config["ports"] == {"eth0": {"prio": 0}, "eth1": {"prio": 1}}
    assert config["device"] == "bond1" and config["runner"] == {"name": "activebackup"}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("mode=5", "mode=5"),
        ("mode=balance-alb", "mode=6"),
        ("mode=1 fail_over_mac=active", "fail_over_mac"),
        ("mode=4 ad_select=bandwidth", "ad_select"),
        ("mode=0 packets_per_slave=3", "packets_per_slave"),
        ("mode=2 xmit_hash_policy=encap3+4", "xmit_hash_policy=encap3+4"),
        ("mode=1 arp_interval=100 arp_ip_target=192.0.2.1 arp_validate=filter", "arp_validate"),
        ("mode=1 updelay=100", "updelay"),
        ("mode=1 arp_interval=100", "arp_ip_target"),
    ],
)
def test_what_has_no_team_equivalent_is_refused_naming_the_option(
    options: str, named: str
) -> None:
    with pytest.raises(NetError) as caught:
        runner_config("bond1", options)
    assert caught.value.code == ErrorCode.BAD_BONDING
    assert named in caught.value.message and "bond1" in caught.value.message


def test_an_invalid_bonding_option_is_refused_as_for_the_bonding_driver() -> None:
    with pytest.raises(NetError) as caught:
        runner_config("bond1", "mode=1 miimon=fast")
    assert caught.value.code == ErrorCode.BAD_BONDING and "miimon" in caught.value.message
