"""``netreload``: the admin and engine-side command line.

``netreload plan REQUEST.json --netinfo HOST.json`` plans offline against a
saved capabilities report (the sample host shipped with netreload when no
report is given): canonicalize → validate → plan, nothing applied.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources

from frontd.render import render_plan
from shared.config import load_config
from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, running_config_from_caps

MAX_REQUEST_BYTES = 16 * 1024 * 1024


def _read_json(path: str, what: str) -> object:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_REQUEST_BYTES + 1)
    except OSError as error:
        raise NetError(ErrorCode.BAD_PARAMS, f"cannot read {what} {path}: {error}") from None
    if len(data) > MAX_REQUEST_BYTES:
        raise NetError(ErrorCode.BAD_PARAMS, f"{what} {path} is larger than 16 MiB")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise NetError(ErrorCode.BAD_PARAMS, f"{what} {path} is not JSON: {error}") from None


def sample_host_report() -> dict:
    text = resources.files("shared").joinpath("data/sample_host.json").read_text()
    return json.loads(text)


def _request_parts(request: object) -> tuple[object, object, object]:
    if not isinstance(request, dict):
        raise NetError(ErrorCode.BAD_PARAMS, "request must be an object")
    unknown = set(request) - {"networks", "bondings", "options"}
    if unknown:
        raise NetError(ErrorCode.BAD_PARAMS, f"request: unknown key(s) {sorted(unknown)}")
    return request.get("networks", {}), request.get("bondings", {}), request.get("options", {})


def cmd_plan(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    caps = _read_json(args.netinfo, "netinfo report") if args.netinfo else sample_host_report()
    netinfo = NetinfoSnapshot.from_caps(caps)
    running = running_config_from_caps(caps)
    networks, bondings, options = _request_parts(_read_json(args.request, "request"))
    plan = plan_setup_networks(
        networks, bondings, options, netinfo, running, config.net_configurator
    )
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2, sort_keys=True))
    else:
        print(render_plan(plan))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netreload", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="configuration file (default /etc/netreload/...)")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="dry run: show what a request would change")
    plan.add_argument("request", help='JSON file: {"networks":…, "bondings":…, "options":…}')
    plan.add_argument(
        "--netinfo", help="capabilities report to plan against (default: sample host)"
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=cmd_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NetError as error:
        print(json.dumps(error.to_dict()), file=sys.stderr)
        return int(error.code)


if __name__ == "__main__":
    sys.exit(main())
