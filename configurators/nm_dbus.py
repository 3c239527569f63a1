"""A small typed client of NetworkManager's D-Bus API (dbus-python).

Only what netreload's NetworkManager configurators need, each call a
method of :class:`NmClient`:

* profiles: ``AddConnection2`` / ``Update2`` (in memory, autoconnect
  blocked, by default), ``Delete``, ``GetSettings``, ``LoadConnections``
  (files a configurator wrote, e.g. ifcfg), the profiles marked as
  netreload's (:data:`MARK_KEY` in the ``user`` setting);
* activation: ``ActivateConnection`` / ``DeactivateConnection``, then
  :meth:`NmClient.wait_active` polls the active connections' ``State``
  (and ``StateFlags``: LAYER2_READY is enough for a non-blocking DHCP
  network) until they are settled or the timeout passes;
* devices: path by interface name, the ``Managed`` property;
* checkpoints: ``CheckpointCreate`` / ``Rollback`` / ``Destroy``, and the
  ones NetworkManager holds.

Settings go in and come out as plain Python (``str``, ``int``, ``bool``,
``bytes``, lists and dicts): :func:`to_dbus` gives each key the D-Bus type
NetworkManager expects (:mod:`configurators.nm_types`), :func:`from_dbus` unwraps a
reply. Nothing here knows about networks.

The bus: ``bus`` (``[nm] bus``), a D-Bus address, or empty for the system
bus (libdbus honours ``DBUS_SYSTEM_BUS_ADDRESS``). A private connection,
closed by :meth:`NmClient.close`. NetworkManager unreachable (no bus, not
running, not answering) is ``NetError(NM_CONNECTION)`` (33); an error
NetworkManager answers is ``FAILED_IFUP`` (29) naming the call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from configurators.nm_types import from_dbus, import_dbus, to_dbus
from shared import faults
from shared.errors import ErrorCode, NetError

NM = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"
SETTINGS_PATH = "/org/freedesktop/NetworkManager/Settings"
SETTINGS = NM + ".Settings"
CONNECTION = NM + ".Settings.Connection"
DEVICE = NM + ".Device"
ACTIVE = NM + ".Connection.Active"
PROPERTIES = "org.freedesktop.DBus.Properties"

#: the ``user`` setting's key marking a profile as netreload's
MARK_KEY = "org.ovirt.netreload"
MARK_VALUE = "netreload"

# NMSettingsAddConnection2Flags / NMSettingsUpdate2Flags
TO_DISK = 0x1
IN_MEMORY = 0x2
BLOCK_AUTOCONNECT = 0x20
# NMCheckpointCreateFlags
CHECKPOINT_DESTROY_ALL = 0x1
CHECKPOINT_DELETE_NEW_CONNECTIONS = 0x2
CHECKPOINT_DISCONNECT_NEW_DEVICES = 0x4
# NMActiveConnectionState
ACTIVATING, ACTIVATED, DEACTIVATING, DEACTIVATED = 1, 2, 3, 4
# NMActivationStateFlags
LAYER2_READY = 0x4
# NMRollbackResult
ROLLBACK_OK = 0

#: D-Bus errors meaning NetworkManager (or the bus) is not there
_UNREACHABLE = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.NoServer",
        "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.FileNotFound",
        "org.freedesktop.DBus.Error.Timeout",
        "org.freedesktop.DBus.Error.TimedOut",
    }
)
#: of those, the ones meaning it is there but did not answer in time (busy:
#: e.g. waiting for the kernel's RTNL lock while a namespace is dismantled)
_NO_ANSWER = frozenset(
    {
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Timeout",
        "org.freedesktop.DBus.Error.TimedOut",
    }
)
#: the calls that change NetworkManager's state: a durable step each for
#: the test-only fault injection (``shared.faults``: superd killed before one)
_CHANGES = frozenset(
    {
        "AddConnection2",
        "Update2",
        "Delete",
        "LoadConnections",
        "ActivateConnection",
        "DeactivateConnection",
        "CheckpointCreate",
        "CheckpointRollback",
        "CheckpointDestroy",
        "Set",
    }
)
_GONE = frozenset(
    {
        "org.freedesktop.DBus.Error.UnknownMethod",
        "org.freedesktop.DBus.Error.UnknownObject",
        "org.freedesktop.NetworkManager.Settings.Connection.InvalidConnection",  # deleted meanwhile
    }
)


@dataclass(frozen=True)
class Profile:
    """A profile NetworkManager holds: its D-Bus path and its settings."""

    path: str
    settings: dict[str, dict[str, Any]]

    @property
    def id(self) -> str:
        return self.settings.get("connection", {}).get("id", "")

    @property
    def uuid(self) -> str:
        return self.settings.get("connection", {}).get("uuid", "")

    @property
    def interface(self) -> str:
        return self.settings.get("connection", {}).get("interface-name", "")

    @property
    def ours(self) -> bool:
        return self.settings.get("user", {}).get("data", {}).get(MARK_KEY) == MARK_VALUE


class NmClient:
    """One private connection to the bus NetworkManager is on."""

    def __init__(self, bus: str = "", timeout: float = 30.0) -> None:
        self.address, self.timeout = bus, timeout
        dbus = self._dbus = import_dbus()
        try:
            if bus:
                self.bus = dbus.bus.BusConnection(bus)
            else:
                self.bus = dbus.bus.BusConnection(dbus.bus.BusConnection.TYPE_SYSTEM)
        except dbus.exceptions.DBusException as error:
            raise NetError(
                ErrorCode.NM_CONNECTION,
                f"NetworkManager: no D-Bus at {self._where}: {error.get_dbus_message()}",
            ) from None
        self.version = str(self._get(NM_PATH, NM, "Version"))  # reachable?

    @property
    def _where(self) -> str:
        return self.address or "the system bus"

    def close(self) -> None:
        bus, self.bus = getattr(self, "bus", None), None
        if bus is not None:
            bus.close()

    # -- the one way to call ----------------------------------------------------
    def call(
        self,
        path: str,
        interface: str,
        method: str,
        *args: Any,
        signature: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """``method`` of ``interface`` on ``path``; D-Bus errors become NetErrors."""
        if self.bus is None:
            raise NetError(ErrorCode.NM_CONNECTION, "NetworkManager: the client is closed")
        if method in _CHANGES:
            faults.step(f"NetworkManager {method}")
        seconds = timeout or self.timeout + 5
        try:
            return self.bus.call_blocking(
                NM, path, interface, method, signature, args, timeout=seconds
            )
        except self._dbus.exceptions.DBusException as error:
            raise self._error(error, f"{method}", seconds) from None

    def _error(self, error: Any, what: str, seconds: float) -> NetError:
        name = error.get_dbus_name() or ""
        message = error.get_dbus_message() or str(error)
        if name in _NO_ANSWER:  # the same code: the change cannot go on either way
            return NetError(
                ErrorCode.NM_CONNECTION,
                f"NetworkManager on {self._where} gave no answer to {what} "
                f"(waited up to {seconds:g} s): {message}",
            )
        if name in _UNREACHABLE or not name:
            return NetError(
                ErrorCode.NM_CONNECTION,
                f"NetworkManager unreachable on {self._where}: {what}: {message}",
            )
        error_code = ErrorCode.FAILED_IFUP
        gone = NetError(error_code, f"NetworkManager: {what}: {message} ({name})")
        gone.dbus_name = name  # type: ignore[attr-defined]
        return gone

    def _get(self, path: str, interface: str, prop: str) -> Any:
        return self.call(path, PROPERTIES, "Get", interface, prop, signature="ss")

    def _get_all(self, path: str, interface: str) -> dict[str, Any]:
        return self.call(path, PROPERTIES, "GetAll", interface, signature="s")

    # -- profiles -----------------------------------------------------------------
    def add_connection(
        self, settings: Mapping[str, Mapping[str, Any]], flags: int = IN_MEMORY | BLOCK_AUTOCONNECT
    ) -> str:
        """``AddConnection2``: the new profile's path."""
        path, _result = self.call(
            SETTINGS_PATH,
            SETTINGS,
            "AddConnection2",
            to_dbus(settings),
            self._dbus.UInt32(flags),
            self._dbus.Dictionary({}, signature="sv"),
            signature="a{sa{sv}}ua{sv}",
        )
        return str(path)

    def update_connection(
        self,
        path: str,
        settings: Mapping[str, Mapping[str, Any]],
        flags: int = IN_MEMORY | BLOCK_AUTOCONNECT,
    ) -> None:
        """``Update2``: replace the profile's settings."""
        self.call(
            path,
            CONNECTION,
            "Update2",
            to_dbus(settings),
            self._dbus.UInt32(flags),
            self._dbus.Dictionary({}, signature="sv"),
            signature="a{sa{sv}}ua{sv}",
        )

    def delete_connection(self, path: str) -> None:
        """``Delete``; a profile already gone is not an error."""
        try:
            self.call(path, CONNECTION, "Delete")
        except NetError as error:
            if getattr(error, "dbus_name", "") not in _GONE:
                raise

    def settings(self, path: str) -> dict[str, dict[str, Any]] | None:
        """``GetSettings`` as plain Python; None when the profile is gone."""
        try:
            return from_dbus(self.call(path, CONNECTION, "GetSettings"))
        except NetError as error:
            if getattr(error, "dbus_name", "") in _GONE:
                return None
            raise

    def connection_paths(self) -> list[str]:
        return [str(p) for p in self.call(SETTINGS_PATH, SETTINGS, "ListConnections")]

    def profiles(self) -> list[Profile]:
        """Every profile NetworkManager holds."""
        found = []
        for path in self.connection_paths():
            settings = self.settings(path)
            if settings is not None:
                found.append(Profile(path, settings))
        return found

    def owned_profiles(self) -> dict[str, Profile]:
        """netreload's profiles (marked), by id."""
        return {p.id: p for p in self.profiles() if p.ours}

    def by_uuid(self, uuid: str) -> str | None:
        try:
            return str(
                self.call(SETTINGS_PATH, SETTINGS, "GetConnectionByUuid", uuid, signature="s")
            )
        except NetError as error:
            if error.code == ErrorCode.NM_CONNECTION:
                raise
            return None

    def load_connections(self, filenames: Iterable[str]) -> list[str]:
        """``LoadConnections`` (files of a settings plugin, re-read): the
        files NetworkManager could not load."""
        _ok, failures = self.call(
            SETTINGS_PATH,
            SETTINGS,
            "LoadConnections",
            self._dbus.Array(list(filenames), signature="s"),
            signature="as",
        )
        return [str(f) for f in failures]

    # -- devices ------------------------------------------------------------------
    def device(self, interface: str) -> str | None:
        """The device's path; None if NetworkManager does not know it."""
        try:
            return str(self.call(NM_PATH, NM, "GetDeviceByIpIface", interface, signature="s"))
        except NetError as error:
            if error.code == ErrorCode.NM_CONNECTION:
                raise
            return None

    def managed(self, device_path: str) -> bool:
        return bool(self._get(device_path, DEVICE, "Managed"))

    def set_managed(self, device_path: str, managed: bool = True) -> None:
        self.call(
            device_path,
            PROPERTIES,
            "Set",
            DEVICE,
            "Managed",
            self._dbus.Boolean(managed, variant_level=1),
            signature="ssv",
        )

    def device_state(self, device_path: str) -> dict[str, Any]:
        """State, StateReason, Interface, ActiveConnection of a device."""
        return from_dbus(self._get_all(device_path, DEVICE))

    # -- activation ---------------------------------------------------------------
    def activate(self, connection_path: str, device_path: str = "/") -> str:
        """``ActivateConnection``: the active connection's path."""
        return str(
            self.call(
                NM_PATH,
                NM,
                "ActivateConnection",
                connection_path,
                device_path,
                "/",
                signature="ooo",
            )
        )

    def deactivate(self, active_path: str) -> None:
        """``DeactivateConnection``; one already gone is not an error."""
        try:
            self.call(NM_PATH, NM, "DeactivateConnection", active_path, signature="o")
        except NetError as error:
            if error.code == ErrorCode.NM_CONNECTION:
                raise
            # not active (anymore): NetworkManager says ConnectionNotActive

    def active_state(self, active_path: str) -> tuple[int, int]:
        """(State, StateFlags) of an active connection; (DEACTIVATED, 0) once gone."""
        try:
            props = self._get_all(active_path, ACTIVE)
        except NetError as error:
            if error.code == ErrorCode.NM_CONNECTION:
                raise
            return (DEACTIVATED, 0)
        if not props:  # the object went away between two calls
            return (DEACTIVATED, 0)
        return int(props.get("State", DEACTIVATED)), int(props.get("StateFlags", 0))

    def wait_active(
        self,
        active: Mapping[str, str],
        want: int = ACTIVATED,
        layer2: Iterable[str] = (),
        timeout: float | None = None,
    ) -> dict[str, int]:
        """Poll the active connections ``active`` ({name: path}) until each is
        in state ``want`` (for names in ``layer2``: LAYER2_READY is enough),
        has failed (deactivated while activating), or ``timeout`` passed.
        {name: state} of those not in ``want``: empty when all are."""
        timeout = self.timeout if timeout is None else timeout
        layer2 = frozenset(layer2)
        pending = dict(active)
        deadline, pause = time.monotonic() + timeout, 0.005
        states: dict[str, int] = {}
        while pending:
            for name, path in list(pending.items()):
                state, flags = self.active_state(path)
                states[name] = state
                done = state == want or (
                    want == ACTIVATED
                    and name in layer2
                    and state == ACTIVATING
                    and flags & LAYER2_READY
                )
                failed = want == ACTIVATED and state in (DEACTIVATING, DEACTIVATED)
                if done or failed:
                    del pending[name]
                    if done:
                        states[name] = want
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        return {name: state for name, state in states.items() if state != want}

    # -- checkpoints ----------------------------------------------------------------
    def checkpoint_create(
        self,
        device_paths: Iterable[str],
        rollback_timeout: int,
        flags: int = CHECKPOINT_DELETE_NEW_CONNECTIONS,
    ) -> str:
        """``CheckpointCreate`` over the devices (none: all); its path. It
        rolls back by itself after ``rollback_timeout`` seconds (0: never).
        NetworkManager takes DISCONNECT_NEW_DEVICES with an empty device
        list only (all devices); over named devices, a software device
        created since goes with its profile (DELETE_NEW_CONNECTIONS)."""
        return str(
            self.call(
                NM_PATH,
                NM,
                "CheckpointCreate",
                self._dbus.Array(list(device_paths), signature="o"),
                self._dbus.UInt32(rollback_timeout),
                self._dbus.UInt32(flags),
                signature="aouu",
            )
        )

    def checkpoint_rollback(self, path: str) -> dict[str, int]:
        """``CheckpointRollback``: {device path: NMRollbackResult}."""
        return from_dbus(self.call(NM_PATH, NM, "CheckpointRollback", path, signature="o"))

    def checkpoint_destroy(self, path: str) -> None:
        """``CheckpointDestroy``; one already gone is not an error."""
        try:
            self.call(NM_PATH, NM, "CheckpointDestroy", path, signature="o")
        except NetError as error:
            if error.code == ErrorCode.NM_CONNECTION:
                raise

    def checkpoint_rollback_timeout(self, path: str) -> int | None:
        """The checkpoint's ``RollbackTimeout`` (seconds); None when gone."""
        try:
            return int(self._get(path, NM + ".Checkpoint", "RollbackTimeout"))
        except NetError as error:
            if error.code == ErrorCode.NM_CONNECTION:
                raise
            return None

    def checkpoints(self) -> list[str]:
        return [str(p) for p in self._get(NM_PATH, NM, "Checkpoints")]

    def devices_settled(self, device_paths: Iterable[str], timeout: float | None = None) -> bool:
        """Wait until none of the devices is activating or deactivating
        (NMDeviceState 40..90 or 110): True if they settled in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        paths = list(device_paths)
        while True:
            busy = []
            for path in paths:
                try:
                    state = int(self._get(path, DEVICE, "State"))
                except NetError as error:
                    if error.code == ErrorCode.NM_CONNECTION:
                        raise
                    continue  # the device is gone
                if 40 <= state < 100 or state == 110:
                    busy.append(path)
            if not busy:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
