"""The sections of the running store's snapshots (``persistence.unified``):
a host's worth of networks is layered over the snapshot before, so a
one-network change costs its documents, not a copy of the host; encoders
(orjson takes only dicts) get the folded dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.layered import FOLD_MIN, FoldedWalks, encodable

Snapshot = dict[str, dict[str, dict[str, Any]]]


def next_section(section: Mapping[str, Any]) -> dict | FoldedWalks:
    """A writable copy of a snapshot's section. A host's worth is layered
    over it (snapshots are never written once shared), so a change costs
    its documents, not a copy of the host and the release of the one
    before; a reader's walk folds it once (:class:`FoldedWalks`). A few
    stay a dict: dict.copy(), a block copy (dict() re-inserts key by key
    once the dict has holes: 100 → 17 µs at 5,000)."""
    if type(section) is dict:  # type(), not isinstance(): an ABC's check costs more
        return FoldedWalks(section) if len(section) > FOLD_MIN else section.copy()
    return section.derive() if type(section) is FoldedWalks else dict(section)


def settled(section: dict | FoldedWalks) -> dict | FoldedWalks:
    """A section once its write is done: a layered one whose overlay outgrew
    its share is folded into a dict. A big removal otherwise left its
    tombstones over a base that still held every removed network's document,
    in the store's snapshot until the next write (superd 62.7 MiB after
    removing 5,000 in the bench, where the goal is idle + report + 10 %)."""
    if type(section) is FoldedWalks and section.overgrown():
        return section.folded()
    return section


def plain_snapshot(snapshot: Mapping[str, Mapping]) -> Snapshot:
    """A shared snapshot with dict sections, for encoders (orjson takes
    only dicts): a layered section gives its folded walk, shared, so the
    result is read-only as the snapshot is."""
    return {key: encodable(section) for key, section in snapshot.items()}
