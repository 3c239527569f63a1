"""Which keyfiles ``remove-net-persistence`` removes under ``nm``: only
regular files of the caller's with netreload's mark in their ``[user]``
group (``configurators.nm_boot``). The functional test removes a keyfile a
real NetworkManager wrote; these pin what is never taken for one."""

from __future__ import annotations

import os
from pathlib import Path

from configurators.nm_boot import remove_marked_keyfiles

MARKED = "[connection]\nid=br0\ntype=bridge\n\n[user]\norg.ovirt.netreload=netreload\n"


def test_a_marked_keyfile_is_removed(tmp_path: Path) -> None:
    (tmp_path / "br0.nmconnection").write_text(MARKED)
    assert remove_marked_keyfiles(tmp_path) == ["br0.nmconnection"]
    assert list(tmp_path.iterdir()) == []


def test_the_mark_elsewhere_than_the_user_group_is_no_mark(tmp_path: Path) -> None:
    text = "[connection]\nid=br0\norg.ovirt.netreload=netreload\n# [user]\n"
    (tmp_path / "admin.nmconnection").write_text(text)
    (tmp_path / "other.nmconnection").write_text(MARKED.replace("=netreload\n", "=someone\n"))
    assert remove_marked_keyfiles(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 2


def test_an_unparsable_file_stays(tmp_path: Path) -> None:
    (tmp_path / "broken").write_text("org.ovirt.netreload=netreload\n" + MARKED)
    (tmp_path / "binary").write_bytes(b"\xff\xfe" + MARKED.encode())
    assert remove_marked_keyfiles(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 2


def test_a_symbolic_link_to_a_marked_keyfile_stays(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "br0.nmconnection").write_text(MARKED)
    folder = tmp_path / "keyfiles"
    folder.mkdir()
    os.symlink(target / "br0.nmconnection", folder / "br0.nmconnection")
    assert remove_marked_keyfiles(folder) == []
    assert (target / "br0.nmconnection").exists() and (folder / "br0.nmconnection").is_symlink()


def test_a_missing_folder_removes_nothing(tmp_path: Path) -> None:
    assert remove_marked_keyfiles(tmp_path / "none") == []
