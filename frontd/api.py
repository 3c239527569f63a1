"""The API verbs: plain data in, plain data out, one fixed table.

``Host.setupNetworks``: netinfo from superd → canonicalize → build model →
validate → plan (all in this unprivileged process; an invalid request raises
here and never reaches superd) → superd ``apply_plan`` (apply, connectivity
check, verify, persist running, roll back on failure).

Results have the shapes the production agent's JSON-RPC bridge gives them:

===============================  ============================================
method                           JSON-RPC ``result``
===============================  ============================================
Host.setupNetworks               ``{"code": 0, "message": "Done"}`` (status)
Host.setSafeNetworkConfig        ``true``
Host.getNetworkCapabilities      the capabilities report (``networks``,
                                 ``bridges``, ``bondings``, ``nics``, …)
Host.getCapabilities             the report merged into minimal host caps
Host.confirmConnectivity         ``true``
Host.ping2                       ``true``
Host.planNetworks (local only)   the plan as a dict (dry run)
Host.getNetworkCapabilitiesText  the getNetworkCapabilities result as the text
  (local)                        ``netreload --json caps`` prints (indented,
                                 keys sorted), encoded once per report
Host.restoreNetworks (local)     ``{"code": 0, "message": "Done"}``
Host.waitEvents (local)          ``{"epoch", "next", "events", "lost"}``:
                                 long poll of the events frontd relayed
                                 (``after``, ``epoch``, ``timeout`` ≤ 60 s)
===============================  ============================================

Failures raise ``NetError``; the dispatcher turns them into JSON-RPC error
objects ``{"code": <agent code>, "message": …}``.
"""

from __future__ import annotations

import logging
import platform
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from frontd.jsonrpc import RawTail
from shared import netinfo_delta as delta
from shared.errors import ErrorCode, NetError
from shared.event_log import EventLog, wait_args
from shared.layered import plain
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import REPORT_SECTIONS, NetinfoSnapshot, RunningConfig
from shared.wire import RawJson, restore_skipped, to_json, to_json_text

log = logging.getLogger("netreload.frontd.api")

DONE = {"code": 0, "message": "Done"}
NET_CHANGED_EVENT = "|net|host_conn|no_id"
SOFTWARE_VERSION = "0.1.0"
# superd's apply_plan: time beyond the connectivity timeout it may take.
APPLY_MARGIN = 300.0
RESTORE_TIMEOUT = 900.0

Notify = Callable[[str, dict], None]
SuperdCall = Callable[..., object]

# JSON-RPC method → HostApi attribute. The engine's part of the table is
# served on every transport; the local part only on the UNIX socket.
ENGINE_METHODS = {
    "Host.setupNetworks": "setup_networks",
    "Host.setSafeNetworkConfig": "set_safe_network_config",
    "Host.getNetworkCapabilities": "get_network_capabilities",
    "Host.getCapabilities": "get_capabilities",
    "Host.getNetworkStatistics": "get_network_statistics",
    "Host.confirmConnectivity": "confirm_connectivity",
    "Host.ping2": "ping2",
}
LOCAL_METHODS = {
    **ENGINE_METHODS,
    "Host.planNetworks": "plan_networks",
    "Host.getNetworkCapabilitiesText": "get_network_capabilities_text",
    "Host.restoreNetworks": "restore_networks",
    "Host.waitEvents": "wait_events",
}


class HostApi:
    """The verbs. ``superd`` is a ``SuperdClient`` (or anything with ``call``)."""

    def __init__(self, superd: object) -> None:
        self._superd_call: SuperdCall = superd.call  # type: ignore[attr-defined]
        self._network_lock = threading.Lock()
        self._notify: Notify | None = None
        self._events: EventLog | None = None
        self._netinfo_held: _Netinfo | None = None
        self._config_dirty = False

    def set_notify(self, notify: Notify | None) -> None:
        """Where network change events go (the STOMP server's publish_event)."""
        self._notify = notify

    def set_events(self, events: EventLog | None) -> None:
        """The log of relayed events ``Host.waitEvents`` reads."""
        self._events = events

    def table(self, local: bool = False) -> dict[str, Callable[..., object]]:
        names = LOCAL_METHODS if local else ENGINE_METHODS
        return {method: getattr(self, attr) for method, attr in names.items()}

    # -- engine verbs -----------------------------------------------------

    def setup_networks(
        self, networks: object = None, bondings: object = None, options: object = None
    ) -> dict:
        with self._exclusive("setupNetworks"):
            plan = self._plan(networks, bondings, options)
            check = plan.options.get("connectivityCheck", True)
            wait = float(plan.options.get("connectivityTimeout", 0)) if check else 0.0
            log.info("setupNetworks: %d operation(s)", len(plan.operations))
            # without the expected running configuration: superd derives it
            self._superd_call(
                "apply_plan", {"plan": plan.to_dict(running=False)}, timeout=wait + APPLY_MARGIN
            )
            self._config_dirty = not plan.options.get("commitOnSuccess", False)
        self._emit(NET_CHANGED_EVENT)
        return dict(DONE)

    def set_safe_network_config(self) -> bool:
        with self._exclusive("setSafeNetworkConfig"):
            self._superd_call("set_safe_config")
            self._config_dirty = False
        return True

    def get_network_capabilities(self) -> dict:
        held = self._held_netinfo()
        dirty = str(self._config_dirty)  # 'True' / 'False', as the agent sends it
        encoded = held.caps_json.get(dirty)
        if encoded is None:  # encoded once per report (and flag), then reused
            encoded = RawJson(to_json({**_plain(held.caps), "netConfigDirty": dirty}))
            held.caps_json[dirty] = encoded
        return encoded  # type: ignore[return-value]  # JSON of the report

    def get_capabilities(self) -> dict:
        caps, _ = self._netinfo()
        return {**host_capabilities(), **_plain(caps), "netConfigDirty": str(self._config_dirty)}

    def get_network_statistics(self) -> dict:
        """Every device's counters and state (superd.netstats' report)."""
        return self._superd_call("network_stats")  # type: ignore[return-value]

    def confirm_connectivity(self) -> bool:
        self._superd_call("confirm_connectivity")
        return True

    def ping2(self) -> bool:
        # The engine pings during setupNetworks' connectivity wait: that is
        # the proof it can still reach the host.
        self._superd_call("confirm_connectivity")
        return True

    # -- local (CLI) verbs ------------------------------------------------

    def plan_networks(
        self, networks: object = None, bondings: object = None, options: object = None
    ) -> dict:
        return self._plan(networks, bondings, options).to_dict()

    def get_network_capabilities_text(self, raw: object = False) -> str:
        """The getNetworkCapabilities result as ``netreload --json caps``
        prints it. Rendered here, once per report (and flag): the CLI then
        neither imports a JSON encoder nor decodes and re-encodes the
        megabytes of a host of thousands of networks. ``raw``: the text's
        UTF-8 bytes follow the answer's line (:class:`frontd.jsonrpc.RawTail`)
        instead of being a JSON string in it, for a client that reads them as
        they are (no escaping here, no JSON decoding there)."""
        if not isinstance(raw, bool):
            raise NetError(ErrorCode.BAD_PARAMS, "getNetworkCapabilitiesText: raw is not a boolean")
        held = self._held_netinfo()
        dirty = str(self._config_dirty)
        text = held.caps_text.get(dirty)
        if text is None:
            text = to_json_text({**_plain(held.caps), "netConfigDirty": dirty}).encode()
            held.caps_text[dirty] = text
        if raw:
            return RawTail(text)  # type: ignore[return-value]  # sent after the answer
        encoded = held.caps_text.get(f"json-{dirty}")
        if encoded is None:
            encoded = RawJson(to_json(text.decode()))  # the JSON string of that text
            held.caps_text[f"json-{dirty}"] = encoded
        return encoded  # type: ignore[return-value]  # JSON of the text

    def restore_networks(self) -> dict:
        with self._exclusive("restoreNetworks"):
            result = self._superd_call("restore_nets", timeout=RESTORE_TIMEOUT)
        self._emit(NET_CHANGED_EVENT)
        skipped = restore_skipped(result)
        if skipped is not None:
            raise skipped
        return dict(DONE)

    def wait_events(
        self, after: object = -1, epoch: object = None, timeout: object = 25
    ) -> dict:
        if self._events is None:
            raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, "events are not relayed here")
        args = {"after": after, "timeout": timeout}
        if epoch is not None:
            args["epoch"] = epoch
        return self._events.wait(*wait_args(args))

    # -- helpers ----------------------------------------------------------

    def _plan(self, networks: object, bondings: object, options: object) -> Plan:
        held = self._held_netinfo()
        return plan_setup_networks(
            networks if networks is not None else {},
            bondings if bondings is not None else {},
            options if options is not None else {},
            _snapshot(held),
            _running(held),
        )

    def _netinfo(self) -> tuple[dict, dict]:
        held = self._held_netinfo()
        return held.caps, held.running

    def _held_netinfo(self) -> _Netinfo:
        """superd's report, kept with its token: when nothing changed, superd
        answers only that (a few bytes instead of the whole host)."""
        held = self._netinfo_held
        answer = self._superd_call("netinfo", {"known": held.token, "delta": True} if held
                                   else {"delta": True})  # fmt: skip
        if not isinstance(answer, dict):
            raise NetError(ErrorCode.INTERNAL, "superd's netinfo is not an object")
        token = answer.get("token")
        if answer.get("unchanged") is True and held is not None and token == held.token:
            return held
        if "delta" in answer:  # what changed since the answer we hold
            fresh = _patched(held, answer) if held is not None else None
            if fresh is None:  # held changed meanwhile (another request): the whole of it
                answer = self._superd_call("netinfo", {})
                if not isinstance(answer, dict):
                    raise NetError(ErrorCode.INTERNAL, "superd's netinfo is not an object")
                token = answer.get("token")
            else:
                self._netinfo_held = fresh
                return fresh
        caps, running = answer.get("caps"), answer.get("running", {})
        if not isinstance(caps, dict) or not isinstance(running, dict):
            raise NetError(ErrorCode.INTERNAL, "superd's netinfo lacks caps or running")
        owned = answer.get("owned", [])  # devices with netreload's mark
        if not isinstance(owned, list):
            raise NetError(ErrorCode.INTERNAL, "superd's netinfo: owned is not a list")
        owned_set = frozenset(map(str, owned))
        fresh = _Netinfo(token if isinstance(token, str) else None, caps, running, owned_set)
        if fresh.token is not None:
            self._netinfo_held = fresh
        return fresh

    def _exclusive(self, what: str) -> _NetworkLock:
        return _NetworkLock(self._network_lock, what)

    def _emit(self, event: str) -> None:
        if self._notify is None:
            return
        try:
            self._notify(event, {"notify_time": notify_time()})
        except Exception:
            log.exception("publishing %s failed", event)


@dataclass
class _Netinfo:
    """superd's netinfo answer; shared between requests: read-only."""

    token: str | None
    caps: dict
    running: dict
    # the marked devices (not in the report: the engine never sees them); a
    # frozenset patched and handed to the planner as it is (no walk per request)
    owned: frozenset[str] = frozenset()
    caps_json: dict[str, bytes] = field(default_factory=dict)  # netConfigDirty → JSON
    # netConfigDirty → the CLI's text (UTF-8); "json-" + it → that text as JSON
    caps_text: dict[str, bytes] = field(default_factory=dict)
    # [the planner's view of caps and owned] once made (see _snapshot)
    snapshot: list[NetinfoSnapshot] = field(default_factory=list)
    # patched: the held answer's view then (if it had one) and the caps delta
    # applied to it; let go once this answer's own view is made
    base: tuple[NetinfoSnapshot, dict] | None = None


def _snapshot(held: _Netinfo) -> NetinfoSnapshot:
    """The planner's view of ``held`` (``NetinfoSnapshot.from_caps``: every
    entry of each section checked to be an object), made once per answer.
    An answer patched from one whose view was made checks only the entries
    the delta set — the others were checked then — unless the delta set or
    dropped whole sections: the cost of the change, not of the host's report."""
    if held.snapshot:
        return held.snapshot[0]
    base, held.base = held.base, None
    change = base[1] if base is not None else None
    if (
        isinstance(change, dict)
        and not set(change.get("set", ())) & set(REPORT_SECTIONS)
        and not set(change.get("gone", ())) & set(REPORT_SECTIONS)
    ):
        patched = change.get("sections", {})
        entries = {key: patched[key].get("set", {}) for key in REPORT_SECTIONS if key in patched}
        NetinfoSnapshot.from_caps({**entries, "nameservers": held.caps.get("nameservers", [])})
        snapshot = replace(
            base[0],  # type: ignore[index]
            **{key: held.caps.get(key, {}) for key in patched if key in REPORT_SECTIONS},
            nameservers=tuple(map(str, held.caps.get("nameservers", []))),
            owned=held.owned,
        )
    else:
        snapshot = NetinfoSnapshot.from_caps(held.caps, held.owned)
    held.snapshot.append(snapshot)
    return snapshot


def _running(held: _Netinfo) -> RunningConfig:
    """The planner's view of ``held.running``, sharing its sections: the
    planner never writes them (``RunningConfig.from_dict`` copied the host's
    networks per request: ~37 fresh mmapped pages at 5,000)."""
    networks, bonds = held.running.get("networks", {}), held.running.get("bonds", {})
    if type(networks) is not dict or type(bonds) is not dict:
        return RunningConfig.from_dict(held.running)
    return RunningConfig(networks=networks, bonds=bonds)


def _patched(held: _Netinfo, answer: dict) -> _Netinfo | None:
    """``held`` with superd's delta applied; None when the delta is not
    against ``held``."""
    change = answer["delta"]
    if answer.get("base") != held.token or not isinstance(change, dict):
        return None
    try:
        return _Netinfo(
            answer["token"],
            delta.patch(held.caps, change["caps"], layered=True),  # looked up, or _plain
            delta.patch(held.running, change["running"]),
            delta.patch_name_set(held.owned, change["owned"]),
            base=(held.snapshot[0], change["caps"]) if held.snapshot else None,
        )
    except (KeyError, ValueError, TypeError) as error:
        raise NetError(ErrorCode.INTERNAL, f"superd's netinfo delta: {error}") from None


def _plain(caps: dict) -> dict:
    """``caps`` with its patched sections (:class:`~shared.layered.Layered`)
    folded into dicts: for the encoders, once per report."""
    return {key: plain(value) for key, value in caps.items()}


def notify_time() -> int:
    """The agent's ``notify_time``: a monotonic clock in milliseconds."""
    return int(time.monotonic() * 1000)


class _NetworkLock:
    """One network-changing verb at a time; the next one gets code 40 at once,
    as with the production agent."""

    def __init__(self, lock: threading.Lock, what: str) -> None:
        self._lock, self._what = lock, what

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise NetError(
                ErrorCode.RESOURCE_UNAVAILABLE,
                f"{self._what}: another network operation is in progress",
            )

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def host_capabilities() -> dict:
    """The non-network part of ``Host.getCapabilities``: just enough to say
    who answers; netreload manages networking only."""
    try:
        os_release = platform.freedesktop_os_release()
    except OSError:
        os_release = {}
    return {
        "version_name": "netreload",
        "software_version": SOFTWARE_VERSION,
        "software_revision": "0",
        "hostname": socket.gethostname(),
        "kernelVersion": platform.release(),
        "operatingSystem": {
            "name": os_release.get("NAME", platform.system()),
            "version": os_release.get("VERSION_ID", ""),
            "release": os_release.get("VERSION", ""),
            "pretty_name": os_release.get("PRETTY_NAME", ""),
        },
    }
