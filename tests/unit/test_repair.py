"""What superd's rebuild (restore-nets, recovery) removes before it adds."""

from __future__ import annotations

from superd.repair import stale_default_routes

OLD_HOLDER = {"nic": "veth_0", "ipaddr": "10.0.0.1", "gateway": "10.0.0.254", "defaultRoute": True}
NEW_HOLDER = {"nic": "veth_1", "ipaddr": "10.1.0.1", "gateway": "10.1.0.254", "defaultRoute": True}


def test_a_default_route_holder_not_as_wanted_is_removed_first() -> None:
    # a change moving the default route, interrupted while writing its intent
    wanted = {"networks": {"old": OLD_HOLDER}}
    running = {"networks": {"old": OLD_HOLDER, "new": NEW_HOLDER, "plain": {"nic": "veth_2"}}}
    assert stale_default_routes(wanted, running) == {"new": {"remove": True}}


def test_the_wanted_holder_stays() -> None:
    wanted = {"networks": {"old": OLD_HOLDER}}
    assert stale_default_routes(wanted, {"networks": {"old": OLD_HOLDER}}) == {}
