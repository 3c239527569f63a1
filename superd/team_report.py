"""Teams (``bonding_driver = team``) in the capabilities report: the
active port of each, which teamd knows and rtnetlink does not
(``teamdctl <bond> state dump``: ``runner.active_port``). The overlay is
pure; ``read_active_ports`` runs teamdctl, only on a host whose bonds are
teams.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shared.config import Config


def team_names(running: Mapping, config: Config) -> list[str]:
    if config.bonding_driver != "team":
        return []
    return sorted(
        name for name, attrs in (running.get("bonds") or {}).items()
        if attrs.get("switch", "legacy") == "legacy"
    )  # fmt: skip


def read_active_ports(running: Mapping, config: Config) -> dict[str, str] | None:
    """{team: its active port, "" when none}; None on a host without teams."""
    names = team_names(running, config)
    if not names:
        return None
    from configurators.iproute2_team import TeamApplier

    applier = TeamApplier(_NoKernel(), Path(config.run_dir), lambda dev: None)
    out = {}
    for name in names:
        state = applier.state(name) or {}
        out[name] = str((state.get("runner") or {}).get("active_port") or "")
    return out


def overlay(caps: dict, active: Mapping[str, str]) -> dict:
    """A copy of ``caps`` whose team entries name their active port."""
    bondings = dict(caps.get("bondings", {}))
    for name, port in active.items():
        if name in bondings and port:
            bondings[name] = {**bondings[name], "active_slave": port}
    return {**caps, "bondings": bondings}


class _NoKernel:
    """TeamApplier's kernel, for reading teamd's state only."""

    def forget_links(self) -> None:
        pass
