"""Host network QoS (``hostQos``) as HFSC, on the VM lane's kernel (the
host's lacks sch_hfsc).

One module-scoped scenario drives netreload's core (``superd.oneshot``)
through an addition, an edit with a removal, a refused request, a change
that fails midway on a device and is rolled back, and a restore-nets; what
each test needs from between two steps is read back with ``tc -j`` at that
moment and kept in ``seen``. dummy_0 carries three networks (VLANs 10 and
20 with different shares, untagged without QoS), bond1 (dummy_2 +
dummy_3) a VLAN network and an untagged one, both shaped.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from test_bonds_and_vlans import REQUEST_TIMEOUT, Scenario, apply, host, ok

ROOT = "1389:"
DEFAULT = "1389:1388"
ACTIVE_BACKUP = "mode=active-backup miimon=100"


# tc 6.1 prints HFSC options outside its JSON (``"options":{default 1388 }``):
# the text output is read instead, with its own units.
_RATE = re.compile(r"(\d+(?:\.\d+)?)([KMGT]?)bit")
_TIME = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s)")
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_USEC = {"us": 1, "ms": 10**3, "s": 10**6}


def tc(ns: str, *args: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, "tc", *args], capture_output=True, text=True, check=True
    ).stdout


def bits(text: str) -> int:
    number, scale = _RATE.fullmatch(text).groups()
    return round(float(number) * _SCALE[scale])


def usec(text: str) -> int:
    number, unit = _TIME.fullmatch(text).groups()
    return round(float(number) * _USEC[unit])


def _curves(tokens: list[str]) -> dict[str, dict]:
    """``ls m1 0bit d 0us m2 160bit ul …`` → {curve: {m1, d, m2}} (bits/s,
    µs); ``sc`` (tc's name for equal rt and ls) → both."""
    out = {}
    for i, token in enumerate(tokens):
        if token in ("rt", "ls", "ul", "sc") and tokens[i + 1 : i + 2] == ["m1"]:
            curve = {"m1": bits(tokens[i + 2]), "d": usec(tokens[i + 4]),
                     "m2": bits(tokens[i + 6])}  # fmt: skip
            for name in ("rt", "ls") if token == "sc" else (token,):
                out[name] = curve
    return out


def classes(ns: str, dev: str) -> dict[str, dict[str, dict]]:
    """{class handle: {curve: {m1, d, m2}}} of the HFSC classes of ``dev``
    that have curves (not the root class)."""
    out = {}
    for line in tc(ns, "class", "show", "dev", dev).splitlines():
        tokens = line.split()
        if tokens[:2] == ["class", "hfsc"] and (curves := _curves(tokens)):
            out[tokens[2]] = curves
    return out


def vlan_filters(ns: str, dev: str) -> dict[int, str]:
    """{pref: flowid} of the filters under netreload's root qdisc."""
    out = {}
    for line in tc(ns, "filter", "show", "dev", dev, "parent", ROOT).splitlines():
        tokens = line.split()
        if "flowid" in tokens and "pref" in tokens:
            out[int(tokens[tokens.index("pref") + 1])] = tokens[tokens.index("flowid") + 1]
    return out


def root_qdisc(ns: str, dev: str) -> dict:
    """{kind, handle, default} of the root qdisc of ``dev``."""
    (tokens,) = [
        line.split() for line in tc(ns, "qdisc", "show", "dev", dev).splitlines()
        if " root " in f" {line} "
    ]  # fmt: skip
    default = tokens[tokens.index("default") + 1] if "default" in tokens else None
    return {"kind": tokens[1], "handle": tokens[2], "default": default}


def m2(curves: dict[str, dict], curve: str) -> int:
    return curves[curve]["m2"]


def snapshot(ns: str, *devs: str) -> dict:
    return {
        dev: {"root": root_qdisc(ns, dev), "classes": classes(ns, dev),
              "filters": vlan_filters(ns, dev)}
        for dev in devs
    }  # fmt: skip


def qos(ls: int, **more: dict) -> dict:
    return {"out": {"ls": {"m2": ls}, **more}}


@pytest.fixture(scope="module")
def shaped(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    with host(tmp_path_factory, 4) as agent:
        s = Scenario(agent)
        ns = s.ns
        ok(apply(
            agent,
            {
                "qa": {"nic": "dummy_0", "vlan": 10, "bridged": False, "hostQos": qos(
                    20, ul={"m2": 8_000_000})},
                "qb": {"nic": "dummy_0", "vlan": 20, "hostQos": qos(
                    80, rt={"m1": 16_000_000, "d": 1000, "m2": 8_000_000})},
                "qu": {"nic": "dummy_0"},
                "qv": {"bonding": "bond1", "vlan": 30, "bridged": False, "hostQos": qos(50)},
                "qw": {"bonding": "bond1", "bridged": False, "hostQos": qos(10)},
            },
            {"bond1": {"nics": ["dummy_2", "dummy_3"], "options": ACTIVE_BACKUP}},
        ))  # fmt: skip
        s.seen["added"] = snapshot(ns, "dummy_0", "bond1")
        s.seen["filter_text"] = tc(ns, "filter", "show", "dev", "dummy_0", "parent", ROOT)
        s.seen["added_caps"] = agent.run("caps", timeout=REQUEST_TIMEOUT)
        # edit qa's share, drop qb's hostQos, remove qv
        ok(apply(agent, {
            "qa": {"nic": "dummy_0", "vlan": 10, "bridged": False, "hostQos": qos(40)},
            "qb": {"nic": "dummy_0", "vlan": 20},
            "qv": {"remove": True},
        }))  # fmt: skip
        s.seen["edited"] = snapshot(ns, "dummy_0", "bond1", "dummy_1")
        ok(agent.run("set-safe-config", timeout=REQUEST_TIMEOUT))
        # refused before any change: ul without ls
        s.seen["refused"] = apply(agent, {
            "qa": {"nic": "dummy_0", "vlan": 10, "bridged": False, "hostQos": qos(60)},
            "qd": {"nic": "dummy_1", "vlan": 40, "hostQos": {"out": {"ul": {"m2": 8000}}}},
        })  # fmt: skip
        s.seen["after_refused"] = snapshot(ns, "dummy_0", "bond1", "dummy_1")
        # another agent's root qdisc on dummy_1: dummy_0 is reshaped first
        # (devices in name order), dummy_1 then fails, all is rolled back
        subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "dummy_1",
                        "root", "handle", "7:", "htb"], check=True)  # fmt: skip
        s.seen["failed"] = apply(agent, {
            "qa": {"nic": "dummy_0", "vlan": 10, "bridged": False, "hostQos": qos(60)},
            "qd": {"nic": "dummy_1", "vlan": 40, "hostQos": qos(30)},
        })  # fmt: skip
        s.seen["rolled_back"] = snapshot(ns, "dummy_0", "bond1", "dummy_1")
        # the trees lost behind netreload's back, every device still there
        for dev in ("dummy_0", "bond1"):
            subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"],
                           check=True)  # fmt: skip
        s.seen["lost"] = snapshot(ns, "dummy_0", "bond1")
        ok(agent.run("restore-nets", timeout=REQUEST_TIMEOUT))
        s.seen["restored"] = snapshot(ns, "dummy_0", "bond1", "dummy_1")
        yield s


# -- addition ---------------------------------------------------------------


def test_hfsc_root_with_the_default_class_on_the_nic_and_the_bond(shaped) -> None:
    for dev in ("dummy_0", "bond1"):
        root = shaped.seen["added"][dev]["root"]
        assert root == {"kind": "hfsc", "handle": ROOT, "default": "1388"}, root


def test_two_vlan_networks_on_one_nic_get_their_own_shares(shaped) -> None:
    got = shaped.seen["added"]["dummy_0"]["classes"]
    # ls is a weight kept as bytes/s: tc prints it as bits/s, 8 times the weight
    assert m2(got["1389:a"], "ls") == 20 * 8
    assert m2(got["1389:14"], "ls") == 80 * 8


def test_upper_limit_and_real_time_curves_read_back_in_bits(shaped) -> None:
    got = shaped.seen["added"]["dummy_0"]["classes"]
    assert m2(got["1389:a"], "ul") == 8_000_000
    rt = got["1389:14"]["rt"]
    assert (rt["m1"], rt["d"], rt["m2"]) == (16_000_000, 1000, 8_000_000)


def test_default_class_shares_like_the_largest_class_without_an_untagged_qos(shaped) -> None:
    got = shaped.seen["added"]["dummy_0"]["classes"]
    assert set(got) == {"1389:a", "1389:14", DEFAULT}
    assert got[DEFAULT] == {"ls": got[DEFAULT]["ls"]} and m2(got[DEFAULT], "ls") == 80 * 8


def test_vlan_filters_send_each_tag_to_its_class(shaped) -> None:
    assert shaped.seen["added"]["dummy_0"]["filters"] == {10: "1389:a", 20: "1389:14"}


def test_each_filter_matches_its_vlan_tag(shaped) -> None:
    text = " ".join(shaped.seen["filter_text"].split())
    for tag in (10, 20):
        assert f"meta(vlan eq {tag})" in text, text


def test_a_bond_underneath_is_shaped_and_its_untagged_network_is_the_default(shaped) -> None:
    got = shaped.seen["added"]["bond1"]
    assert set(got["classes"]) == {"1389:1e", DEFAULT}
    assert m2(got["classes"]["1389:1e"], "ls") == 50 * 8
    assert m2(got["classes"][DEFAULT], "ls") == 10 * 8
    assert got["filters"] == {30: "1389:1e"}


def test_capabilities_report_each_networks_host_qos_in_the_engines_units(shaped) -> None:
    networks = shaped.seen["added_caps"]["networks"]
    assert networks["qa"]["hostQos"] == qos(20, ul={"m2": 8_000_000})
    assert networks["qb"]["hostQos"] == qos(80, rt={"m1": 16_000_000, "d": 1000, "m2": 8_000_000})
    assert networks["qw"]["hostQos"] == qos(10)
    assert "hostQos" not in networks["qu"]


# -- edit and removal ---------------------------------------------------------


def test_an_edited_share_is_applied(shaped) -> None:
    got = shaped.seen["edited"]["dummy_0"]["classes"]
    assert got["1389:a"] == {"ls": got["1389:a"]["ls"]} and m2(got["1389:a"], "ls") == 40 * 8


def test_dropping_a_networks_host_qos_removes_its_class_and_filter(shaped) -> None:
    got = shaped.seen["edited"]["dummy_0"]
    assert set(got["classes"]) == {"1389:a", DEFAULT}
    assert got["filters"] == {10: "1389:a"}


def test_removing_a_network_removes_its_class_and_filter(shaped) -> None:
    got = shaped.seen["edited"]["bond1"]
    assert set(got["classes"]) == {DEFAULT} and got["filters"] == {}


def test_a_device_nothing_shapes_keeps_the_kernels_qdisc(shaped) -> None:
    assert shaped.seen["edited"]["dummy_1"]["classes"] == {}
    assert shaped.seen["edited"]["dummy_1"]["root"]["kind"] != "hfsc"


# -- refusal, rollback, restore -------------------------------------------------


def test_an_invalid_curve_is_refused_before_any_change(shaped) -> None:
    result = shaped.seen["refused"]
    assert result["code"] == 21 and "qd: hostQos.out: ls" in result["message"], result
    assert shaped.seen["after_refused"] == shaped.seen["edited"]


def test_a_change_failing_on_another_device_rolls_the_classes_back(shaped) -> None:
    result = shaped.seen["failed"]
    assert result["code"] == 29 and "another agent" in result["message"], result
    before, after = shaped.seen["edited"], shaped.seen["rolled_back"]
    assert after["dummy_0"] == before["dummy_0"] and after["bond1"] == before["bond1"]
    assert after["dummy_1"]["root"]["handle"] == "7:"  # the other agent's, untouched


def test_restore_nets_rebuilds_trees_lost_behind_netreloads_back(shaped) -> None:
    assert shaped.seen["lost"]["dummy_0"]["classes"] == {}
    restored, persisted = shaped.seen["restored"], shaped.seen["edited"]
    assert restored["dummy_0"]["classes"] == persisted["dummy_0"]["classes"]
    assert restored["dummy_0"]["filters"] == persisted["dummy_0"]["filters"]
    assert restored["bond1"]["classes"] == persisted["bond1"]["classes"]
