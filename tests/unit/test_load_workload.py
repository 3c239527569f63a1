"""The load test's half-view check finds half views (so its "0 seen" means something)."""

from __future__ import annotations

from tests.functional.load_workload import CONTROL, WRITER_NICS, Group, caps_problems

GROUP = Group.make(0, 1, 3)


def caps_with(*groups: Group) -> dict:
    """Capabilities as frontd reports them with ``groups`` all applied."""
    nics = {nic: {"ipv4addrs": []} for nic in WRITER_NICS}
    nics[CONTROL[0]] = {"ipv4addrs": [CONTROL[1]]}
    networks, bridges = {}, {}
    for group in groups:
        for name in group.networks:
            bridge, ports, address = group.devices(name)
            networks[name] = {"iface": bridge, "ports": ports, "ipv4addrs": [address]}
            bridges[bridge] = {"ports": ports, "ipv4addrs": [address]}
    return {"networks": networks, "bridges": bridges, "nics": nics}


def test_a_group_all_there_or_all_gone_is_a_whole_view() -> None:
    assert caps_problems(caps_with(GROUP), [GROUP]) == []
    assert caps_problems(caps_with(), [GROUP]) == []


def test_a_group_with_one_network_missing_is_a_half_view() -> None:
    caps = caps_with(GROUP)
    del caps["networks"][next(iter(GROUP.networks))]
    assert caps_problems(caps, [GROUP])


def test_a_removed_network_whose_bridge_stayed_is_a_half_view() -> None:
    caps = caps_with(GROUP)
    caps["networks"].clear()
    assert caps_problems(caps, [GROUP])


def test_a_network_without_its_address_yet_is_a_half_view() -> None:
    caps = caps_with(GROUP)
    name = next(iter(GROUP.networks))
    caps["networks"][name]["ipv4addrs"] = []
    assert caps_problems(caps, [GROUP])


def test_a_bridge_without_its_nic_yet_is_a_half_view() -> None:
    caps = caps_with(GROUP)
    first = next(iter(GROUP.networks))
    caps["bridges"][first]["ports"] = []
    assert caps_problems(caps, [GROUP])


def test_the_control_nic_losing_its_address_is_reported() -> None:
    caps = caps_with(GROUP)
    caps["nics"][CONTROL[0]]["ipv4addrs"] = []
    assert caps_problems(caps, [GROUP])
