"""A big ``ConfigStore.update`` (a request of a thousand networks) checks each
kind's folder once, not once per document, and still writes every document."""

from __future__ import annotations

from pathlib import Path

from persistence import unified
from persistence.atomic import read_json
from persistence.unified import ConfigStore


def test_a_big_update_checks_each_folder_once(tmp_path: Path, monkeypatch) -> None:
    checked: list[Path] = []
    real = unified.ensure_dir

    def counting(path):
        checked.append(Path(path))
        return real(path)

    monkeypatch.setattr(unified, "ensure_dir", counting)
    nets = {f"net{i}": {"bridged": True, "mtu": 1500 + i} for i in range(50)}
    ConfigStore(tmp_path).update(networks=nets, bonds={"bond0": {"nics": ["eth1"]}})
    assert sorted(p.name for p in checked) == ["bonds", "nets"]
    assert {p.name for p in (tmp_path / "nets").iterdir()} == set(nets)
    assert read_json(tmp_path / "nets" / "net7") == nets["net7"]
    assert read_json(tmp_path / "bonds" / "bond0") == {"nics": ["eth1"]}


def test_an_update_without_bonds_makes_no_bonds_folder(tmp_path: Path) -> None:
    ConfigStore(tmp_path).update(networks={"net1": {"bridged": True}})
    assert not (tmp_path / "bonds").exists()
