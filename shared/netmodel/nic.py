"""A NIC: a device backed by hardware (or a fake NIC in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.netmodel.device import NetDevice
from shared.netmodel.names import validate_nic_name


@dataclass(frozen=True)
class Nic(NetDevice):
    kind: ClassVar[str] = "nic"
    is_virtual: ClassVar[bool] = False

    def validate(self) -> None:
        validate_nic_name(self.name)
        super().validate()
