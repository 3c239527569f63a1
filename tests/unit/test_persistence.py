"""Unified persistence: atomic documents, name safety, the atomic swap of the
persistent configuration."""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import pytest

from persistence import atomic, unified
from persistence.atomic import atomic_remove, atomic_write_json, read_json
from persistence.unified import ConfigStore, UnifiedPersistence
from shared.config import Config
from shared.errors import ErrorCode, NetError

NET1 = {"nic": "eth0", "bridged": True, "mtu": 1500}
NET2 = {"vlan": 10, "bonding": "bond0", "bridged": False}
BOND0 = {"nics": ["eth1", "eth2"], "options": "mode=4"}

OLD = {"networks": {"net1": NET1, "gone": {"nic": "eth3"}}, "bonds": {"bond0": BOND0}}
NEW = {
    "networks": {"net1": {**NET1, "mtu": 9000}, "net2": NET2},
    "bonds": {"bond0": {**BOND0, "options": "mode=1"}, "bond1": {"nics": ["eth4"]}},
}
EMPTY: dict[str, dict] = {"networks": {}, "bonds": {}}


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing may catch
    it and tidy up."""


def make_config(base: Path) -> Config:
    return Config(run_dir=base / "run", lib_dir=base / "lib")


def files_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*"))


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    return ConfigStore(tmp_path / "netconf")


# --- atomic --------------------------------------------------------------


def test_json_is_written_with_sorted_keys_and_trailing_newline(tmp_path):
    target = tmp_path / "doc"
    atomic_write_json(target, {"b": 1, "a": {"d": 2, "c": 3}})
    text = target.read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert read_json(target) == {"a": {"c": 3, "d": 2}, "b": 1}


def test_failure_between_write_and_rename_keeps_old_document_and_no_temp_file(store, monkeypatch):
    store.set_network("net1", NET1)

    def fail(tmp, target):
        assert Path(tmp).read_text() == atomic.encode_json(NET2)  # fully written
        raise OSError("injected")

    monkeypatch.setattr(atomic, "_rename_into_place", fail)
    with pytest.raises(OSError, match="injected"):
        store.set_network("net1", NET2)
    assert store.networks() == {"net1": NET1}
    assert os.listdir(store.path / "nets") == ["net1"]


def test_unencodable_document_creates_no_file(store):
    with pytest.raises(NetError) as err:
        store.set_network("net1", {"mtu": float("nan")})
    assert err.value.code == ErrorCode.BAD_PARAMS
    assert not store.path.exists()


def test_removing_a_missing_file_is_fine(tmp_path):
    assert atomic_remove(tmp_path / "nothing") is False
    assert atomic_remove(tmp_path / "no-folder" / "nothing") is False


# --- one tree ------------------------------------------------------------


def test_round_trip(store):
    store.set_network("net1", NET1)
    store.set_network("net2", NET2)
    store.set_bond("bond0", BOND0)
    assert store.networks() == {"net1": NET1, "net2": NET2}
    assert store.bonds() == {"bond0": BOND0}
    assert ConfigStore(store.path).snapshot() == {
        "networks": {"net1": NET1, "net2": NET2},
        "bonds": {"bond0": BOND0},
    }


def test_remove_deletes_only_that_document(store):
    store.set_network("net1", NET1)
    store.set_network("net2", NET2)
    store.set_bond("bond0", BOND0)
    store.remove_network("net1")
    store.remove_bond("bond0")
    store.remove_bond("bond0")  # again: nothing to do
    assert store.snapshot() == {"networks": {"net2": NET2}, "bonds": {}}


def test_blockingdhcp_is_not_persisted(store):
    store.set_network("net1", {**NET1, "blockingdhcp": True})
    assert store.networks() == {"net1": NET1}
    assert "blockingdhcp" not in (store.path / "nets" / "net1").read_text()


UNSAFE_NAMES = [
    "../x",
    "/",
    "/etc/passwd",
    "a/b",
    ".",
    "..",
    "",
    "net\0",
    "net\n",
    "bond0\n",
    "bond0/../../x",
    "../bond0",
    ".bond0",
    None,
    5,
    b"net1",
    ("net1",),
]


def _set_network(up, name):
    up.running.set_network(name, NET1)


def _remove_network(up, name):
    up.running.remove_network(name)


def _set_bond(up, name):
    up.running.set_bond(name, BOND0)


def _remove_bond(up, name):
    up.running.remove_bond(name)


def _replace_nets(up, name):
    up.replace_running({"net1": NET1, name: NET2}, {})


def _replace_bonds(up, name):
    up.replace_running({"net1": NET1}, {"bond0": BOND0, name: BOND0})


@pytest.mark.parametrize(
    "operation",
    [_set_network, _remove_network, _set_bond, _remove_bond, _replace_nets, _replace_bonds],
)
@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=repr)
def test_unsafe_name_is_rejected_with_code_21_before_any_io(tmp_path, operation, name):
    up = UnifiedPersistence(make_config(tmp_path))
    with pytest.raises(NetError) as err:
        operation(up, name)
    assert err.value.code == ErrorCode.BAD_PARAMS
    assert repr(name) in err.value.message
    assert files_under(tmp_path) == []


def test_bond_must_follow_the_bond_name_rule_with_code_21(store):
    with pytest.raises(NetError) as err:
        store.set_bond("net1", BOND0)
    assert err.value.code == ErrorCode.BAD_PARAMS
    assert "'net1'" in err.value.message
    assert not store.path.exists()


def test_non_mapping_attributes_are_rejected(store):
    with pytest.raises(NetError) as err:
        store.set_network("net1", ["nic", "eth0"])
    assert err.value.code == ErrorCode.BAD_PARAMS
    assert not store.path.exists()


def test_stray_files_are_ignored_and_logged(store, caplog):
    store.set_network("net1", NET1)
    store.set_bond("bond0", BOND0)
    nets, bonds = store.path / "nets", store.path / "bonds"
    (nets / ".net1.abcd.tmp").write_text("{partial")
    (nets / "bad name").write_text("{}")
    (nets / "subdir").mkdir()
    (nets / "link").symlink_to(nets / "net1")
    (bonds / "notabond").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="persistence.unified"):
        assert store.snapshot() == {"networks": {"net1": NET1}, "bonds": {"bond0": BOND0}}
    logged = caplog.text
    for name in (".net1.abcd.tmp", "bad name", "subdir", "link", "notabond"):
        assert repr(name) in logged


def test_document_that_is_not_a_json_object_is_skipped(store, caplog):
    store.set_network("net1", NET1)
    (store.path / "nets" / "net2").write_text("{truncated")
    (store.path / "nets" / "net3").write_text("[1, 2]")
    with caplog.at_level(logging.ERROR, logger="persistence.unified"):
        assert store.networks() == {"net1": NET1}
    assert "net2" in caplog.text and "net3" in caplog.text


def test_replace_running_leaves_exactly_the_given_content(tmp_path):
    up = UnifiedPersistence(make_config(tmp_path))
    up.replace_running(OLD["networks"], OLD["bonds"])
    up.replace_running(NEW["networks"], NEW["bonds"])
    assert up.running.snapshot() == NEW
    up.replace_running({}, {})
    assert up.running.snapshot() == EMPTY


def test_replace_running_with_one_bad_name_writes_nothing(tmp_path):
    up = UnifiedPersistence(make_config(tmp_path))
    up.replace_running(OLD["networks"], OLD["bonds"])
    with pytest.raises(NetError):
        up.replace_running(NEW["networks"], {**NEW["bonds"], "../bond9": {}})
    assert up.running.snapshot() == OLD


# --- the persistent configuration ----------------------------------------


def persistence_with(base: Path, layout: str) -> UnifiedPersistence:
    """A persistence whose persistent configuration is OLD (EMPTY for a first
    run) in the given on-disk layout, and whose running one is NEW."""
    config = make_config(base)
    up = UnifiedPersistence(config)
    if layout == "symlink":
        up.replace_running(OLD["networks"], OLD["bonds"])
        up.set_safe_config()
    elif layout == "real-folder":  # left by an older layout
        ConfigStore(config.persistent_config_dir).replace(OLD["networks"], OLD["bonds"])
    up.replace_running(NEW["networks"], NEW["bonds"])
    return up


def expected_old(layout: str) -> dict:
    return EMPTY if layout == "first-run" else OLD


def persistence_folder(up: UnifiedPersistence) -> Path:
    return up.persistent.path.parent


def test_persistent_view_is_read_only(tmp_path):
    up = UnifiedPersistence(make_config(tmp_path))
    assert not hasattr(up.persistent, "set_network")
    assert not hasattr(up.persistent, "replace")


def test_first_run_has_an_empty_persistent_configuration(tmp_path):
    up = UnifiedPersistence(make_config(tmp_path))
    assert up.restore_source() == EMPTY
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("layout", ["first-run", "symlink", "real-folder"])
def test_set_safe_config_copies_running_to_persistent(tmp_path, layout):
    up = persistence_with(tmp_path, layout)
    assert up.restore_source() == expected_old(layout)
    up.set_safe_config()
    assert up.restore_source() == NEW
    assert up.persistent.networks() == NEW["networks"]
    assert up.persistent.bonds() == NEW["bonds"]
    assert up.persistent.path.is_symlink()


def test_set_safe_config_removes_old_generations(tmp_path):
    up = persistence_with(tmp_path, "symlink")
    for _ in range(3):
        up.set_safe_config()
    link = up.persistent.path
    assert sorted(os.listdir(link.parent)) == ["netconf", os.readlink(link)]


REAL_RENAME_INTO_PLACE = atomic._rename_into_place


def set_crash_points(monkeypatch, on_step) -> None:
    """Call ``on_step`` at every step of the swap and after every document
    write; ``on_step=None`` restores the real behaviour."""
    if on_step is None:
        monkeypatch.setattr(unified, "_checkpoint", lambda name: None)
        monkeypatch.setattr(atomic, "_rename_into_place", REAL_RENAME_INTO_PLACE)
        return

    def rename_then_step(tmp, target):
        REAL_RENAME_INTO_PLACE(tmp, target)
        on_step(f"wrote:{target}")

    monkeypatch.setattr(unified, "_checkpoint", on_step)
    monkeypatch.setattr(atomic, "_rename_into_place", rename_then_step)


@pytest.mark.parametrize("layout", ["first-run", "symlink", "real-folder"])
def test_set_safe_config_stopped_at_any_step_leaves_old_or_new(tmp_path, monkeypatch, layout):
    steps: list[str] = []
    dry_run = persistence_with(tmp_path / "dry-run", layout)
    set_crash_points(monkeypatch, steps.append)
    dry_run.set_safe_config()
    assert "swap:link-replaced" in steps
    assert sum(step.startswith("wrote:") for step in steps) == 4  # 2 nets, 2 bonds

    seen = set()
    for index, step in enumerate(steps):
        base = tmp_path / f"crash-{index}"
        set_crash_points(monkeypatch, None)
        up = persistence_with(base, layout)
        calls = iter(range(len(steps)))

        def crash(name, index=index, calls=calls):
            if next(calls) == index:
                raise Crash(name)

        set_crash_points(monkeypatch, crash)
        with pytest.raises(Crash):
            up.set_safe_config()
        set_crash_points(monkeypatch, None)

        after_crash = UnifiedPersistence(make_config(base)).restore_source()
        assert after_crash in (expected_old(layout), NEW), f"stopped at {step}"
        seen.add("new" if after_crash == NEW else "old")
        # The next run recovers: new content, no debris, one generation.
        up.set_safe_config()
        assert up.restore_source() == NEW, f"retry after {step}"
        link = up.persistent.path
        assert sorted(os.listdir(link.parent)) == ["netconf", os.readlink(link)]
    assert seen == {"old", "new"}


def test_document_write_failure_while_staging_keeps_old_persistent(tmp_path, monkeypatch):
    up = persistence_with(tmp_path, "symlink")
    writes = iter(range(100))

    def fail_third(tmp, target):
        if next(writes) == 2:
            raise OSError("injected")
        os.replace(tmp, target)

    monkeypatch.setattr(atomic, "_rename_into_place", fail_third)
    with pytest.raises(OSError, match="injected"):
        up.set_safe_config()
    assert up.restore_source() == OLD


# --- many documents at once ----------------------------------------------


def test_update_writes_and_removes_many_documents(store):
    store.update(OLD["networks"], OLD["bonds"])
    store.update(NEW["networks"], removed_networks=["gone"], removed_bonds=["bond0"])
    assert store.snapshot() == {"networks": NEW["networks"], "bonds": {}}


def test_update_with_one_bad_name_writes_nothing(store):
    store.update(OLD["networks"], OLD["bonds"])
    with pytest.raises(NetError):
        store.update(NEW["networks"], removed_networks=["../etc"])
    assert store.snapshot() == OLD


def test_update_stopped_at_a_rename_leaves_each_document_old_or_new_and_no_debris(
    store, monkeypatch
):
    store.update(OLD["networks"], OLD["bonds"])
    renames = []

    def crash_on_second(tmp, target):
        if len(renames) == 1:
            raise Crash
        renames.append(target)
        os.replace(tmp, target)

    monkeypatch.setattr(atomic, "_rename_into_place", crash_on_second)
    with pytest.raises(Crash):
        store.update(NEW["networks"], NEW["bonds"])
    nets = store.networks()
    for name in ("net1", "net2"):
        assert nets.get(name) in (OLD["networks"].get(name), NEW["networks"][name])
    assert sum(nets.get(n) == NEW["networks"][n] for n in ("net1", "net2")) == 1
    assert [p.name for p in files_under(store.path) if p.name.startswith(".")] == []


def test_replace_rewrites_only_documents_that_changed(tmp_path):
    up = UnifiedPersistence(make_config(tmp_path))
    up.replace_running(OLD["networks"], OLD["bonds"])
    kept = up.running.path / "bonds" / "bond0"
    before = kept.stat().st_ino
    up.replace_running({**OLD["networks"], "net1": NEW["networks"]["net1"]}, OLD["bonds"])
    assert kept.stat().st_ino == before  # not rewritten: same inode
    assert up.running.networks()["net1"] == NEW["networks"]["net1"]


def test_many_writes_are_flushed_without_one_fsync_each(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    atomic.atomic_write_many([(tmp_path / f"doc{i}", "x\n") for i in range(50)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"doc{i}" for i in range(50))
    assert len(synced) == 1  # the folder; the files by one syncfs


def test_a_plans_intent_keeps_an_edited_network_and_drops_removed_ones():
    from superd.setup_networks import _intent

    intent = _intent([
        {"op": "remove_network", "name": "edited", "attrs": NET1},
        {"op": "remove_network", "name": "gone", "attrs": NET1},
        {"op": "remove_bond", "name": "bond9", "attrs": BOND0},
        {"op": "edit_bond", "name": "bond0", "attrs": BOND0},
        {"op": "add_network", "name": "edited", "attrs": NET2},
    ])  # fmt: skip
    assert intent.networks == {"edited": NET2} and intent.bonds == {"bond0": BOND0}
    assert intent.removed_networks == ["gone"] and intent.removed_bonds == ["bond9"]


def test_the_shared_snapshot_follows_the_stores_own_writes_without_reading_files(
    store, monkeypatch
):
    store.update(OLD["networks"], OLD["bonds"])
    store.shared_snapshot()
    monkeypatch.setattr(unified, "_read_tree", lambda *a: pytest.fail("read the files"))
    store.update(NEW["networks"], removed_networks=["gone"])
    assert store.snapshot() == {"networks": NEW["networks"], "bonds": OLD["bonds"]}
    store.replace(OLD["networks"], {})
    assert store.shared_snapshot()[1] == {"networks": OLD["networks"], "bonds": {}}


def test_a_snapshot_is_a_private_copy(store):
    store.update(OLD["networks"], OLD["bonds"])
    mine = store.snapshot()
    mine["networks"]["net1"]["mtu"] = 1
    assert store.snapshot() == OLD


def test_a_failed_write_makes_the_next_snapshot_read_the_files(store, monkeypatch):
    store.update(OLD["networks"], OLD["bonds"])
    store.shared_snapshot()
    monkeypatch.setattr(atomic, "_rename_into_place", lambda tmp, target: (_ for _ in ()).throw(
        OSError("injected")))  # fmt: skip
    with pytest.raises(OSError):
        store.update(NEW["networks"])
    assert store.snapshot() == OLD


def test_an_update_that_writes_nothing_keeps_the_shared_snapshot(store: ConfigStore) -> None:
    # a change's second update (no removal after an addition, no addition
    # before a removal): no copy of the host's networks
    store.update(OLD["networks"], OLD["bonds"])
    first, before = store.shared_snapshot()
    store.update(removed_networks=[])
    generation, after = store.shared_snapshot()
    assert after is before and generation == first + 1
    assert store.changed_between(first, generation) == {"networks": set(), "bonds": set()}


def test_a_write_of_networks_shares_the_bonds_section_and_leaves_the_old_snapshot(
    store: ConfigStore,
) -> None:
    store.update(OLD["networks"], OLD["bonds"])
    before = store.shared_snapshot()[1]
    store.update({"net2": NET2}, removed_networks=["gone"])
    after = store.shared_snapshot()[1]
    assert after["bonds"] is before["bonds"]
    assert after["networks"] == {"net1": NET1, "net2": NET2}
    assert before == OLD  # readers holding it see it unchanged
    assert ConfigStore(store.path).snapshot() == after  # what the files hold


def test_store_names_what_its_writes_changed_between_generations(store: ConfigStore) -> None:
    store.update({"a": NET1, "b": NET1})
    first = store.shared_snapshot()[0]
    store.update({"c": NET1}, removed_networks=["a"])
    store.update(bonds={"bond0": {"nics": ["eth1"]}})
    last = store.shared_snapshot()[0]
    assert store.changed_between(first, last) == {"networks": {"a", "c"}, "bonds": {"bond0"}}


def test_store_does_not_name_the_changes_of_a_whole_replace(store: ConfigStore) -> None:
    store.update({"a": NET1})
    first = store.shared_snapshot()[0]
    store.replace({"b": NET1}, {})
    assert store.changed_between(first, store.shared_snapshot()[0]) is None


def _json_dumps(doc: object) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, allow_nan=False) + "\n"


def test_encode_json_writes_flat_documents_as_the_json_module_does() -> None:
    """A network's attributes are encoded without the json module's Python
    encoder (indent), to the very same text."""
    rng = random.Random(21)
    values = [True, False, None, 0, -7, 1500, 2**70, "", "10.0.0.1", 'q"uo\\te',
              "é ü \u2603 \U0001f600", "\n\t\x00", [], ["8.8.8.8", "1.1.1.1"],
              [1, None, True]]  # fmt: skip
    for _ in range(300):
        doc = {
            rng.choice(["ipaddr", "bridged", "é", "", "a b", "\x7f", str(rng.random())]):
            rng.choice(values)
            for _ in range(rng.randint(1, 8))
        }
        assert atomic.encode_json(doc) == _json_dumps(doc)


def test_encode_json_leaves_nested_and_odd_documents_to_the_json_module() -> None:
    for doc in ({}, {"hostQos": {"out": {"ls": {"m2": 8}}}}, {"mtu": 1.5}, [1, 2], {"a": [[1]]},
                {"a": [1.5]}, {"a": [{}]}):
        assert atomic.encode_json(doc) == _json_dumps(doc)
    with pytest.raises(ValueError):
        atomic.encode_json({"x": float("nan")})
    with pytest.raises(TypeError):
        atomic.encode_json({1: "a", "b": 2})
