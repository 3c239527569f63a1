"""A Linux (or OVS) bridge carrying a network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from shared.errors import ErrorCode, NetError
from shared.netmodel.device import NetDevice
from shared.netmodel.names import validate_bridge_name

DEFAULT_FORWARD_DELAY = 0


@dataclass(frozen=True)
class Bridge(NetDevice):
    port: NetDevice | None = None  # None: a nic-less bridge
    stp: bool = False
    forward_delay: int = DEFAULT_FORWARD_DELAY
    # custom.bridge_opts as pyroute2 keywords ((br_…, value), sorted); a
    # br_forward_delay here (1/100 s) wins over forward_delay
    options: tuple[tuple[str, Any], ...] = ()

    kind: ClassVar[str] = "bridge"

    @property
    def lower(self) -> NetDevice | None:
        return self.port

    def validate(self, name_checked: bool = False) -> None:
        """``name_checked``: the caller (its network) just checked the name."""
        if not name_checked:
            validate_bridge_name(self.name)
        if not 0 <= self.forward_delay <= 30:
            raise NetError(
                ErrorCode.BAD_BRIDGE,
                f"bridge {self.name}: forward_delay {self.forward_delay} is out "
                "of range 0..30",
            )
        if self.port is not None:
            self.port.validate()
        super().validate()
