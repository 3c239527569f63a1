"""hostQos: the engine's curves checked, translated to the kernel's units,
laid out as one HFSC tree per NIC or bond, and read back for the
capabilities (pure; the kernel side is tests/vm/test_host_qos_kernel.py)."""

from __future__ import annotations

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.canonical import canonicalize_network
from shared.netmodel.host_qos import (
    DEFAULT_MINOR,
    DeviceQos,
    devices_to_change,
    reported_host_qos,
    wanted_trees,
)
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig


def net(nic: str = "eth0", vlan: int | None = None, qos: object = None, **extra: object) -> dict:
    attrs: dict = {"nic": nic, "bridged": False, **extra}
    if vlan is not None:
        attrs["vlan"] = vlan
    if qos is not None:
        attrs["hostQos"] = qos
    return canonicalize_network(f"n{vlan}", attrs)


def out(**curves: dict) -> dict:
    return {"out": curves}


# -- validation: refused with 21, naming the curve and key ---------------------


@pytest.mark.parametrize(
    ("qos", "named"),
    [
        ({"in": {}}, "'in'"),
        (out(ls={"m2": 10}, xx={"m2": 1}), "'xx'"),
        (out(ls={"m2": 10, "rate": 5}), "'rate'"),
        (out(ls={"m1": 10}), "m2"),
        (out(ls={"m2": -1}), "ls.m2"),
        (out(ls={"m2": 0}), "ls.m2"),
        (out(ls={"m2": "ten"}), "ls.m2"),
        (out(ls={"m2": 10}, ul={"m2": 2**35}), "ul.m2"),
        (out(ls={"m2": 10}, ul={"m2": 4}), "ul.m2"),
        (out(ls={"m2": 10, "m1": 20}), "m1 and d"),
        (out(ls={"m2": 10, "d": 20}), "m1 and d"),
        (out(ls={"m2": 10, "m1": 20, "d": -1}), "ls.d"),
        (out(ul={"m2": 8000}), "ls (link share) is required"),
        (out(rt={"m2": 8000}), "ls (link share) is required"),
        (out(ls={"m2": 10}, ul={"m2": 8000}, rt={"m2": 16000}), "rt.m2 16000 is above ul.m2"),
        ({"out": [1]}, "hostQos.out"),
    ],
)
def test_invalid_host_qos_is_refused_naming_what(qos: object, named: str) -> None:
    with pytest.raises(NetError) as caught:
        net(qos=qos)
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert named in caught.value.message


def test_host_qos_without_a_device_to_shape_is_refused() -> None:
    with pytest.raises(NetError) as caught:
        canonicalize_network("n", {"hostQos": out(ls={"m2": 10})})
    assert caught.value.code == ErrorCode.BAD_PARAMS and "nic or a bonding" in caught.value.message


def test_host_qos_on_an_ovs_network_is_refused() -> None:
    with pytest.raises(NetError) as caught:
        net(qos=out(ls={"m2": 10}), switch="ovs")
    assert caught.value.code == ErrorCode.BAD_PARAMS and "legacy" in caught.value.message


def test_valid_host_qos_is_canonical_integers() -> None:
    attrs = net(qos=out(ls={"m2": "50"}, ul={"m2": 1e8}, rt={"m1": 0, "d": 0, "m2": 8000}))
    assert attrs["hostQos"] == out(
        ls={"m2": 50}, ul={"m2": 100000000}, rt={"m1": 0, "d": 0, "m2": 8000}
    )


def test_a_request_with_an_invalid_curve_plans_nothing() -> None:
    netinfo = NetinfoSnapshot.from_caps({"nics": {"eth0": {}}, "networks": {}}, frozenset())
    with pytest.raises(NetError) as caught:
        plan_setup_networks(
            {"good": {"nic": "eth0", "bridged": False},
             "bad": {"nic": "eth0", "vlan": 5, "hostQos": out(ul={"m2": 8000})}},
            {}, {}, netinfo, RunningConfig({}, {}),
        )  # fmt: skip
    assert caught.value.code == ErrorCode.BAD_PARAMS
    assert "bad: hostQos.out: ls (link share) is required" in caught.value.message


# -- the tree of a device ------------------------------------------------------


def test_each_network_gets_the_class_of_its_vlan_and_a_filter() -> None:
    trees = wanted_trees({
        "a": net(vlan=10, qos=out(ls={"m2": 20})),
        "b": net(vlan=20, qos=out(ls={"m2": 80}, ul={"m2": 800000})),
    })  # fmt: skip
    tree = trees["eth0"]
    assert tree.classes[10] == {"ls": (0, 0, 20)}
    # ul in bits/s becomes bytes/s; ls is a weight, kept as it is
    assert tree.classes[20] == {"ls": (0, 0, 80), "ul": (0, 0, 100000)}
    assert tree.filters == {10: 10, 20: 20}


def test_without_an_untagged_network_the_default_class_shares_like_the_largest() -> None:
    tree = wanted_trees({
        "a": net(vlan=10, qos=out(ls={"m2": 20})),
        "b": net(vlan=20, qos=out(ls={"m2": 80})),
    })["eth0"]  # fmt: skip
    assert tree.classes[DEFAULT_MINOR] == {"ls": (0, 0, 80)}


def test_the_untagged_network_is_the_default_class() -> None:
    tree = wanted_trees({
        "a": net(qos=out(ls={"m2": 5}, rt={"m1": 16000, "d": 100, "m2": 8000})),
        "b": net(vlan=20, qos=out(ls={"m2": 80})),
    })["eth0"]  # fmt: skip
    assert tree.classes[DEFAULT_MINOR] == {"ls": (0, 0, 5), "rt": (2000, 100, 1000)}
    assert tree.filters == {20: 20}


def test_networks_without_host_qos_shape_nothing() -> None:
    assert wanted_trees({"a": net(vlan=10), "b": net(nic="eth1", qos={})}) == {}


def test_only_devices_whose_tree_differs_are_rebuilt() -> None:
    same = wanted_trees({"a": net(vlan=10, qos=out(ls={"m2": 20}))})["eth0"]
    other = wanted_trees({"a": net(vlan=10, qos=out(ls={"m2": 30}))})["eth0"]
    wanted = {"eth0": same, "eth1": same}
    current = {"eth0": same, "eth1": other, "eth2": other, "eth3": None}
    assert devices_to_change(wanted, current) == (["eth1"], ["eth2"])


def test_a_class_reads_back_in_the_engines_units() -> None:
    qos = out(ls={"m2": 50}, ul={"m2": 1000000}, rt={"m1": 16000, "d": 200, "m2": 8000})
    attrs = net(vlan=10, qos=qos)
    tree = wanted_trees({"a": attrs})["eth0"]
    assert reported_host_qos(attrs, tree) == qos


def test_the_default_class_is_no_untagged_networks_without_host_qos() -> None:
    tree = wanted_trees({"a": net(vlan=10, qos=out(ls={"m2": 20}))})["eth0"]
    assert reported_host_qos(net(), tree) is None
    assert reported_host_qos(net(vlan=11), tree) is None
    assert reported_host_qos(net(vlan=10), DeviceQos()) is None


def test_a_configurator_that_cannot_shape_refuses_networks_asking_for_it() -> None:
    from tests.unit.log_configurator import LogConfigurator

    configurator = LogConfigurator(None, None)
    shaped = {"a": net(vlan=10, qos=out(ls={"m2": 20})), "b": net(vlan=11)}
    with pytest.raises(NetError) as caught:
        configurator.sync_host_qos(shaped)
    assert caught.value.code == ErrorCode.BAD_PARAMS and "hostQos of a" in caught.value.message
    assert configurator.sync_host_qos({"b": net(vlan=11)}) == []
