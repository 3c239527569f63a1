"""The configuration file contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Config, load_config
from shared.errors import ErrorCode, NetError

SAMPLE = Path(__file__).resolve().parents[2] / "init" / "netreload.conf"


def test_sample_configuration_matches_the_defaults() -> None:
    loaded = load_config(SAMPLE)
    defaults = Config()
    for key in ("net_configurator", "net_persistence", "bonding_driver", "fake_nics", "run_dir",
                "lib_dir", "resolv_conf", "superd_socket", "frontd_user", "frontd_unix_socket",
                "stomp_listen", "tls_cert", "tls_key", "tls_ca", "ifcfg_dir", "ifcfg_apply",
                "ifcfg_ifup", "ifcfg_ifdown"):  # fmt: skip
        assert getattr(loaded, key) == getattr(defaults, key), key


def test_paths_are_overridable(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(f"[paths]\nrun_dir = {tmp_path}/run\nlib_dir = {tmp_path}/lib\n")
    config = load_config(conf)
    assert config.running_config_dir == tmp_path / "run" / "netconf"
    assert config.persistent_config_dir == tmp_path / "lib" / "persistence" / "netconf"


def test_fake_nics_globs_decide_what_counts_as_a_nic(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\nfake_nics = veth_*, tap?\n")
    config = load_config(conf)
    assert config.is_fake_nic("veth_3") and config.is_fake_nic("tap1")
    assert not config.is_fake_nic("dummy_0")


@pytest.mark.parametrize("line", ["net_configurator = vpp", "net_persistence = sqlite"])
def test_unknown_choice_is_rejected(tmp_path: Path, line: str) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(f"[vars]\n{line}\n")
    with pytest.raises(NetError) as info:
        load_config(conf)
    assert info.value.code == ErrorCode.BAD_PARAMS


def test_missing_configuration_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NetError):
        load_config(tmp_path / "absent.conf")


def test_sample_events_section_is_the_default_policy() -> None:
    from superd.events import DEFAULT_POLICY, parse_policy

    assert parse_policy(load_config(SAMPLE).extra["events"]) == DEFAULT_POLICY


def test_stomp_connection_cap_is_read_from_frontd_section(tmp_path) -> None:
    path = tmp_path / "netreload.conf"
    path.write_text("[frontd]\nmax_connections = 128\n")
    assert load_config(path).stomp_max_connections == 128


@pytest.mark.parametrize("value", ["0", "-1", "many", "5000"])
def test_stomp_connection_cap_out_of_range_is_refused(tmp_path, value: str) -> None:
    path = tmp_path / "netreload.conf"
    path.write_text(f"[frontd]\nmax_connections = {value}\n")
    with pytest.raises(NetError) as info:
        load_config(path)
    assert "max_connections" in info.value.message


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("net_configurator = ovs", "serves networks with switch 'ovs'"),
        ("net_persistence = ifcfg", "net_persistence = 'ifcfg' needs net_configurator = ifcfg"),
    ],
)
def test_what_is_not_implemented_is_refused_when_the_configuration_is_read(
    tmp_path: Path, line: str, says: str
) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(f"[vars]\n{line}\n")
    with pytest.raises(NetError) as info:
        load_config(conf)
    assert info.value.code == ErrorCode.BAD_PARAMS and says in info.value.message


def test_the_ifcfg_configurator_and_its_keys_are_read(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(
        "[vars]\nnet_configurator = ifcfg\n[ifcfg]\ndir = /srv/scripts\napply = initscripts\n"
        "ifup = /opt/bin/ifup\nifdown = /opt/bin/ifdown\n"
    )
    config = load_config(conf)
    assert (config.net_configurator, config.ifcfg_apply) == ("ifcfg", "initscripts")
    assert (config.ifcfg_dir, config.ifcfg_ifup, config.ifcfg_ifdown) == (
        Path("/srv/scripts"), Path("/opt/bin/ifup"), Path("/opt/bin/ifdown"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("apply = networkd", "[ifcfg] apply = 'networkd', expected one of nm, initscripts"),
        ("dir = scripts", "[ifcfg] dir = 'scripts', expected an absolute path"),
        ("ifup = ifup", "[ifcfg] ifup = 'ifup', expected an absolute path"),
    ],
)
def test_bad_ifcfg_keys_are_refused(tmp_path: Path, line: str, says: str) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(f"[vars]\nnet_configurator = ifcfg\n[ifcfg]\n{line}\n")
    with pytest.raises(NetError) as info:
        load_config(conf)
    assert info.value.code == ErrorCode.BAD_PARAMS and says in info.value.message


def test_a_configurator_not_installed_is_refused_saying_what_is_missing(tmp_path: Path) -> None:
    from configurators.base import Configurator
    from configurators.registry import Entry, registered

    def factory(config: Config, peers: object) -> Configurator:
        raise AssertionError("never made while the configuration is read")

    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\nnet_configurator = teamd\n")
    entry = Entry("teamd", factory, switch="legacy", requires=("no_such_module_xyz",),
                  default=True, hint="apt install netreload-teamd")  # fmt: skip
    with registered(entry), pytest.raises(NetError) as info:
        load_config(conf)
    assert "no_such_module_xyz" in info.value.message
    assert "apt install netreload-teamd" in info.value.message


def test_nm_is_accepted_with_its_bus_and_timeout_when_dbus_python_is_installed(
    tmp_path: Path,
) -> None:
    pytest.importorskip("dbus")
    conf = tmp_path / "n.conf"
    conf.write_text(
        "[vars]\nnet_configurator = nm\n[nm]\nbus = unix:path=/tmp/b.sock\ntimeout = 12\n"
    )
    config = load_config(conf)
    assert (config.net_configurator, config.nm_bus, config.nm_timeout) == (
        "nm",
        "unix:path=/tmp/b.sock",
        12.0,
    )


def test_nm_defaults_to_the_system_bus_and_30_seconds(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\n")
    config = load_config(conf)
    assert (config.nm_bus, config.nm_timeout) == ("", 30.0)


def test_nm_keyfile_dir_defaults_to_networkmanagers_and_must_be_absolute(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\n")
    assert load_config(conf).nm_keyfile_dir == Path("/etc/NetworkManager/system-connections")
    conf.write_text("[nm]\nkeyfile_dir = /srv/keyfiles\n")
    assert load_config(conf).nm_keyfile_dir == Path("/srv/keyfiles")
    conf.write_text("[nm]\nkeyfile_dir = keyfiles\n")
    with pytest.raises(NetError) as info:
        load_config(conf)
    assert info.value.code == ErrorCode.BAD_PARAMS


def test_nm_without_dbus_python_is_refused_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dbus" else real(name, *a)
    )
    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\nnet_configurator = nm\n")
    with pytest.raises(NetError) as info:
        load_config(conf)
    assert info.value.code == ErrorCode.BAD_PARAMS
    assert "dbus" in info.value.message and "libdbus-1-dev" in info.value.message


def test_bonding_driver_team_is_read(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\nbonding_driver = team\n")
    assert load_config(conf).bonding_driver == "team"


def test_an_unknown_bonding_driver_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\nbonding_driver = ovs\n")
    with pytest.raises(NetError) as info:
        load_config(conf)
    assert "bonding_driver = 'ovs', expected one of bonding, team" in info.value.message


def test_team_with_another_configurator_than_iproute2_is_refused(tmp_path: Path) -> None:
    from configurators.base import Configurator
    from configurators.registry import Entry, registered

    def factory(config: Config, peers: object) -> Configurator:
        raise AssertionError("never made while the configuration is read")

    conf = tmp_path / "n.conf"
    conf.write_text("[vars]\nnet_configurator = othernm\nbonding_driver = team\n")
    with registered(Entry("othernm", factory, switch="legacy", default=True)):
        with pytest.raises(NetError) as info:
            load_config(conf)
        conf.write_text("[vars]\nnet_configurator = othernm\n")
        assert load_config(conf).bonding_driver == "bonding"
    assert info.value.code == ErrorCode.BAD_PARAMS
    assert "bonding_driver = team needs net_configurator = iproute2" in info.value.message
