"""A bond of NICs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from shared.errors import ErrorCode, NetError
from shared.netmodel import bond_options, ovs_bond_options
from shared.netmodel.device import NetDevice
from shared.netmodel.names import validate_bond_name, validate_nic_name

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True)
class Bond(NetDevice):
    slaves: tuple[str, ...] = ()
    options: str = ""
    hwaddr: str | None = None
    switch: str = "legacy"

    kind: ClassVar[str] = "bond"

    def validate(self) -> None:
        validate_bond_name(self.name)
        if not self.slaves:
            raise NetError(
                ErrorCode.BAD_PARAMS, f"bond {self.name}: must specify nics for bonding"
            )
        if len(set(self.slaves)) != len(self.slaves):
            raise NetError(
                ErrorCode.BAD_BONDING, f"bond {self.name}: a nic is listed twice"
            )
        for slave in self.slaves:
            validate_nic_name(slave)
        if self.hwaddr is not None and not _MAC.match(self.hwaddr):
            raise NetError(
                ErrorCode.BAD_BONDING,
                f"bond {self.name}: hwaddr {self.hwaddr!r} is not a MAC address",
            )
        if self.switch == "ovs":
            if len(self.slaves) < 2:
                raise NetError(
                    ErrorCode.BAD_BONDING, f"bond {self.name}: an OVS bond needs two nics"
                )
            ovs_bond_options.parse(self.options, self.name)
        else:
            bond_options.validate_bond_options(
                self.name, bond_options.parse_bond_options(self.options)
            )
        super().validate()

    @property
    def parsed_options(self) -> dict[str, str]:
        return bond_options.parse_bond_options(self.options)

    @classmethod
    def from_attrs(cls, name: str, attrs: dict, mtu: int) -> Bond:
        return cls(
            name=name,
            mtu=mtu,
            slaves=tuple(attrs.get("nics", ())),
            options=attrs.get("options", ""),
            hwaddr=attrs.get("hwaddr"),
            switch=attrs.get("switch", "legacy"),
        )
