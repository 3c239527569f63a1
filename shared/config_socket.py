"""The one setting ``netreload --json caps`` needs: frontd's local socket.

Read without the rest of :mod:`shared.config` (dataclasses, pathlib, the
configurator registry: more of the CLI's start than the three ``ip -j``
dumps it is measured against take on a host of a thousand networks). The
defaults live here and :mod:`shared.config` takes them from here, so the
two never disagree. The rest of the file is not validated on this path:
the daemons refuse a bad configuration when they start, and every other
verb reads it whole.
"""

from __future__ import annotations

import configparser
import os

from shared.errors import ErrorCode, NetError

DEFAULT_CONFIG_PATH = "/etc/netreload/netreload.conf"
# In a folder of the [frontd] user's own (tmpfiles.d), as frontd runs as
# that user from the start under systemd.
DEFAULT_FRONTD_UNIX_SOCKET = "/run/netreload/frontd/frontd.sock"


def read_config_file(path: str | os.PathLike | None) -> configparser.ConfigParser | None:
    """The file parsed (``path``, or the default one); None when no path was
    given and the default file does not exist (the defaults apply)."""
    parser = configparser.ConfigParser(interpolation=None)
    if path is None:
        path = DEFAULT_CONFIG_PATH
        if not os.path.exists(path):
            return None
    if not parser.read(path):
        raise NetError(ErrorCode.BAD_PARAMS, f"configuration file not readable: {path}")
    return parser


def frontd_unix_socket(path: str | None) -> str:
    """``[frontd] unix_socket`` of the configuration file ``path``."""
    parser = read_config_file(path)
    if parser is None:
        return DEFAULT_FRONTD_UNIX_SOCKET
    return parser.get("frontd", "unix_socket", fallback=DEFAULT_FRONTD_UNIX_SOCKET).strip()
