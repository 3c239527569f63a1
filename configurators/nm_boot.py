"""At boot, before NetworkManager starts (``netreload remove-net-persistence``
with ``net_configurator = nm``): the keyfiles of ``[nm] keyfile_dir`` that
carry netreload's mark are removed.

netreload writes its profiles in memory only (restore-nets rebuilds them
from unified persistence); a keyfile of netreload's on disk was left by an
older version or written by hand, and NetworkManager would bring up at boot
a network the persistent configuration may not name. A keyfile is
netreload's when its ``[user]`` group holds :data:`~configurators.nm_dbus.MARK_KEY`
with :data:`~configurators.nm_dbus.MARK_VALUE`, as NetworkManager writes the
``user`` setting netreload gives its profiles. Anything else stays: an
unmarked keyfile (the administrator's), one that cannot be read or parsed,
a symbolic link, a file of another user, a file too big to be a keyfile.
Files only: NetworkManager is not running yet, and nothing is asked of it.
"""

from __future__ import annotations

import configparser
import logging
import os
import stat
from pathlib import Path

from configurators.nm_dbus import MARK_KEY, MARK_VALUE
from persistence.atomic import atomic_remove_many

log = logging.getLogger("netreload.nm")

#: larger than any keyfile netreload would write
MAX_KEYFILE = 1 << 20


def is_netreloads(path: Path) -> bool:
    """Whether ``path`` is a regular keyfile of the caller's, netreload's mark in it."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        if info.st_size > MAX_KEYFILE:
            return False
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    # GLib key files: "key=value" lines, "#" comments, case-sensitive keys
    parser = configparser.ConfigParser(
        interpolation=None, strict=False, delimiters=("=",), comment_prefixes=("#",)
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error:
        return False
    return parser.get("user", MARK_KEY, fallback="").strip() == MARK_VALUE


def remove_marked_keyfiles(folder: Path) -> list[str]:
    """Remove netreload's keyfiles from ``folder`` (not its subfolders); the
    file names removed, sorted."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder))
    except FileNotFoundError:
        return []
    marked = [name for name in names if is_netreloads(folder / name)]
    atomic_remove_many(folder / name for name in marked)
    if marked:
        log.info("removed netreload's keyfiles from %s: %s", folder, ", ".join(marked))
    return marked
