"""Bonds through netlink: create (marked as netreload's) or adopt one of
netreload's, modify, delete. A bond netreload did not create (without the
mark, ``shared.netmodel.ownership``) is never changed nor deleted.

The options come from the bond option table (``shared.netmodel.
bond_options``): ``netlink_bond_attrs`` for what pyroute2 carries, the
bonding sysfs files for the rest. The kernel refuses some options unless
the bond is in a given state, and checks that even when the value would not
change, so only the options that differ from what the kernel reports are
ever sent:

* ``mode`` and ``fail_over_mac``: only while the bond has no slaves
  (ENOTEMPTY) — the slaves are released first and enslaved again after;
* ``mode``, ``lacp_rate``, ``ad_select``, ``ad_actor_*``,
  ``ad_user_port_key``, ``tlb_dynamic_lb``, ``lacp_active``: only while the
  bond is down (EBUSY) — it is set down and up again around the change;
* a mode change resets ``arp_validate`` (and with ARP monitoring, miimon),
  so the rest is compared again after the mode is set;
* ``updelay``, ``downdelay`` and ``peer_notif_delay`` are kept as multiples
  of miimon, so they are compared rounded down the same way.

On ``modify_bond`` an option the old bond had and the new one drops goes
back to its default, when the new mode allows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from configurators.iproute2_netlink import Kernel
from configurators.iproute2_reads import IFF_UP, read_value, write_value
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bond_options import (
    BOND_OPTIONS,
    mode_number,
    netlink_bond_attrs,
    sysfs_only_bond_values,
    sysfs_value_matches,
    validate_bond_options,
)

log = logging.getLogger("netreload.iproute2")

SYSFS_NET = Path("/sys/class/net")
NEEDS_NO_SLAVES = frozenset({"mode", "fail_over_mac"})
NEEDS_DOWN = frozenset(
    {
        "mode",
        "lacp_rate",
        "ad_select",
        "ad_actor_sys_prio",
        "ad_user_port_key",
        "ad_actor_system",
        "tlb_dynamic_lb",
        "lacp_active",
    }
)
ACTIVE_BACKUP = 1
MIIMON_MULTIPLES = frozenset({"updelay", "downdelay", "peer_notif_delay"})
# netlink keyword -> option names (num_grat_arp and num_unsol_na share one)
_NETLINK_OPTIONS: dict[str, set[str]] = {}
for _opt in BOND_OPTIONS.values():
    if _opt.netlink is not None:
        _NETLINK_OPTIONS.setdefault(_opt.netlink, set()).add(_opt.name)


def desired_options(bond: Bond, old: Bond | None = None) -> dict[str, str]:
    """The bond's options, plus the default of each option ``old`` had that
    ``bond`` drops (when its mode allows it)."""
    options = validate_bond_options(bond.name, bond.parsed_options)
    if old is None:
        return options
    mode = mode_number(options)
    targets = {BOND_OPTIONS[key].netlink or BOND_OPTIONS[key].sysfs for key in options}
    for key in validate_bond_options(old.name, old.parsed_options):
        opt = BOND_OPTIONS[key]
        target = opt.netlink or opt.sysfs
        if key in options or target is None or target in targets or mode not in opt.modes:
            continue
        value = opt.default
        if key == "miimon" and int(options.get("arp_interval", "0")):
            value = "0"  # ARP monitoring replaces it
        options[key] = value
        targets.add(target)
    return options


def _round_to(value: int, miimon: int) -> int:
    return value // miimon * miimon if miimon else value


def _same(attr: str, want: Any, have: Any) -> bool:
    if have is None:  # the kernel omits unset attributes (primary, targets)
        return not want
    if attr == "bond_arp_ip_target":
        return sorted(str(a) for a in want) == sorted(str(a) for a in have)
    if isinstance(want, bytes):  # ad_actor_system: pyroute2 reads "xx:xx:..."
        return want.hex(":") == str(have).lower()
    return want == have


def netlink_changes(
    options: Mapping[str, str], current: Mapping[str, Any], ifindex_of: Callable[[str], int]
) -> dict[str, Any]:
    """The netlink keywords whose value differs from the kernel's ``current``
    (``read_device``'s ``data``)."""
    attrs = netlink_bond_attrs(options, ifindex_of)
    miimon = int(attrs.get("bond_miimon", current.get("bond_miimon") or 0))
    for key in ("bond_updelay", "bond_downdelay"):
        if key in attrs:
            attrs[key] = _round_to(int(attrs[key]), miimon)
    return {key: value for key, value in attrs.items() if not _same(key, value, current.get(key))}


def keeps_own_mac(options: Mapping[str, str], current: Mapping[str, Any]) -> bool:
    """Whether the bond holds a MAC address of its own: in active-backup
    with fail_over_mac active or follow, the kernel ignores (yet reports as
    a change) any address set on the bond."""
    mode = mode_number(options) if "mode" in options else current.get("bond_mode") or 0
    if mode != ACTIVE_BACKUP:
        return True
    if "fail_over_mac" in options:
        policy = netlink_bond_attrs({"fail_over_mac": options["fail_over_mac"]})
        return not policy["bond_fail_over_mac"]
    return not current.get("bond_fail_over_mac")


def option_names(attrs: Mapping[str, Any]) -> set[str]:
    return set().union(*(_NETLINK_OPTIONS[key] for key in attrs)) if attrs else set()


class BondApplier:
    def __init__(self, kernel: Kernel, flush: Callable[[dict[str, Any]], None]) -> None:
        self.kernel = kernel
        self.flush = flush  # removes a released slave's addresses

    # -- entry points --------------------------------------------------------
    def ensure(self, bond: Bond, old: Bond | None) -> None:
        """Create (and mark) ``bond``, or adopt netreload's, and bring its options, MAC address, MTU
        and slaves to what it says; up."""
        options = desired_options(bond, old)
        slaves = [
            self.kernel.require(name, ErrorCode.BAD_NIC, "bond slave") for name in bond.slaves
        ]
        dev = self.kernel.device(bond.name)
        if dev is None:
            self._create(bond, options)
            dev = self.kernel.require(bond.name)
            self.kernel.mark(dev)
        elif dev["kind"] != "bond":
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"{bond.name}: exists and is not a bond (kind {dev['kind'] or 'nic'})",
            )
        elif not self.kernel.owned(dev):
            raise NetError(
                ErrorCode.USED_BOND,
                f"bond {bond.name} exists and was not created by netreload: not taken over",
            )
        self._options(dev, options)
        if (
            bond.hwaddr
            and keeps_own_mac(options, dev["info"])
            and (dev["address"] or "").lower() != bond.hwaddr.lower()
        ):
            self.kernel.set_link(dev, f"set address {bond.hwaddr}", address=bond.hwaddr)
        self.kernel.ensure_mtu(dev, bond.mtu)
        self._slaves(dev, slaves)
        self.kernel.ensure_up(dev)

    def delete(self, bond: Bond) -> None:
        dev = self.kernel.device(bond.name)
        if dev is None:
            return
        if dev["kind"] != "bond":
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"{bond.name}: is not a bond (kind {dev['kind'] or 'nic'}), not deleting it",
            )
        if not self.kernel.owned(dev):
            log.info("%s: a bond netreload did not create: left as it is", bond.name)
            return
        slaves = self.kernel.ports_of(dev["index"])
        for slave in slaves:
            self.kernel.set_link(slave, f"release from {bond.name}", master=0)
        self.kernel.delete_link(dev)
        for slave in slaves:
            self._after_release(slave["name"])

    # -- steps -------------------------------------------------------------
    def _ifindex_of(self, name: str) -> int:
        return self.kernel.require(name, ErrorCode.BAD_NIC, "bond primary")["index"]

    def _create(self, bond: Bond, options: Mapping[str, str]) -> None:
        attrs = netlink_bond_attrs(options, self._ifindex_of)
        extra: dict[str, Any] = {"mtu": bond.mtu}
        if bond.hwaddr:
            extra["address"] = bond.hwaddr
        self.kernel.request(
            bond.name, "create bond", "link", "add", ifname=bond.name, kind="bond", **attrs, **extra
        )

    def _options(self, dev: dict[str, Any], options: Mapping[str, str]) -> None:
        changes = netlink_changes(options, dev["info"], self._ifindex_of)
        files = self._sysfs_changes(dev["name"], options, dev["info"])
        names = option_names(changes) | {_sysfs_option(f) for f in files}
        if not names:
            return
        if names & NEEDS_NO_SLAVES:
            for slave in self.kernel.ports_of(dev["index"]):
                what = f"release from {dev['name']} to change its mode"
                self.kernel.set_link(slave, what, master=0)
        if names & NEEDS_DOWN:
            self.kernel.ensure_down(dev)
        if "bond_mode" in changes:
            self._set(dev, {"bond_mode": changes["bond_mode"]})
            dev.update(self.kernel.require(dev["name"]))
            changes = netlink_changes(options, dev["info"], self._ifindex_of)
            files = self._sysfs_changes(dev["name"], options, dev["info"])
        if changes:
            self._set(dev, changes)
        for name, value in files.items():
            write_value(dev["name"], SYSFS_NET / dev["name"] / "bonding" / name, value)

    def _set(self, dev: dict[str, Any], attrs: Mapping[str, Any]) -> None:
        what = "set bonding options " + " ".join(sorted(option_names(attrs)))
        self.kernel.set_link(dev, what, kind="bond", **attrs)

    def _sysfs_changes(
        self, bond: str, options: Mapping[str, str], current: Mapping[str, Any]
    ) -> dict[str, str]:
        """{sysfs file: value} of the sysfs-only options that differ."""
        miimon = int(options.get("miimon", current.get("bond_miimon") or 0))
        out = {}
        for name, value in sysfs_only_bond_values(options).items():
            key = _sysfs_option(name)
            if key in MIIMON_MULTIPLES:
                value = str(_round_to(int(value), miimon))
            path = SYSFS_NET / bond / "bonding" / name
            text = read_value(path)
            if text is None:
                raise NetError(
                    ErrorCode.FAILED_IFUP,
                    f"{bond}: bonding option {key}: {path} does not exist in this kernel",
                )
            if not sysfs_value_matches(key, value, text):
                out[name] = value
        return out

    def _slaves(self, dev: dict[str, Any], slaves: list[dict[str, Any]]) -> None:
        wanted = {slave["name"] for slave in slaves}
        for port in self.kernel.ports_of(dev["index"]):
            if port["name"] not in wanted:
                self.kernel.set_link(port, f"release from {dev['name']}", master=0)
                self._after_release(port["name"])
        for slave in slaves:
            current = self.kernel.require(slave["name"], ErrorCode.BAD_NIC, "bond slave")
            if current["master"] == dev["index"]:
                self.kernel.ensure_up(current)
                continue
            self.kernel.ensure_down(current)
            self.kernel.set_link(current, f"enslave to {dev['name']}", master=dev["index"])
            current["flags"] &= ~IFF_UP
            self.kernel.ensure_up(current)

    def _after_release(self, name: str) -> None:
        """A released slave is up, without addresses."""
        slave = self.kernel.device(name)
        if slave is not None:
            self.kernel.ensure_up(slave)
            self.flush(slave)


def _sysfs_option(sysfs_name: str) -> str:
    return next(key for key, opt in BOND_OPTIONS.items() if opt.sysfs == sysfs_name)
