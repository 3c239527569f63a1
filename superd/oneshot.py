"""Run setupNetworks once in the current network namespace, without daemons.

``python -m superd.oneshot [--config C] setup REQUEST.json | caps |
set-safe-config | restore-nets`` — the in-process core that superd serves; tests run it
under ``ip netns exec`` so everything it touches stays in their namespace.
Prints one JSON document; errors are ``{code, message}`` with exit status 1.
The core is made by ``superd.compose``, as the daemon's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from shared.config import load_config
from shared.errors import NetError
from shared.wire import left_out_error
from superd.compose import build_setup
from superd.repair import rebuild


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m superd.oneshot")
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup")
    setup.add_argument("request")
    sub.add_parser("caps")
    sub.add_parser("set-safe-config")
    sub.add_parser("restore-nets")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        config = load_config(args.config)
        core = build_setup(config)
        try:
            if args.command == "caps":
                result: object = core.capabilities()
            elif args.command == "restore-nets":  # superd's verb, without its journal
                core.adopt_named_devices()  # as superd does when it starts
                rebuilt = rebuild(core, core.persistence.restore_source(), "restore_nets")
                skipped = left_out_error(rebuilt.skipped)
                if skipped is not None:
                    raise skipped
                result = {"code": 0, "message": "Done", "operations": rebuilt.operations}
            elif args.command == "set-safe-config":
                core.persistence.set_safe_config()
                result = {"code": 0, "message": "Done"}
            else:
                with open(args.request) as handle:
                    request = json.load(handle)
                plan = core.setup_networks(
                    request.get("networks", {}),
                    request.get("bondings", {}),
                    request.get("options", {}),
                )
                result = {"code": 0, "message": "Done", "operations": len(plan.operations)}
        finally:
            core.close()
    except NetError as error:
        print(json.dumps(error.to_dict()))
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
