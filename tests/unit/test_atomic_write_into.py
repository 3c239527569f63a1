"""``persistence.atomic.atomic_write_into``: many documents of known
folders written as ``atomic_write_many`` writes them (a big intent's), and
a name that is not one path component never becomes a path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from persistence import atomic


def test_documents_land_in_their_folders_with_their_text(tmp_path: Path) -> None:
    nets, bonds = tmp_path / "nets", tmp_path / "bonds"
    nets.mkdir(), bonds.mkdir()
    atomic.atomic_write_into({nets: [("bn0", "a\n"), ("bn1", "b\n")], bonds: [("bond0", "c\n")]})
    assert (nets / "bn0").read_text() == "a\n" and (nets / "bn1").read_text() == "b\n"
    assert (bonds / "bond0").read_text() == "c\n"
    assert sorted(os.listdir(nets)) == ["bn0", "bn1"]  # no temporary file left
    assert (nets / "bn0").stat().st_mode & 0o777 == atomic.DEFAULT_MODE


def test_a_document_is_replaced_whole(tmp_path: Path) -> None:
    (tmp_path / "bn0").write_text("old, longer than the new one\n")
    atomic.atomic_write_into({tmp_path: [("bn0", "new\n")]})
    assert (tmp_path / "bn0").read_text() == "new\n"


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".hidden", "."])
def test_a_name_that_is_no_plain_component_is_refused_before_any_write(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ValueError):
        atomic.atomic_write_into({tmp_path: [("bn0", "a\n"), (name, "b\n")]})
    assert os.listdir(tmp_path) == []  # bn0's temporary file removed, nothing renamed


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    def fail(tmp: str, target: str) -> None:
        raise OSError("injected")

    monkeypatch.setattr(atomic, "_rename_into_place", fail)
    with pytest.raises(OSError):
        atomic.atomic_write_into({tmp_path: [("bn0", "a\n"), ("bn1", "b\n")]})
    assert os.listdir(tmp_path) == []


def test_flat_documents_are_the_json_modules_text_with_every_ascii_character() -> None:
    import json

    for code in range(128):
        for doc in ({f"k{chr(code)}": f"v{chr(code)}", "n": [chr(code)], "i": -5, "b": None},
                    {"big": 2**64, "s": chr(code)}):  # fmt: skip
            assert atomic.encode_json(doc) == json.dumps(doc, sort_keys=True, indent=2) + "\n"
