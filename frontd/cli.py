"""``netreload``: the admin and engine-side command line.

Talks to frontd's local UNIX socket (JSON-RPC). ``plan --netinfo FILE``
plans offline against a saved capabilities report (``--netinfo sample``:
the sample host shipped with netreload); nothing is applied either way.
Exit status 0 on success; on failure ``{"code", "message"}`` on stderr and
the error code as exit status.

A verb imports only what it uses (the planning pipeline and the human
renderings are imported by the verbs that need them). ``[--config FILE]
--json caps``, what monitoring runs on hosts of thousands of networks, is
recognized before argparse is imported (:func:`caps_json_config`) and
reads no more of the configuration file than frontd's socket; it prints the
text frontd renders once per report.
"""

from __future__ import annotations

import sys
import time

from frontd.local_client import SuperdGone, call_frontd, call_frontd_raw, call_superd
from shared.errors import ErrorCode, NetError

TYPE_CHECKING = False  # typing's import is a few ms of every start
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from pathlib import Path

    from shared.config import Config

MAX_REQUEST_BYTES = 16 * 1024 * 1024
# restore-nets --direct at boot: superd restarted by its service manager
# (RestartSec=2) is back within seconds, after recovering what it was doing.
RESTORE_RETRY_FOR = 120.0
RETRY_PAUSE = 1.0


def _read_json(path: str, what: str) -> object:
    import json  # imported by the verbs that use it: not on ``--json caps``' path

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
    import json
    from importlib import resources

    text = resources.files("shared").joinpath("data/sample_host.json").read_text()
    return json.loads(text)


def _request_params(path: str) -> dict:
    request = _read_json(path, "request")
    if not isinstance(request, dict):
        raise NetError(ErrorCode.BAD_PARAMS, "request must be an object")
    unknown = set(request) - {"networks", "bondings", "options"}
    if unknown:
        raise NetError(ErrorCode.BAD_PARAMS, f"request: unknown key(s) {sorted(unknown)}")
    return {k: request.get(k, {}) for k in ("networks", "bondings", "options")}


def _print(args: argparse.Namespace, data: object, human: str | Callable[[], str]) -> None:
    """``data`` as JSON (indented, keys sorted) with ``--json``, else the
    human text (``human()`` when it is a function: rendered only then)."""
    if args.json:
        from shared.wire import to_json_text

        _write(to_json_text(data))
    else:
        print(human if isinstance(human, str) else human())


def _write(text: str) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode() + b"\n")
    sys.stdout.buffer.flush()


def cmd_plan(args: argparse.Namespace, config: Config) -> int:
    from frontd.render import render_plan
    from shared.netmodel.plan import Plan, plan_setup_networks
    from shared.netmodel.snapshot import NetinfoSnapshot, running_config_from_caps

    params = _request_params(args.request)
    if args.netinfo:
        caps = (
            sample_host_report()
            if args.netinfo == "sample"
            else _read_json(args.netinfo, "netinfo report")
        )
        plan = plan_setup_networks(
            params["networks"],
            params["bondings"],
            params["options"],
            NetinfoSnapshot.from_caps(caps),
            running_config_from_caps(caps),
        )
    else:
        plan = Plan.from_dict(call_frontd(config.frontd_unix_socket, "Host.planNetworks", params))
    _print(args, plan.to_dict(), lambda: render_plan(plan))
    return 0


def print_caps_json(frontd_socket: str | Path) -> int:
    """``--json caps``: frontd renders the text, once per report, and sends it
    after its answer's line: here it is neither decoded (not even from a JSON
    string) nor encoded again, and no JSON module is imported."""
    text = call_frontd_raw(frontd_socket, "Host.getNetworkCapabilitiesText")
    sys.stdout.flush()
    sys.stdout.buffer.write(text + b"\n")
    sys.stdout.buffer.flush()
    return 0


def cmd_caps(args: argparse.Namespace, config: Config) -> int:
    if args.json:
        return print_caps_json(config.frontd_unix_socket)
    caps = call_frontd(config.frontd_unix_socket, "Host.getNetworkCapabilities")

    def human() -> str:
        from frontd.render import render_caps

        return render_caps(caps)

    _print(args, caps, human)
    return 0


def cmd_setup_networks(args: argparse.Namespace, config: Config) -> int:
    params = _request_params(args.request)
    result = call_frontd(config.frontd_unix_socket, "Host.setupNetworks", params)
    _print(args, result, "Done.")
    return 0


def _simple(method: str, message: str):
    def command(args: argparse.Namespace, config: Config) -> int:
        result = call_frontd(config.frontd_unix_socket, method)
        _print(args, result, message)
        return 0

    return command


def cmd_restore_nets(args: argparse.Namespace, config: Config) -> int:
    if args.direct:  # at boot, before frontd: superd's own socket (root)
        result = _restore_direct(config.superd_socket, args.retry_for)
    else:
        result = call_frontd(config.frontd_unix_socket, "Host.restoreNetworks")
    from shared.wire import restore_skipped

    skipped = restore_skipped(result)
    if skipped is not None:  # the others were restored
        raise skipped
    _print(args, result, "Persistent networks restored.")
    return 0


def _restore_direct(socket_path: Path, retry_for: float) -> object:
    """restore_nets on superd's socket; asked again while superd is away.

    At boot restore-nets runs once: if superd is restarting or dies inside
    the restore (its service manager starts it again), ask again until
    ``retry_for`` seconds have passed. Asking again is safe: restore_nets
    makes the host hold the persistent configuration, whatever it holds."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            return call_superd(socket_path, "restore_nets")
        except SuperdGone as error:
            if time.monotonic() >= deadline:
                raise
            print(f"restore-nets: {error.message}; asking again", file=sys.stderr)
            time.sleep(RETRY_PAUSE)


def render_event(event: dict) -> str:
    """One line: local time, kind, device, then what the event carries."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("time", 0) / 1000))
    words = [stamp, str(event.get("kind", "?")), str(event.get("device", "-"))]
    for key in ("address", "verb", "outcome"):  # what the kind alone does not say
        if key in event:
            words.append(str(event[key]))
    for key in ("networks", "bonds"):
        if event.get(key):
            words.append(f"{key}={','.join(map(str, event[key]))}")
    if "message" in event:
        words.append(str(event["message"]))
    return " ".join(words)


def cmd_events(args: argparse.Namespace, config: Config) -> int:
    """Follow the host's network events (until Ctrl-C, --count or --timeout)."""
    deadline = time.monotonic() + args.timeout if args.timeout else None
    after, epoch, seen = -1, None, 0
    try:
        while args.count is None or seen < args.count:
            wait = 25.0
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
            params = {"after": after, "timeout": min(wait, 25.0), "epoch": epoch}
            answer = call_frontd(config.frontd_unix_socket, "Host.waitEvents", params, 60)
            assert isinstance(answer, dict)
            after, epoch = answer["next"], answer["epoch"]
            for event in answer["events"][: None if args.count is None else args.count - seen]:
                print(_dumps(event) if args.json else render_event(event))
                seen += 1
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_remove_net_persistence(args: argparse.Namespace, config: Config) -> int:
    # The iproute2 configurator persists nothing of its own, and unified
    # persistence is netreload's own: nothing to remove for them. The ifcfg
    # configurator's files of devices the persistent configuration does not
    # name go before the network service reads them (devices are not touched:
    # this runs before the network is up); so do the NetworkManager keyfiles
    # marked as netreload's (it writes its profiles in memory only). Other
    # configurators (OVSDB) add their cleanup here.
    removed: list[str] = []
    if config.net_persistence == "ifcfg":
        # the files are the persistent configuration: the safe ones go back
        from persistence.ifcfg import restore_safe_files

        removed = restore_safe_files(config)
    elif config.net_configurator == "ifcfg":
        from configurators.ifcfg_boot import remove_unnamed_files

        removed = remove_unnamed_files(config)
    elif config.net_configurator == "nm":
        from configurators.nm_boot import remove_marked_keyfiles

        removed = remove_marked_keyfiles(config.nm_keyfile_dir)
    _print(args, {"removed": removed}, f"Removed {len(removed)} configurator-persisted item(s).")
    return 0


def cmd_upgrade_unified_persistence(args: argparse.Namespace, config: Config) -> int:
    """From ifcfg files (netreload's or the production agent's) to unified
    persistence, once (configurators/ifcfg_upgrade.py)."""
    from configurators.ifcfg_upgrade import upgrade

    result = upgrade(config)
    if result["upgraded"]:
        networks = ", ".join(result["networks"]) or "none"
        bonds = ", ".join(result["bonds"]) or "none"
        summary = f"Upgraded to unified persistence: networks {networks}; bonds {bonds}."
    else:
        summary = "Already upgraded to unified persistence: nothing done."
    _print(args, result, summary)
    return 0


COMMANDS = {
    "plan": cmd_plan,
    "caps": cmd_caps,
    "setup-networks": cmd_setup_networks,
    "set-safe-config": _simple("Host.setSafeNetworkConfig", "Running configuration persisted."),
    "confirm": _simple("Host.confirmConnectivity", "Connectivity confirmed."),
    "restore-nets": cmd_restore_nets,
    "remove-net-persistence": cmd_remove_net_persistence,
    "events": cmd_events,
    "upgrade-unified-persistence": cmd_upgrade_unified_persistence,
}


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(prog="netreload", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="configuration file (default /etc/netreload/...)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="dry run: show what a request would change")
    plan.add_argument("request", help='JSON file: {"networks":…, "bondings":…, "options":…}')
    plan.add_argument("--netinfo", help="plan offline against this report ('sample': built-in)")
    sub.add_parser("caps", help="the host's network capabilities")
    setup = sub.add_parser("setup-networks", help="apply a request")
    setup.add_argument("request")
    sub.add_parser("set-safe-config", help="persist the running configuration")
    sub.add_parser("confirm", help="confirm connectivity after a change")
    restore = sub.add_parser("restore-nets", help="rebuild the persistent configuration")
    restore.add_argument("--direct", action="store_true", help="talk to superd (boot)")
    restore.add_argument(
        "--retry-for", type=float, default=RESTORE_RETRY_FOR, metavar="SECONDS",
        help="with --direct: ask again while superd is away, this long (default %(default)s)",
    )  # fmt: skip
    sub.add_parser("remove-net-persistence", help="boot: drop what configurators persisted")
    sub.add_parser(
        "upgrade-unified-persistence",
        help="once: the networks of the ifcfg files become the unified persistence",
    )
    events = sub.add_parser("events", help="follow network events (Ctrl-C to stop)")
    events.add_argument("--count", type=int, help="stop after this many events")
    events.add_argument("--timeout", type=float, help="stop after this many seconds")
    for child in sub.choices.values():
        child.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return parser


def caps_json_config(argv: list[str]) -> tuple[str | None] | None:
    """``(config file or None,)`` when ``argv`` asks for ``--json caps`` and
    nothing else, in a form argparse reads the same way (``--config FILE``
    or ``--config=FILE`` before the verb, ``--json`` before or after it);
    None for anything else (abbreviations, ``-h``, repeats…): argparse
    then reads it."""
    config: str | None = None
    seen_config = seen_json = seen_caps = False
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--json":
            seen_json = True
        elif arg == "caps" and not seen_caps:
            seen_caps = True
        elif seen_caps or seen_config:
            return None
        elif arg == "--config" and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            config, seen_config = argv[index + 1], True
            index += 1
        elif arg.startswith("--config="):
            config, seen_config = arg[len("--config="):], True
        else:
            return None
        index += 1
    return (config,) if seen_caps and seen_json else None


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        fast = caps_json_config(argv)
        if fast is not None:
            from shared.config_socket import frontd_unix_socket

            return print_caps_json(frontd_unix_socket(fast[0]))
        args = build_parser().parse_args(argv)
        from shared.config import load_config

        return COMMANDS[args.command](args, load_config(args.config))
    except NetError as error:
        print(_dumps(error.to_dict()), file=sys.stderr)
        return int(error.code)


def _dumps(value: object) -> str:
    import json

    return json.dumps(value, sort_keys=True)


if __name__ == "__main__":
    sys.exit(main())
