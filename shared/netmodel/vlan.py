"""An 802.1Q VLAN on a NIC or a bond."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.errors import ErrorCode, NetError
from shared.netmodel.device import NetDevice
from shared.netmodel.names import IFNAMSIZ_MAX, vlan_device_name

MAX_VLAN_TAG = 4094


@dataclass(frozen=True)
class Vlan(NetDevice):
    tag: int = 0
    device: NetDevice | None = None

    kind: ClassVar[str] = "vlan"

    @property
    def lower(self) -> NetDevice | None:
        return self.device

    def validate(self) -> None:
        if self.device is None:
            raise NetError(ErrorCode.BAD_VLAN, f"vlan {self.name}: needs a nic or bond")
        if isinstance(self.tag, bool) or not 0 <= self.tag <= MAX_VLAN_TAG:
            raise NetError(
                ErrorCode.BAD_VLAN,
                f"vlan {self.name}: tag {self.tag!r} is out of range 0..{MAX_VLAN_TAG}",
            )
        if self.name != vlan_device_name(self.device.name, self.tag):
            raise NetError(ErrorCode.BAD_VLAN, f"vlan {self.name}: name does not match")
        if len(self.name) > IFNAMSIZ_MAX:
            raise NetError(
                ErrorCode.BAD_VLAN,
                f"vlan {self.name}: device name longer than {IFNAMSIZ_MAX} characters",
            )
        self.device.validate()
        super().validate()
        if self.mtu > self.device.mtu:
            raise NetError(
                ErrorCode.BAD_VLAN,
                f"vlan {self.name}: mtu {self.mtu} exceeds {self.device.name}'s "
                f"mtu {self.device.mtu}",
            )

    @classmethod
    def on(cls, device: NetDevice, tag: int, mtu: int, **kwargs) -> Vlan:
        return cls(
            name=vlan_device_name(device.name, tag),
            tag=tag,
            device=device,
            mtu=mtu,
            **kwargs,
        )
