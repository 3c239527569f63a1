"""The ifcfg configurator's files and ifup/ifdown sequence, as golden cases.

A case is a folder under golden/ifcfg/ holding request.json (networks and
bonds, as the engine sends them), the ifcfg-* files expected in the folder
after applying it with ``[ifcfg] apply = initscripts``, and ``commands``:
the ifdown/ifup command lines run, in order. Removing everything the case
added leaves no file, each device's last command an ifdown, bridges taken
down first.
Set NETRELOAD_GOLDEN_UPDATE=1 to rewrite the expected files (then review
them against RHEL's ifcfg format).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.ifcfg_harness import apply, configurator, files, remove

GOLDEN = Path(__file__).parent / "golden" / "ifcfg"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
UPDATE = os.environ.get("NETRELOAD_GOLDEN_UPDATE") == "1"


def _expect(case: Path, written: dict[str, str], commands: list[str]) -> None:
    expected_files = {p.name: p.read_text() for p in sorted(case.glob("ifcfg-*"))}
    if UPDATE:
        for old in case.glob("ifcfg-*"):
            old.unlink()
        for name, text in written.items():
            (case / name).write_text(text)
        (case / "commands").write_text("\n".join(commands) + "\n")
        return
    assert written == expected_files
    assert commands == (case / "commands").read_text().splitlines()


@pytest.mark.parametrize("case", CASES)
def test_golden_files_and_commands(case: str, tmp_path: Path) -> None:
    conf, recorder = configurator(tmp_path)
    request = json.loads((GOLDEN / case / "request.json").read_text())
    apply(conf, request)
    _expect(GOLDEN / case, files(tmp_path / "network-scripts"), recorder.commands)


@pytest.mark.parametrize("case", CASES)
def test_applying_again_changes_nothing(case: str, tmp_path: Path) -> None:
    conf, recorder = configurator(tmp_path)
    request = json.loads((GOLDEN / case / "request.json").read_text())
    apply(conf, request)
    before, recorder.commands = files(tmp_path / "network-scripts"), []
    apply(conf, request)
    assert files(tmp_path / "network-scripts") == before
    assert recorder.commands == []


@pytest.mark.parametrize("case", CASES)
def test_removing_the_case_leaves_no_file_and_goes_down_top_first(
    case: str, tmp_path: Path
) -> None:
    conf, recorder = configurator(tmp_path)
    request = json.loads((GOLDEN / case / "request.json").read_text())
    apply(conf, request)
    written, recorder.commands = files(tmp_path / "network-scripts"), []
    remove(conf, request)
    assert files(tmp_path / "network-scripts") == {}
    last = {line.split()[1]: line.split()[0] for line in recorder.commands}
    assert last == {name.removeprefix("ifcfg-"): "/sbin/ifdown" for name in written}
    downs = [line.split()[1] for line in recorder.commands if line.startswith("/sbin/ifdown ")]
    first_downs = list(dict.fromkeys(downs))
    kinds = ["TYPE=Bridge" in written[f"ifcfg-{d}"] for d in first_downs]
    assert kinds == sorted(kinds, reverse=True)  # bridges first
