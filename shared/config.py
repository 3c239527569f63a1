"""The configuration file, read once per process.

INI, default path ``/etc/netreload/netreload.conf``; every path is
overridable so that tests and the demo never touch the real system.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from shared.config_socket import DEFAULT_FRONTD_UNIX_SOCKET, read_config_file
from shared.errors import ErrorCode, NetError

# What is implemented: the configurators come from configurators.registry.
PERSISTENCES = ("unified", "ifcfg")
# What a legacy bond is: the kernel's bonding driver, or a team device
# driven by teamd (libteam-utils), which only the iproute2 configurator drives.
BONDING_DRIVERS = ("bonding", "team")
TEAM_CONFIGURATORS = ("iproute2",)
OVS_DATAPATHS = ("system", "netdev")
IFCFG_APPLY = ("nm", "initscripts")


@dataclass(frozen=True)
class Config:
    net_configurator: str = "iproute2"
    net_persistence: str = "unified"
    bonding_driver: str = "bonding"
    # Devices counted as NICs although not backed by hardware (globs). None
    # by default: on a real host a veth belongs to a container or a VM, and
    # a request must not take it as a NIC. Test labs set "dummy_*,veth_*".
    fake_nics: tuple[str, ...] = ()
    run_dir: Path = Path("/run/netreload")
    lib_dir: Path = Path("/var/lib/netreload")
    resolv_conf: Path = Path("/etc/resolv.conf")
    superd_socket: Path = Path("/run/netreload/superd.sock")
    frontd_user: str = "netreload"
    # In a folder of the [frontd] user's own (tmpfiles.d), as frontd runs as
    # that user from the start under systemd.
    frontd_unix_socket: Path = Path(DEFAULT_FRONTD_UNIX_SOCKET)
    stomp_listen: str = "0.0.0.0:54321"
    stomp_max_connections: int = 64
    tls_cert: Path = Path("/etc/netreload/pki/host.crt")
    tls_key: Path = Path("/etc/netreload/pki/host.key")
    tls_ca: Path = Path("/etc/netreload/pki/ca.crt")
    # Optional: a CRL (PEM) of tls_ca checked for each client certificate,
    # and the client certificates allowed (frontd.tls_clients: one
    # "sha256:HEX" or "subject:RFC4514" per line). Unset: any certificate
    # tls_ca signed, as the production agent does.
    tls_crl: Path | None = None
    tls_allowed_clients: tuple[str, ...] = ()
    # [ovs]: the OVSDB server, the datapath of the bridges netreload creates
    # ("system": the kernel module; "netdev": userspace, e.g. in tests) and
    # how long to wait for the server or for ovs-vswitchd to apply a change.
    ovs_db: str = "unix:/run/openvswitch/db.sock"
    ovs_datapath: str = "system"
    ovs_timeout: float = 30.0
    # [ifcfg]: net_configurator = ifcfg writes RHEL ifcfg files in dir and
    # applies them through NetworkManager's ifcfg-rh plugin (nm) or the
    # network-scripts' ifup/ifdown (initscripts).
    ifcfg_dir: Path = Path("/etc/sysconfig/network-scripts")
    ifcfg_apply: str = "nm"
    ifcfg_ifup: Path = Path("/usr/sbin/ifup")
    ifcfg_ifdown: Path = Path("/usr/sbin/ifdown")
    # the same folder as NetworkManager sees it, when that differs (a
    # private mount, as in the tests); unset: dir
    ifcfg_nm_dir: Path | None = None
    # [nm]: the D-Bus address of the bus NetworkManager is on (empty: the
    # system bus, DBUS_SYSTEM_BUS_ADDRESS honoured) and how long to wait for
    # it to activate or deactivate a profile
    nm_bus: str = ""
    nm_timeout: float = 30.0
    # NetworkManager's keyfile folder: netreload's keyfiles found there are
    # removed at boot (remove-net-persistence; netreload writes none itself)
    nm_keyfile_dir: Path = Path("/etc/NetworkManager/system-connections")
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    def is_fake_nic(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, glob) for glob in self.fake_nics)

    @property
    def running_config_dir(self) -> Path:
        return self.run_dir / "netconf"

    @property
    def persistent_config_dir(self) -> Path:
        return self.lib_dir / "persistence" / "netconf"


def _choice(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"configuration: {key} = {value!r}, expected one of {', '.join(allowed)}",
        )
    return value


def _configurator(value: str) -> str:
    from configurators import registry  # importlib.util and more: not at every CLI start

    registry.check_default(value)  # registered, a default one, installed
    return value


def _bonding_driver(value: str, configurator: str) -> str:
    _choice(value, BONDING_DRIVERS, "bonding_driver")
    if value == "team" and configurator not in TEAM_CONFIGURATORS:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"configuration: bonding_driver = team needs net_configurator ="
            f" {' or '.join(TEAM_CONFIGURATORS)} (teamd is driven by the iproute2"
            f" configurator only), not {configurator!r}",
        )
    return value


def _positive(value: str, key: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 3600:
        raise NetError(
            ErrorCode.BAD_PARAMS, f"configuration: {key} = {value!r}, expected seconds (0..3600]"
        )
    return number


def _bounded_int(value: str, key: str, lowest: int, highest: int) -> int:
    if not (value.isascii() and value.isdigit()) or not lowest <= int(value) <= highest:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"configuration: {key} = {value!r}, expected an integer {lowest}..{highest}",
        )
    return int(value)


def load_config(path: str | Path | None = None) -> Config:
    """Read ``path`` (or the default one if it exists) into a Config."""
    parser = read_config_file(path)
    if parser is None:
        return Config()

    def get(section: str, key: str, default: object) -> str:
        return parser.get(section, key, fallback=str(default)).strip()

    defaults = Config()
    fake = get("vars", "fake_nics", ",".join(defaults.fake_nics))
    configurator = _configurator(get("vars", "net_configurator", defaults.net_configurator))
    config = Config(
        net_configurator=configurator,
        bonding_driver=_bonding_driver(
            get("vars", "bonding_driver", defaults.bonding_driver), configurator
        ),
        net_persistence=_choice(
            get("vars", "net_persistence", defaults.net_persistence),
            PERSISTENCES,
            "net_persistence",
        ),
        fake_nics=tuple(g.strip() for g in fake.split(",") if g.strip()),
        run_dir=Path(get("paths", "run_dir", defaults.run_dir)),
        lib_dir=Path(get("paths", "lib_dir", defaults.lib_dir)),
        resolv_conf=Path(get("paths", "resolv_conf", defaults.resolv_conf)),
        superd_socket=Path(get("superd", "socket", defaults.superd_socket)),
        frontd_user=get("frontd", "user", defaults.frontd_user),
        frontd_unix_socket=Path(get("frontd", "unix_socket", defaults.frontd_unix_socket)),
        stomp_listen=get("frontd", "stomp_listen", defaults.stomp_listen),
        stomp_max_connections=_bounded_int(
            get("frontd", "max_connections", defaults.stomp_max_connections),
            "[frontd] max_connections",
            1,
            4096,
        ),  # fmt: skip
        tls_cert=Path(get("frontd", "tls_cert", defaults.tls_cert)),
        tls_key=Path(get("frontd", "tls_key", defaults.tls_key)),
        tls_ca=Path(get("frontd", "tls_ca", defaults.tls_ca)),
        tls_crl=Path(crl) if (crl := get("frontd", "tls_crl", "")) else None,
        tls_allowed_clients=tuple(
            line.strip()
            for line in get("frontd", "tls_allowed_clients", "").splitlines()
            if line.strip()
        ),
        ovs_db=get("ovs", "db", defaults.ovs_db),
        ovs_datapath=_choice(
            get("ovs", "datapath", defaults.ovs_datapath), OVS_DATAPATHS, "[ovs] datapath"
        ),
        ovs_timeout=_positive(get("ovs", "timeout", defaults.ovs_timeout), "[ovs] timeout"),
        ifcfg_dir=_absolute(get("ifcfg", "dir", defaults.ifcfg_dir), "[ifcfg] dir"),
        ifcfg_apply=_choice(get("ifcfg", "apply", defaults.ifcfg_apply), IFCFG_APPLY,
                            "[ifcfg] apply"),  # fmt: skip
        ifcfg_ifup=_absolute(get("ifcfg", "ifup", defaults.ifcfg_ifup), "[ifcfg] ifup"),
        ifcfg_ifdown=_absolute(get("ifcfg", "ifdown", defaults.ifcfg_ifdown), "[ifcfg] ifdown"),
        ifcfg_nm_dir=(
            _absolute(nm_dir, "[ifcfg] nm_dir") if (nm_dir := get("ifcfg", "nm_dir", "")) else None
        ),
        nm_bus=get("nm", "bus", defaults.nm_bus),
        nm_timeout=_positive(get("nm", "timeout", defaults.nm_timeout), "[nm] timeout"),
        nm_keyfile_dir=_absolute(
            get("nm", "keyfile_dir", defaults.nm_keyfile_dir), "[nm] keyfile_dir"
        ),
        extra={s: dict(parser.items(s)) for s in parser.sections()},
    )
    if config.net_persistence == "ifcfg" and config.net_configurator != "ifcfg":
        raise NetError(
            ErrorCode.BAD_PARAMS,
            "configuration: net_persistence = 'ifcfg' needs net_configurator = ifcfg "
            f"(not {config.net_configurator!r})",
        )
    return config


def _absolute(value: str, key: str) -> Path:
    if not value.startswith("/"):
        raise NetError(
            ErrorCode.BAD_PARAMS, f"configuration: {key} = {value!r}, expected an absolute path"
        )
    return Path(value)
