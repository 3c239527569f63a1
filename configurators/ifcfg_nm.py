"""``[ifcfg] apply = nm``: ifcfg files applied by NetworkManager's ifcfg-rh
plugin, the way RHEL 8/9's ``ifup``/``ifdown`` do.

* reload: ``LoadConnections`` of the files that changed — a written file
  becomes (or updates) its profile, a removed one removes it (what
  ``nmcli connection load FILE`` does);
* down: the device's active connection deactivated, awaited;
* up: the device made managed if NetworkManager left it unmanaged (the file
  says ``NM_CONTROLLED=yes``), its file's profile activated, all awaited
  together (a device already active with that profile is left as it is).

The D-Bus client is :mod:`configurators.nm_dbus` (the NetworkManager
configurator's). The bus is ``[nm] bus`` (empty: the system bus).
NetworkManager reads the files at the path it sees: ``[ifcfg] nm_dir`` when
that differs from ``[ifcfg] dir`` (a private mount), else ``dir``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from configurators import ifcfg_format as fmt
from configurators.nm_dbus import ACTIVATED, ACTIVE, DEACTIVATED, NM, NM_PATH, PROPERTIES, NmClient
from shared.config import Config
from shared.errors import ErrorCode, NetError

log = logging.getLogger("netreload.ifcfg")

#: seconds an activation (a DHCP lease included) may take
ACTIVATION_TIMEOUT = 60.0
#: activations asked again when NetworkManager ended one of its own accord
RETRIES = 2


class NmApplier:
    def __init__(self, config: Config, client: NmClient | None = None) -> None:
        self.dir = config.ifcfg_dir
        self.nm_dir = config.ifcfg_nm_dir or config.ifcfg_dir
        self.client = (
            client if client is not None else NmClient(config.nm_bus, timeout=ACTIVATION_TIMEOUT)
        )

    def close(self) -> None:
        self.client.close()

    def _nm_path(self, path: Path) -> str:
        return str(self.nm_dir / path.relative_to(self.dir))

    def reload(self, paths: list[Path]) -> None:
        failed = self.client.load_connections(self._nm_path(p) for p in paths)
        written = {self._nm_path(p) for p in paths if p.exists()}
        bad = sorted(set(failed) & written)
        if bad:
            raise NetError(ErrorCode.FAILED_IFUP, f"NetworkManager could not load {', '.join(bad)}")

    def down(self, devices: list[str]) -> None:
        for device in devices:
            active = self._active_of(device)
            if active is None:
                continue
            self.client.deactivate(active)
            left = self.client.wait_active({device: active}, want=DEACTIVATED)
            if left:
                log.warning("%s: still %s after deactivation", device, left[device])

    def up(self, devices: list[str], link_only: set[str]) -> None:
        profiles = self._profiles_by_file()
        pending: dict[str, str] = {}
        for device in devices:
            profile = profiles.get(device)
            if profile is None:
                raise NetError(
                    ErrorCode.FAILED_IFUP,
                    f"{device}: NetworkManager has no profile for {fmt.file_name(device)}",
                )
            device_path = self.client.device(device)
            if device_path is not None and not self.client.managed(device_path):
                self.client.set_managed(device_path, True)
            # activating a port activates its master: a profile active (or
            # activating) already is awaited, not activated again (that
            # would re-make the bridge and drop the ports just added)
            active = self._active_by_profile().get(profile)
            if active is None:
                active = self.client.activate(profile, device_path or "/")
            pending[device] = active
        failed = self.client.wait_active(
            pending, want=ACTIVATED, layer2=link_only, timeout=ACTIVATION_TIMEOUT
        )
        for _ in range(RETRIES):
            if not failed:
                break
            # NetworkManager may have ended an activation to start the
            # profile again itself (it also auto-activates the ONBOOT
            # profiles just loaded, and a master re-activates its ports):
            # a profile active again is awaited, one that is not activated
            active = self._active_by_profile()
            again = {}
            for device in failed:
                profile = profiles[device]
                again[device] = active.get(profile) or self.client.activate(
                    profile, self.client.device(device) or "/"
                )
            failed = self.client.wait_active(
                again, want=ACTIVATED, layer2=link_only, timeout=ACTIVATION_TIMEOUT
            )
        if failed:
            raise NetError(
                ErrorCode.FAILED_IFUP,
                "NetworkManager did not activate "
                + ", ".join(f"{d} (state {s})" for d, s in sorted(failed.items())),
            )

    def _active_by_profile(self) -> dict[str, str]:
        """{profile path: active connection path} of what NetworkManager
        has active or activating."""
        found = {}
        for active in self._property(NM_PATH, NM, "ActiveConnections") or []:
            profile = self._property(str(active), ACTIVE, "Connection")
            state = self._property(str(active), ACTIVE, "State")
            if profile is not None and state is not None and int(state) <= ACTIVATED:
                found[str(profile)] = str(active)
        return found

    def _property(self, path: str, interface: str, name: str) -> Any:
        try:
            return self.client.call(path, PROPERTIES, "Get", interface, name, signature="ss")
        except NetError as error:
            if error.code == ErrorCode.NM_CONNECTION:
                raise
            return None  # gone meanwhile

    def _profiles_by_file(self) -> dict[str, str]:
        """{device: profile path} of the profiles loaded from our folder."""
        found: dict[str, str] = {}
        for profile in self.client.profiles():
            filename = str(profile.settings.get("connection", {}).get("filename", ""))
            if not filename:
                filename = _filename_of(self.client, profile.path)
            path = Path(filename)
            device = fmt.device_of(path.name)
            if device is not None and path.parent == self.nm_dir:
                found[device] = profile.path
        return found

    def _active_of(self, device: str) -> str | None:
        device_path = self.client.device(device)
        if device_path is None:
            return None
        active = str(self.client.device_state(device_path).get("ActiveConnection", "/"))
        return None if active == "/" else active


def _filename_of(client: NmClient, profile_path: str) -> str:
    """The ``Filename`` property of a profile (its file, for a plugin's)."""
    try:
        return str(
            client.call(
                profile_path,
                "org.freedesktop.DBus.Properties",
                "Get",
                "org.freedesktop.NetworkManager.Settings.Connection",
                "Filename",
                signature="ss",
            )
        )
    except NetError as error:
        if error.code == ErrorCode.NM_CONNECTION:
            raise
        return ""
