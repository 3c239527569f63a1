"""The running store beside many networks: a change's new snapshot is
layered over the one before (``persistence.unified._next_section``), so a
one-network change costs its documents, not a copy of the host; what is
encoded (``snapshot()``, the netinfo answer, the journal) gets plain dicts
equal to what the files hold, and the files are written as before."""

from __future__ import annotations

import orjson
import pytest

from persistence.atomic import encode_json
from persistence.journal import TransactionJournal
from persistence.sections import plain_snapshot
from persistence.unified import ConfigStore
from shared.layered import FOLD_MIN, FoldedWalks
from superd.plan_intake import _copy

MANY = FOLD_MIN + 36  # above the size a dict copy is kept for


def doc(i: int) -> dict:
    return {"bridged": True, "ipaddr": f"10.0.{i}.1", "mtu": 1500, "stp": False}


@pytest.fixture
def store(tmp_path) -> ConfigStore:
    store = ConfigStore(tmp_path / "netconf")
    store.update({f"net{i}": doc(i) for i in range(MANY)})
    store.shared_snapshot()  # read from the files once: the dict later versions share
    return store


def test_a_change_beside_many_networks_layers_its_snapshot_over_the_one_before(store) -> None:
    before = store.shared_snapshot()[1]
    kept = dict(before["networks"])
    store.update({"extra": doc(999)})
    added = store.shared_snapshot()[1]
    store.update(removed_networks=["extra", "net3"])
    removed = store.shared_snapshot()[1]
    assert type(added["networks"]) is FoldedWalks and type(removed["networks"]) is FoldedWalks
    assert removed["networks"].shares_base(added["networks"])  # no copy of the host
    assert before["networks"] == kept  # readers holding the one before see it unchanged
    assert list(added["networks"]) == [*kept, "extra"]
    assert dict(removed["networks"]) == {k: v for k, v in kept.items() if k != "net3"}
    assert ConfigStore(store.path).snapshot() == removed  # what the files hold


def test_what_is_encoded_of_a_layered_snapshot_is_plain_dicts(store) -> None:
    store.update({"extra": doc(999)}, removed_networks=["net0"])
    shared = store.shared_snapshot()[1]
    on_disk = ConfigStore(store.path).snapshot()
    mine = store.snapshot()
    assert type(mine["networks"]) is dict and mine == on_disk
    encodable = plain_snapshot(shared)
    assert all(type(section) is dict for section in encodable.values())
    assert orjson.loads(orjson.dumps(encodable)) == on_disk
    assert plain_snapshot(shared)["networks"] is encodable["networks"]  # folded once


def test_the_files_beside_many_networks_are_written_as_before(store) -> None:
    store.update({"extra": doc(999), "net1": doc(1001)}, removed_networks=["net2"])
    folder = store.path / "nets"
    assert (folder / "extra").read_text() == encode_json(doc(999))
    assert (folder / "net1").read_text() == encode_json(doc(1001))
    assert not (folder / "net2").exists()
    names = store.shared_snapshot()[1]["networks"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_the_journal_of_a_layered_snapshot_holds_it_whole(store, tmp_path) -> None:
    store.update({"extra": doc(999)})
    shared = store.shared_snapshot()[1]
    journal = TransactionJournal(tmp_path / "run")
    journal.begin("apply_plan", shared)
    assert journal.pending()["before"] == ConfigStore(store.path).snapshot()
    journal.begin("apply_plan", shared, {"networks": ["extra", "net5"]})
    assert journal.pending(shared)["before"] == ConfigStore(store.path).snapshot()


def test_a_plans_replay_on_a_layered_section_shares_it(store) -> None:
    store.update({"extra": doc(999)})
    section = store.shared_snapshot()[1]["networks"]
    replay = _copy(section)
    replay["more"] = doc(1000)
    assert type(replay) is FoldedWalks and replay.shares_base(section)
    assert "more" not in section and list(replay) == [*section, "more"]


def test_a_big_removal_leaves_no_removed_document_in_the_snapshot(store) -> None:
    before = store.shared_snapshot()[1]
    store.update(removed_networks=list(before["networks"]))
    removed = store.shared_snapshot()[1]["networks"]
    assert len(removed) == 0
    # folded: not tombstones over a base that holds every removed document
    # until the next write (superd's memory after a big removal)
    assert type(removed) is dict and removed == {}
    assert ConfigStore(store.path).snapshot()["networks"] == {}
