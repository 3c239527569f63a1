"""The OVSDB edge: one IDL session, plain-data reads, one transaction per flush.

Talks to ovsdb-server through the ``ovs`` Python IDL (never ``ovs-vsctl``).
The schema comes from the server itself, cut down to the columns netreload
reads or writes. Every wait has a deadline; a server that cannot be reached
or answers with an error is ``NetError(OVS_CONNECTION)`` (32).

A transaction increments ``Open_vSwitch.next_cfg``; :meth:`OvsDb.apply`
returns only once ovs-vswitchd has reconfigured to it (``cur_cfg``), so
the devices it creates (internal ports) exist when the caller goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable
from typing import Any

import ovs.db.idl
import ovs.json
import ovs.jsonrpc
import ovs.poller
import ovs.stream

from configurators.ovs_layout import (
    BRIDGE_COLUMNS,
    IFACE_COLUMNS,
    PORT_COLUMNS,
    OvsState,
    empty_state,
)
from shared import faults
from shared.errors import ErrorCode, NetError

log = logging.getLogger("netreload.ovs")

DB_NAME = "Open_vSwitch"
TABLES = {
    "Open_vSwitch": ("bridges", "next_cfg", "cur_cfg"),
    "Bridge": ("name", "ports", *BRIDGE_COLUMNS),
    "Port": ("name", "interfaces", *PORT_COLUMNS),
    "Interface": ("name", "error", *IFACE_COLUMNS),
}
Idl = ovs.db.idl.Idl
Txn = ovs.db.idl.Transaction


class FastParser:
    """Stand-in for ``ovs.json.Parser`` built on the standard library's C
    decoder: the PyPI ``ovs`` wheel has no C parser, and its pure-Python one
    spends seconds on the updates of a thousand ports. Same protocol as
    ``ovs.jsonrpc.Connection.recv`` uses: ``feed`` (characters consumed, up
    to the end of the first complete value), ``is_done``, ``finish``.

    The end of the value (a JSON-RPC message: an object) is found by a
    regular-expression scan of quotes, escapes and brackets only; the
    decode runs once, on the whole message."""

    _decoder = json.JSONDecoder()
    _tokens = re.compile(r'\\.|["\[\]{}]', re.S)

    def __init__(self, check_trailer: bool = False) -> None:
        self._parts: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escape = False  # the previous chunk ended inside an escape
        self._value: Any = None
        self._done = False

    def feed(self, text: str) -> int:
        if self._done:
            return 0
        start, last = (1, 1) if self._escape and text else (0, 0)
        self._escape = False
        for match in self._tokens.finditer(text, start):
            token, last = match.group(), match.end()
            if self._in_string:
                self._in_string = token != '"'
            elif token == '"':
                self._in_string = True
            elif token in "{[":
                self._depth += 1
            elif token in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._parts.append(text[:last])
                    self._finish_value()
                    return last
        if self._in_string and text.endswith("\\") and last < len(text):
            self._escape = True
        self._parts.append(text)
        return len(text)

    def _finish_value(self) -> None:
        try:
            self._value = self._decoder.decode("".join(self._parts))
        except ValueError as error:
            self._value = f"JSON parse error: {error}"  # what ovs.json reports: a string
        self._parts, self._done = [], True

    def is_done(self) -> bool:
        return self._done

    def finish(self) -> Any:
        return self._value


if ovs.json.PARSER != ovs.json.PARSER_C:
    ovs.json.Parser = FastParser  # type: ignore[misc,assignment]


def _fail(message: str) -> NetError:
    return NetError(ErrorCode.OVS_CONNECTION, f"OVSDB: {message}")


def fetch_schema(remote: str, timeout: float) -> dict:
    """The server's schema of the Open_vSwitch database."""
    error, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote),
                                                 int(timeout * 1000))  # fmt: skip
    if error or stream is None:
        raise _fail(f"cannot connect to {remote}: {_strerror(error)}")
    connection = ovs.jsonrpc.Connection(stream)
    try:
        request = ovs.jsonrpc.Message.create_request("get_schema", [DB_NAME])
        error, reply = transact_block(connection, request, timeout)
        if error or reply is None or reply.error is not None:
            raise _fail(f"get_schema on {remote}: {_strerror(error) or reply and reply.error}")
        return reply.result
    finally:
        connection.close()


def transact_block(connection: Any, request: Any, timeout: float) -> tuple[int, Any]:
    deadline = time.monotonic() + timeout
    error = connection.send(request)
    while not error:
        error, reply = connection.recv()
        if not error and reply is not None and reply.id == request.id:
            return 0, reply
        if error and error != 11:  # EAGAIN
            return error, None
        error = 0
        connection.run()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return 110, None  # ETIMEDOUT
        poller = ovs.poller.Poller()
        connection.wait(poller)
        connection.recv_wait(poller)
        poller.timer_wait(int(remaining * 1000) + 1)
        poller.block()
    return error, None


def _strerror(error: object) -> str:
    if isinstance(error, int) and error:
        return os.strerror(error)
    return str(error or "")


class OvsDb:
    """One IDL session to ``remote`` (e.g. ``unix:/run/openvswitch/db.sock``)."""

    def __init__(self, remote: str, timeout: float = 30.0) -> None:
        self.remote, self.timeout = remote, timeout
        helper = ovs.db.idl.SchemaHelper(schema_json=fetch_schema(remote, timeout))
        for table, columns in TABLES.items():
            helper.register_columns(table, list(columns))
        self.idl = Idl(remote, helper, probe_interval=0)
        self._wait(lambda: self.idl.has_ever_connected() and self._root() is not None,
                   "initial contents")  # fmt: skip

    def close(self) -> None:
        self.idl.close()

    # -- waiting ---------------------------------------------------------
    def _wait(self, done: Any, what: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            self.idl.run()
            if done():
                return
            if not self.idl._session.is_alive():
                raise _fail(f"connection to {self.remote} lost waiting for {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _fail(f"timed out after {timeout or self.timeout:g} s waiting for {what}")
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(int(min(remaining, 0.5) * 1000) + 1)
            poller.block()

    def _root(self) -> Any:
        rows = self.idl.tables["Open_vSwitch"].rows
        return next(iter(rows.values()), None)

    # -- reading -----------------------------------------------------------
    def state(self) -> OvsState:
        """Bridges, ports and interfaces as plain data (see ovs_layout)."""
        self.idl.run()
        return read_state(self.idl.tables)

    def errors(self, names: Iterable[str]) -> dict[str, str]:
        """Interface → the error ovs-vswitchd reported on it, if any."""
        wanted, out = set(names), {}
        for row in self.idl.tables["Interface"].rows.values():
            if row.name in wanted and row.error:
                out[row.name] = row.error[0]
        return out

    # -- writing -----------------------------------------------------------
    def apply(self, edits: list[tuple]) -> None:
        """One transaction with ``edits`` (``ovs_layout.diff``), then wait for
        ovs-vswitchd to reconfigure."""
        if not edits:
            return
        self.idl.run()
        txn = Txn(self.idl)
        txn.add_comment(f"netreload: {len(edits)} edit(s)")
        root = self._root()
        if root is None:
            raise _fail("the database has no Open_vSwitch row")
        _Writer(self.idl, txn, root).write(edits)
        root.increment("next_cfg")
        faults.step(f"OVSDB transaction of {len(edits)} edit(s)")
        status = self._commit(txn)
        if status == Txn.UNCHANGED:
            return
        if status != Txn.SUCCESS:
            raise _fail(f"transaction {Txn.status_to_string(status)}: {txn.get_error()}")
        target = txn.get_increment_new_value()
        self._wait(lambda: (self._root().cur_cfg or 0) >= target,
                   f"ovs-vswitchd to apply configuration {target}")  # fmt: skip

    def _commit(self, txn: Any) -> int:
        deadline = time.monotonic() + self.timeout
        while True:
            status = txn.commit()
            if status != Txn.INCOMPLETE:
                return status
            self.idl.run()
            if time.monotonic() > deadline or not self.idl._session.is_alive():
                txn.abort()
                raise _fail(f"no answer from {self.remote} to a transaction")
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            txn.wait(poller)
            poller.timer_wait(500)
            poller.block()


def read_state(tables: Any) -> OvsState:
    state = empty_state()
    port_bridge: dict[Any, str] = {}
    for row in tables["Bridge"].rows.values():
        ports = sorted(p.name for p in row.ports)
        for p in row.ports:
            port_bridge[p.uuid] = row.name
        state["bridges"][row.name] = {
            "datapath_type": row.datapath_type,
            "stp_enable": bool(row.stp_enable),
            "external_ids": dict(row.external_ids),
            "ports": ports,
        }
    for row in tables["Port"].rows.values():
        if row.uuid not in port_bridge:
            continue
        state["ports"][row.name] = {
            "bridge": port_bridge[row.uuid],
            "interfaces": sorted(i.name for i in row.interfaces),
            "tag": row.tag[0] if row.tag else None,
            "bond_mode": row.bond_mode[0] if row.bond_mode else None,
            "lacp": row.lacp[0] if row.lacp else None,
            "external_ids": dict(row.external_ids),
        }
        for iface in row.interfaces:
            state["interfaces"][iface.name] = {
                "type": iface.type,
                "mtu_request": iface.mtu_request[0] if iface.mtu_request else None,
            }
    return state


def _optional(value: Any) -> list:
    return [] if value is None else [value]


class _Writer:
    """Turns ``ovs_layout.diff`` edits into IDL row writes of one transaction."""

    def __init__(self, idl: Any, txn: Any, root: Any) -> None:
        self.idl, self.txn, self.root = idl, txn, root
        self.bridges = {r.name: r for r in idl.tables["Bridge"].rows.values()}
        self.ports = {r.name: r for r in idl.tables["Port"].rows.values()}
        self.ifaces = {r.name: r for r in idl.tables["Interface"].rows.values()}
        self.port_owner = {p.uuid: b for b in self.bridges.values() for p in b.ports}

    def write(self, edits: list[tuple]) -> None:
        bridges_ports: dict[str, list] = {}  # bridge → its new ports list
        original = list(self.root.bridges)
        root_bridges = list(original)
        for edit in edits:
            kind = edit[0]
            if kind == "del_bridge":
                row = self.bridges.pop(edit[1], None)
                if row is not None:  # unreferenced, OVSDB collects its ports
                    root_bridges = [b for b in root_bridges if b.uuid != row.uuid]
            elif kind == "del_port":
                row = self.ports.pop(edit[1], None)
                owner = self.port_owner.get(row.uuid) if row is not None else None
                if owner is not None and owner.name in self.bridges:
                    if owner.name not in bridges_ports:
                        bridges_ports[owner.name] = list(owner.ports)
                    ports = bridges_ports[owner.name]
                    ports[:] = [p for p in ports if p.uuid != row.uuid]
            elif kind == "add_bridge":
                row = self.txn.insert(self.idl.tables["Bridge"])
                row.name = edit[1]
                self._set_bridge(row, edit[2])
                self.bridges[edit[1]] = row
                bridges_ports[edit[1]] = []
                root_bridges.append(row)
            elif kind == "add_port":
                _, bridge, name, columns, ifaces = edit
                port = self.txn.insert(self.idl.tables["Port"])
                port.name = name
                self._set_port(port, columns)
                rows = []
                for iface_name, iface_columns in sorted(ifaces.items()):
                    iface = self.txn.insert(self.idl.tables["Interface"])
                    iface.name = iface_name
                    self._set_iface(iface, iface_columns)
                    rows.append(iface)
                port.interfaces = rows
                if bridge not in bridges_ports:
                    bridges_ports[bridge] = list(self.bridges[bridge].ports)
                bridges_ports[bridge].append(port)
            elif kind == "set_bridge":
                self._set_bridge(self.bridges[edit[1]], edit[2])
            elif kind == "set_port":
                self._set_port(self.ports[edit[1]], edit[2])
            elif kind == "set_iface":
                self._set_iface(self.ifaces[edit[1]], edit[2])
            else:  # diff() makes no other edit
                raise AssertionError(f"unknown OVSDB edit {kind}")
        for name, ports in bridges_ports.items():
            if name in self.bridges:
                self.bridges[name].ports = ports
        if [b.uuid for b in root_bridges] != [b.uuid for b in original]:
            self.root.verify("bridges")
            self.root.bridges = root_bridges

    @staticmethod
    def _set_bridge(row: Any, columns: dict) -> None:
        if "datapath_type" in columns:
            row.datapath_type = columns["datapath_type"] or ""
        if "stp_enable" in columns:
            row.stp_enable = bool(columns["stp_enable"])
        if "external_ids" in columns:
            row.external_ids = dict(columns["external_ids"] or {})

    @staticmethod
    def _set_port(row: Any, columns: dict) -> None:
        if "tag" in columns:
            row.tag = _optional(columns["tag"])
        if "bond_mode" in columns:
            row.bond_mode = _optional(columns["bond_mode"])
        if "lacp" in columns:
            row.lacp = _optional(columns["lacp"])
        if "external_ids" in columns:
            row.external_ids = dict(columns["external_ids"] or {})

    @staticmethod
    def _set_iface(row: Any, columns: dict) -> None:
        if "type" in columns:
            row.type = columns["type"] or ""
        if "mtu_request" in columns:
            row.mtu_request = _optional(columns["mtu_request"])
