"""The base of every network primitive."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from shared.errors import ErrorCode, NetError
from shared.netmodel.ipconfig import IpConfig

DEFAULT_MTU = 1500
MIN_MTU = 68
MAX_MTU = 65535


@dataclass(frozen=True)
class NetDevice:
    """A kernel network device; ``ip`` is set only on a network's top device."""

    name: str
    mtu: int = DEFAULT_MTU
    ip: IpConfig | None = None

    kind: ClassVar[str] = "device"
    is_virtual: ClassVar[bool] = True

    @property
    def lower(self) -> NetDevice | None:
        """The device this one is stacked on, if any."""
        return None

    def chain(self) -> Iterator[NetDevice]:
        """This device and those below it, bottom first."""
        if self.lower is not None:
            yield from self.lower.chain()
        yield self

    def validate(self) -> None:
        if not MIN_MTU <= self.mtu <= MAX_MTU:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"{self.kind} {self.name}: mtu {self.mtu} is out of range "
                f"{MIN_MTU}..{MAX_MTU}",
            )
        if self.ip is not None:
            self.ip.validate(f"{self.kind} {self.name}")
