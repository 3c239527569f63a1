"""superd.cores.same_running: whether the running configuration the store
holds after a change equals the plan's expected one, looking only at the
names the change and the store's writes touched (the cost of the change,
not of the host's thousands of networks)."""

from __future__ import annotations

import random

from superd.cores import same_running


class NoWalk(dict):
    """A section that fails the test when walked or compared whole."""

    def __iter__(self):
        raise AssertionError("walked")

    def items(self):
        raise AssertionError("walked")

    def values(self):
        raise AssertionError("walked")

    def __eq__(self, other):
        raise AssertionError("compared whole")

    __hash__ = None


def host(n: int) -> dict:
    return {f"bn{i}": {"bridged": True, "ipaddr": f"10.0.{i % 256}.1"} for i in range(n)}


def test_equal_configurations_are_told_by_the_names_that_moved_alone() -> None:
    base = host(5000)
    now = {"networks": NoWalk(base, bn5000={"bridged": True}), "bonds": NoWalk()}
    replayed = {"networks": NoWalk(base, bn5000={"bridged": True}), "bonds": NoWalk()}
    changed = {"networks": {"bn5000"}, "bonds": set()}
    assert same_running(now, replayed, changed, {"networks": ["bn5000"], "bonds": []}) is True


def test_a_planned_network_the_store_wrote_otherwise_differs() -> None:
    base = host(10)
    now = {"networks": {**base, "bn10": {"bridged": False}}, "bonds": {}}
    replayed = {"networks": {**base, "bn10": {"bridged": True}}, "bonds": {}}
    changed = {"networks": {"bn10"}, "bonds": set()}
    assert same_running(now, replayed, changed, {"networks": ["bn10"], "bonds": []}) is False


def test_a_store_write_outside_the_plan_differs() -> None:
    base = host(10)
    now = {"networks": {k: v for k, v in base.items() if k != "bn3"}, "bonds": {}}
    replayed = {"networks": dict(base), "bonds": {}}
    changed = {"networks": {"bn3"}, "bonds": set()}
    assert same_running(now, replayed, changed, {"networks": [], "bonds": []}) is False


def test_unknown_store_writes_or_other_sections_are_not_judged() -> None:
    config = {"networks": host(3), "bonds": {}}
    names = {"networks": [], "bonds": []}
    assert same_running(config, dict(config), None, names) is None
    assert same_running(config, {**config, "extra": {}}, {"networks": set()}, names) is None


def test_same_running_agrees_with_a_whole_comparison() -> None:
    rng = random.Random(21)
    for _ in range(500):
        base = {"networks": host(rng.randrange(0, 12)), "bonds": {"bond0": {"nics": ["a"]}}}
        replayed = {"networks": dict(base["networks"]), "bonds": dict(base["bonds"])}
        names: dict[str, list[str]] = {"networks": [], "bonds": []}
        for _ in range(rng.randrange(0, 4)):  # the plan's operations
            key = rng.choice(("networks", "bonds"))
            name = rng.choice(("bn1", "bn5", "bn20", "bond0", "bond1"))
            names[key].append(name)
            if rng.random() < 0.4:
                replayed[key].pop(name, None)
            else:
                replayed[key][name] = {"mtu": rng.choice((1500, 9000))}
        # what the store wrote: mostly the plan's own names, sometimes more
        now = {"networks": dict(base["networks"]), "bonds": dict(base["bonds"])}
        changed: dict[str, set[str]] = {"networks": set(), "bonds": set()}
        for key in ("networks", "bonds"):
            for name in names[key]:
                changed[key].add(name)
                if name in replayed[key]:
                    now[key][name] = dict(replayed[key][name])
                else:
                    now[key].pop(name, None)
        if rng.random() < 0.3:
            key, name = rng.choice(("networks", "bonds")), rng.choice(("bn2", "bn1", "bond0"))
            changed[key].add(name)
            now[key][name] = {"mtu": rng.choice((1500, 1400))}
        assert same_running(now, replayed, changed, names) == (now == replayed)
