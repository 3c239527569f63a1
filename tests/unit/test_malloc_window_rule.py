"""Which changes superd runs in a malloc window (``superd.plan_scope``): a
big apply_plan, whatever it does, and a restore rebuilding as many networks
and bonds (benchmarks/README.md, round 9: a window around big removals alone
keeps the arenas an earlier big addition filled)."""

from superd.plan_scope import BIG_CHANGE, is_big, restore_is_big


def ops(kind: str, count: int) -> list[dict]:
    return [{"op": kind, "name": f"bn{i}", "attrs": {}} for i in range(count)]


def persistent(networks: int, bonds: int = 0) -> dict:
    return {"networks": {f"bn{i}": {"bridged": True} for i in range(networks)},
            "bonds": {f"bond{i}": {"nics": ["eth0"]} for i in range(bonds)}}  # fmt: skip


def test_big_addition_opens_the_window() -> None:
    assert is_big(ops("add_network", 1000))


def test_big_removal_opens_the_window() -> None:
    assert is_big(ops("remove_network", 1000))


def test_change_below_the_big_size_runs_on_pymalloc() -> None:
    assert not is_big(ops("add_network", BIG_CHANGE - 1))


def test_restore_of_many_networks_opens_the_window() -> None:
    assert restore_is_big(persistent(1000))


def test_restore_of_a_few_networks_runs_on_pymalloc() -> None:
    assert not restore_is_big(persistent(3, bonds=1))


def test_restore_counts_bonds_with_networks() -> None:
    assert restore_is_big(persistent(BIG_CHANGE - 10, bonds=10))
    assert not restore_is_big(persistent(BIG_CHANGE - 10, bonds=9))


def test_restore_of_an_empty_configuration_runs_on_pymalloc() -> None:
    assert not restore_is_big({})
