"""``python -m benchmarks.curve --before A.json [B.json …] --after C.json [D.json …]``

The rows of results files (``benchmarks/results/*.json``) side by side, one
Markdown table: each benchmark row and N, before and after, value and ratio
to its reference measured in the same run. Rows of several files of one
side are merged (a later file's row of the same benchmark and N wins).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.report import fmt, fmt_ratio


def _rows(paths: list[Path]) -> dict[tuple[str, str, int], dict]:
    out: dict[tuple[str, str, int], dict] = {}
    for path in paths:
        for row in json.loads(path.read_text())["rows"]:
            out[(row["benchmark"], row["what"], row["n"])] = row
    return out


def _cell(row: dict | None) -> str:
    if row is None:
        return "—"
    if row["value"] is None:
        return "failed" if row["note"].startswith("FAILED") else "skipped"
    text = fmt(row["value"], row["unit"])
    if row.get("ratio") is not None:
        text += f" ({fmt_ratio(row['ratio'])})"
    return text


def table(before: dict, after: dict) -> str:
    keys = sorted(set(before) | set(after), key=lambda k: (k[0], k[1], k[2]))
    lines = [
        "| benchmark | N | before (ratio) | after (ratio) | target | met after? |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key in keys:
        old, new = before.get(key), after.get(key)
        target = (new or old or {}).get("target", "—")
        met = "" if new is None or new.get("met") is None else ("yes" if new["met"] else "NO")
        lines.append(f"| {key[1]} | {key[2]} | {_cell(old)} | {_cell(new)} | {target} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.curve")
    parser.add_argument("--before", nargs="+", type=Path, required=True)
    parser.add_argument("--after", nargs="+", type=Path, required=True)
    args = parser.parse_args(argv)
    print(table(_rows(args.before), _rows(args.after)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
