"""A small, pure decoder for PostgreSQL's ``pgoutput`` logical replication messages.

The CDC relay only needs four of the documented binary messages (protocol version 1):
Begin, Relation, Insert and Commit. The others a publication can produce (Type, Origin,
Update, Delete, Truncate, logical-decoding Message) are recognised and skipped; a type
byte we do not know at all is an error, because silently skipping something we do not
understand could mean skipping rows.

Reference: https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html

Kept free of I/O and of psycopg2 so it can be tested byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

# Timestamps in the protocol count microseconds since 2000-01-01 00:00:00 UTC.
PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)

_INT8 = struct.Struct("!b")
_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_BEGIN = struct.Struct("!QqI")  # final LSN, commit timestamp, xid
_COMMIT = struct.Struct("!bQQq")  # flags, commit LSN, end LSN, commit timestamp

# Message types we recognise and deliberately ignore (see the module docstring).
SKIPPED_TYPES: Final = frozenset(b"YOUDTM")


class PgOutputError(ValueError):
    """The bytes are not a pgoutput message we can decode."""


def pg_timestamp(microseconds: int) -> datetime:
    """The protocol's timestamp (µs since 2000-01-01 UTC) as an aware datetime."""
    return PG_EPOCH + timedelta(microseconds=microseconds)


def format_lsn(lsn: int) -> str:
    """An LSN the way PostgreSQL prints it (``16/B374D848``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """The inverse of :func:`format_lsn`."""
    high, _, low = text.partition("/")
    if not low:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True, slots=True)
class Begin:
    """Start of a committed transaction; its changes follow, then a :class:`Commit`."""

    final_lsn: int
    """LSN of the transaction's commit record."""
    commit_time: int
    """Commit timestamp in µs since 2000-01-01 UTC (see :func:`pg_timestamp`)."""
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    """End of a transaction. ``end_lsn`` is what a consumer confirms once it is done."""

    flags: int
    commit_lsn: int
    end_lsn: int
    """End of the commit record: confirming it makes the slot skip this transaction."""
    commit_time: int


@dataclass(frozen=True, slots=True)
class RelationColumn:
    flags: int
    name: str
    type_oid: int
    type_modifier: int

    @property
    def is_key(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True, slots=True)
class Relation:
    """Describes a table before the first change to it in a session (and after DDL)."""

    oid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]

    def column_index(self, name: str) -> int:
        for index, column in enumerate(self.columns):
            if column.name == name:
                return index
        raise KeyError(f"{self.namespace}.{self.name} has no column {name!r}")


@dataclass(frozen=True, slots=True)
class Insert:
    """A new row. ``values`` are the columns' text representations (``None`` for NULL),
    in the order of the relation's columns."""

    relation_oid: int
    values: tuple[bytes | None, ...]


Message = Begin | Commit | Relation | Insert


class _Reader:
    """A cursor over one message's bytes with the protocol's primitive types."""

    __slots__ = ("_data", "_offset")

    def __init__(self, data: bytes | memoryview, offset: int = 0) -> None:
        self._data = bytes(data)
        self._offset = offset

    def _unpack(self, fmt: struct.Struct) -> tuple[int, ...]:
        try:
            values = fmt.unpack_from(self._data, self._offset)
        except struct.error as error:
            raise PgOutputError(f"truncated message at byte {self._offset}") from error
        self._offset += fmt.size
        return values

    def int8(self) -> int:
        return self._unpack(_INT8)[0]

    def byte(self) -> int:
        if self._offset >= len(self._data):
            raise PgOutputError(f"truncated message at byte {self._offset}")
        value = self._data[self._offset]
        self._offset += 1
        return value

    def int16(self) -> int:
        return self._unpack(_INT16)[0]

    def int32(self) -> int:
        return self._unpack(_INT32)[0]

    def uint32(self) -> int:
        return self._unpack(_UINT32)[0]

    def struct(self, fmt: struct.Struct) -> tuple[int, ...]:
        return self._unpack(fmt)

    def string(self) -> str:
        end = self._data.find(b"\x00", self._offset)
        if end < 0:
            raise PgOutputError(f"unterminated string at byte {self._offset}")
        try:
            value = self._data[self._offset : end].decode()
        except UnicodeDecodeError as error:
            raise PgOutputError(f"a name that is not UTF-8 at byte {self._offset}") from error
        self._offset = end + 1
        return value

    def take(self, length: int) -> bytes:
        if length < 0 or self._offset + length > len(self._data):
            raise PgOutputError(f"truncated value at byte {self._offset}")
        value = self._data[self._offset : self._offset + length]
        self._offset += length
        return value

    def expect_end(self) -> None:
        if self._offset != len(self._data):
            raise PgOutputError(f"{len(self._data) - self._offset} unexpected trailing bytes")


def _tuple_data(reader: _Reader) -> tuple[bytes | None, ...]:
    count = reader.int16()
    values: list[bytes | None] = []
    for _ in range(count):
        kind = reader.byte()
        if kind == ord("n"):
            values.append(None)
        elif kind in (ord("t"), ord("b")):
            values.append(reader.take(reader.int32()))
        elif kind == ord("u"):
            # Only an UPDATE can leave a TOASTed value out; a new row never does.
            raise PgOutputError("unchanged TOAST value in a new row")
        else:
            raise PgOutputError(f"unknown tuple value kind {kind!r}")
    return tuple(values)


def decode(data: bytes | memoryview) -> Message | None:
    """Decode one pgoutput message; ``None`` for the kinds the relay skips.

    Raises :class:`PgOutputError` for malformed input or an unknown message type.
    """
    if not data:
        raise PgOutputError("empty message")
    reader = _Reader(data, 1)
    kind = data[0]
    message: Message
    if kind == ord("B"):
        final_lsn, commit_time, xid = reader.struct(_BEGIN)
        message = Begin(final_lsn=final_lsn, commit_time=commit_time, xid=xid)
    elif kind == ord("C"):
        flags, commit_lsn, end_lsn, commit_time = reader.struct(_COMMIT)
        message = Commit(
            flags=flags, commit_lsn=commit_lsn, end_lsn=end_lsn, commit_time=commit_time
        )
    elif kind == ord("R"):
        oid = reader.uint32()
        namespace = reader.string()
        name = reader.string()
        replica_identity = chr(reader.byte())
        columns = []
        for _ in range(reader.int16()):
            flags = reader.int8()
            column_name = reader.string()
            type_oid = reader.uint32()
            type_modifier = reader.int32()
            columns.append(RelationColumn(flags, column_name, type_oid, type_modifier))
        message = Relation(
            oid=oid,
            namespace=namespace,
            name=name,
            replica_identity=replica_identity,
            columns=tuple(columns),
        )
    elif kind == ord("I"):
        oid = reader.uint32()
        marker = reader.byte()
        if marker != ord("N"):
            raise PgOutputError(f"insert without a new tuple (marker {marker!r})")
        message = Insert(relation_oid=oid, values=_tuple_data(reader))
    elif kind in SKIPPED_TYPES:
        return None
    else:
        raise PgOutputError(f"unknown pgoutput message type {chr(kind)!r}")
    reader.expect_end()
    return message
