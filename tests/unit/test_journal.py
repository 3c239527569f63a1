"""The transaction journal and the clean-up of writes cut short."""

from __future__ import annotations

from pathlib import Path

import orjson

from persistence.atomic import remove_debris
from persistence.journal import NAME, TransactionJournal

BEFORE = {"networks": {"a": {"nic": "eth0"}}, "bonds": {}}


def test_journal_begun_is_pending_with_its_before(tmp_path: Path) -> None:
    journal = TransactionJournal(tmp_path)
    journal.begin("apply_plan", BEFORE)
    entry = journal.pending()
    assert entry is not None
    assert entry["before"] == BEFORE and entry["verb"] == "apply_plan"


def test_journal_ended_leaves_nothing_to_recover(tmp_path: Path) -> None:
    journal = TransactionJournal(tmp_path)
    journal.begin("apply_plan", BEFORE)
    journal.end()
    assert journal.pending() is None and not (tmp_path / NAME).exists()


def test_journal_that_does_not_parse_is_set_aside_not_trusted(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text('{"format": 1, "before": ')
    assert TransactionJournal(tmp_path).pending() is None
    assert (tmp_path / f"{NAME}.corrupt").exists() and not (tmp_path / NAME).exists()


def test_journal_of_another_shape_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text('{"format": 1, "verb": "x", "before": {"networks": []}}')
    assert TransactionJournal(tmp_path).pending() is None
    assert (tmp_path / f"{NAME}.corrupt").exists()


def test_debris_of_cut_short_writes_is_removed_documents_kept(tmp_path: Path) -> None:
    (tmp_path / "net_a").write_text("{}")
    (tmp_path / ".net_b.123.0.tmp").write_text("{")
    assert remove_debris(tmp_path) == [".net_b.123.0.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net_a"]


def test_journal_with_names_writes_only_those_entries(tmp_path: Path) -> None:
    before = {"networks": {f"n{i}": {"nic": "eth0", "vlan": i} for i in range(100)}, "bonds": {}}
    TransactionJournal(tmp_path).begin("apply_plan", before, {"networks": ["n7", "new"]})
    document = orjson.loads((tmp_path / NAME).read_bytes())
    assert document["changes"] == {
        "networks": {"n7": {"nic": "eth0", "vlan": 7}, "new": None},
        "bonds": {},
    }
    assert "before" not in document


def test_journal_of_changes_gives_before_from_the_running_configuration(tmp_path: Path) -> None:
    before = {"networks": {"a": {"nic": "eth0"}, "b": {"nic": "eth1", "mtu": 1500}}, "bonds": {}}
    journal = TransactionJournal(tmp_path)
    journal.begin("apply_plan", before, {"networks": ["b", "c"], "bonds": ["bond0"]})
    # as a crash leaves it: c's intent written, b changed, bond0 added
    on_disk = {
        "networks": {"a": {"nic": "eth0"}, "b": {"nic": "eth1", "mtu": 9000}, "c": {"nic": "x"}},
        "bonds": {"bond0": {"nics": ["eth2"]}},
    }
    entry = journal.pending(on_disk)
    assert entry is not None and entry["before"] == before


def test_journal_of_changes_naming_a_non_document_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text(
        '{"format": 2, "verb": "x", "changes": {"networks": {"a": []}, "bonds": {}}}'
    )
    assert TransactionJournal(tmp_path).pending({"networks": {}, "bonds": {}}) is None
    assert (tmp_path / f"{NAME}.corrupt").exists()
