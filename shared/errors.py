"""Error codes of the production host agent, kept numerically identical so an
existing engine interprets our failures the same way."""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    LOST_CONNECTION = 10
    BAD_PARAMS = 21
    BAD_ADDR = 22
    BAD_NIC = 23
    USED_NIC = 24
    BAD_BONDING = 25
    BAD_VLAN = 26
    BAD_BRIDGE = 27
    USED_BRIDGE = 28
    FAILED_IFUP = 29
    USED_BOND = 31
    OVS_CONNECTION = 32
    # netreload's own, after the agent's OVS one: NetworkManager (the nm
    # configurator's service) unreachable, nothing changed.
    NM_CONNECTION = 33
    # Not a network error of the agent's list but the agent's generic
    # "resource unavailable" answer to a concurrent network verb.
    RESOURCE_UNAVAILABLE = 40
    INTERNAL = 100


class NetError(Exception):
    """A failure the engine sees as ``{code, message}``."""

    def __init__(self, code: ErrorCode | int, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"code": int(self.code), "message": self.message}

    def __str__(self) -> str:
        return f"[{int(self.code)} {self.code.name}] {self.message}"
