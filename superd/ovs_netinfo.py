"""OVSDB's side of the live netinfo: bridges, ports and interfaces, read fresh.

Each read is one ``transact`` of three ``select`` operations on a JSON-RPC
connection kept open (reopened after a failure): always what the server
holds at that moment — a report right after a change sees the change —
and a few milliseconds for a few ports. Only asked when the running
configuration has an OVS network or bond (``superd.ovs_report.has_ovs``):
a host without Open vSwitch never connects. Safe from any thread.

Unreachable OVSDB: ``None`` (the report shows the OVS networks missing,
which is what the engine must see), logged once per outage.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import ovs.jsonrpc
import ovs.stream

from configurators.ovs_db import DB_NAME, TABLES, transact_block
from configurators.ovs_layout import OvsState, empty_state
from shared.config import Config

log = logging.getLogger("netreload.superd.ovs")


def _atom(value: Any) -> Any:
    """An OVSDB JSON atom/set/map → Python (uuids as strings)."""
    if isinstance(value, list) and len(value) == 2:
        kind, data = value
        if kind in ("uuid", "named-uuid"):
            return data
        if kind == "set":
            return [_atom(v) for v in data]
        if kind == "map":
            return {_atom(k): _atom(v) for k, v in data}
    return value


def _one(value: Any) -> Any:
    """An optional column (a set of zero or one value) → value or None."""
    value = _atom(value)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _many(value: Any) -> list:
    value = _atom(value)
    return value if isinstance(value, list) else [value]


def parse_select(bridges: list, ports: list, interfaces: list) -> OvsState:
    """The rows of three selects → ``ovs_layout`` state."""
    state = empty_state()
    iface_rows = {_atom(r["_uuid"]): r for r in interfaces}
    port_rows = {_atom(r["_uuid"]): r for r in ports}
    for row in bridges:
        port_names = []
        for port_id in _many(row["ports"]):
            port = port_rows.get(port_id)
            if port is None:
                continue
            port_names.append(port["name"])
            iface_names = []
            for iface_id in _many(port["interfaces"]):
                iface = iface_rows.get(iface_id)
                if iface is None:
                    continue
                iface_names.append(iface["name"])
                state["interfaces"][iface["name"]] = {
                    "type": iface["type"],
                    "mtu_request": _one(iface["mtu_request"]),
                }
            state["ports"][port["name"]] = {
                "bridge": row["name"],
                "interfaces": sorted(iface_names),
                "tag": _one(port["tag"]),
                "bond_mode": _one(port["bond_mode"]),
                "lacp": _one(port["lacp"]),
                "external_ids": _atom(port["external_ids"]),
            }
        state["bridges"][row["name"]] = {
            "datapath_type": row["datapath_type"],
            "stp_enable": bool(row["stp_enable"]),
            "external_ids": _atom(row["external_ids"]),
            "ports": sorted(port_names),
        }
    return state


class OvsNetinfo:
    def __init__(self, config: Config) -> None:
        self.remote, self.timeout = config.ovs_db, min(config.ovs_timeout, 10.0)
        self._lock = threading.Lock()
        self._conn: Any = None
        self._failing = False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def state(self) -> OvsState | None:
        with self._lock:
            try:
                state = self._select()
            except OSError as error:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                if not self._failing:
                    log.warning("OVSDB %s unreadable: %s", self.remote, error)
                self._failing = True
                return None
            self._failing = False
            return state

    def _select(self) -> OvsState:
        if self._conn is None:
            error, stream = ovs.stream.Stream.open_block(
                ovs.stream.Stream.open(self.remote), int(self.timeout * 1000)
            )
            if error or stream is None:
                raise OSError(error or 0, f"cannot connect ({error})")
            self._conn = ovs.jsonrpc.Connection(stream)
        ops: list[Any] = [DB_NAME]
        for table in ("Bridge", "Port", "Interface"):
            columns = ["_uuid", *(c for c in TABLES[table] if c != "error")]
            ops.append({"op": "select", "table": table, "where": [], "columns": columns})
        request = ovs.jsonrpc.Message.create_request("transact", ops)
        error, reply = transact_block(self._conn, request, self.timeout)
        if error or reply is None or reply.error is not None:
            raise OSError(error or 0, f"select failed ({error or (reply and reply.error)})")
        results = reply.result
        if not isinstance(results, list) or len(results) < 3 or any("error" in r for r in results):
            raise OSError(0, f"select failed: {str(results)[:200]}")
        return parse_select(results[0]["rows"], results[1]["rows"], results[2]["rows"])

