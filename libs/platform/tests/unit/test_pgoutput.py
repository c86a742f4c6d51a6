"""The pgoutput decoder against hand-built messages and bytes captured from PostgreSQL 15."""

from __future__ import annotations

import contextlib
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marquee_platform.relay import pgoutput
from marquee_platform.relay.pgoutput import (
    Begin,
    Commit,
    Insert,
    PgOutputError,
    Relation,
    RelationColumn,
    decode,
    format_lsn,
    parse_lsn,
    pg_timestamp,
)


def cstring(text: str) -> bytes:
    return text.encode() + b"\x00"


def begin(final_lsn: int, timestamp: int, xid: int) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, timestamp, xid)


def commit(commit_lsn: int, end_lsn: int, timestamp: int, flags: int = 0) -> bytes:
    return b"C" + struct.pack("!bQQq", flags, commit_lsn, end_lsn, timestamp)


def relation(
    oid: int, namespace: str, name: str, columns: list[tuple[int, str, int, int]]
) -> bytes:
    body = struct.pack("!I", oid) + cstring(namespace) + cstring(name) + b"d"
    body += struct.pack("!h", len(columns))
    for flags, column, type_oid, modifier in columns:
        body += struct.pack("!b", flags) + cstring(column) + struct.pack("!Ii", type_oid, modifier)
    return b"R" + body


def tuple_data(values: list[bytes | None], kind: bytes = b"t") -> bytes:
    body = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            body += b"n"
        else:
            body += kind + struct.pack("!i", len(value)) + value
    return body


def insert(oid: int, values: list[bytes | None], kind: bytes = b"t") -> bytes:
    return b"I" + struct.pack("!I", oid) + b"N" + tuple_data(values, kind)


OUTBOX_COLUMNS = [
    (1, "position", 20, -1),
    (0, "event_id", 2950, -1),
    (0, "topic", 1043, 204),
    (0, "message_key", 1043, 204),
    (0, "payload", 3802, -1),
    (0, "headers", 3802, -1),
    (0, "created_at", 1184, -1),
    (0, "published_at", 1184, -1),
]


def test_begin() -> None:
    assert decode(begin(0x1_0000_0010, 757_000_000_000_000, 4242)) == Begin(
        final_lsn=0x1_0000_0010, commit_time=757_000_000_000_000, xid=4242
    )


def test_commit() -> None:
    assert decode(commit(0x5DD8DC0, 0x5DD8DF0, 1_000_000, flags=0)) == Commit(
        flags=0, commit_lsn=0x5DD8DC0, end_lsn=0x5DD8DF0, commit_time=1_000_000
    )


def test_relation_of_the_outbox() -> None:
    message = decode(relation(16_892, "public", "outbox", OUTBOX_COLUMNS))
    assert isinstance(message, Relation)
    assert (message.oid, message.namespace, message.name) == (16_892, "public", "outbox")
    assert message.replica_identity == "d"
    assert message.columns[0] == RelationColumn(1, "position", 20, -1)
    assert message.columns[0].is_key
    assert not message.columns[1].is_key
    assert message.column_index("payload") == 4
    with pytest.raises(KeyError):
        message.column_index("nope")


def test_insert_with_text_and_null_values() -> None:
    payload = b'{"id": "e1", "data": {"seats": ["A1", "A2"]}}'
    values: list[bytes | None] = [b"17", b"e1", b"t.v1", b"k", payload, b"{}", b"2026", None]
    assert decode(insert(16_892, values)) == Insert(relation_oid=16_892, values=tuple(values))


def test_insert_keeps_multibyte_text_as_bytes() -> None:
    text = "Zürich — 東京".encode()
    message = decode(insert(1, [text]))
    assert isinstance(message, Insert)
    assert message.values == (text,)


def test_binary_values_are_passed_through() -> None:
    message = decode(insert(1, [b"\x00\x01\x02"], kind=b"b"))
    assert isinstance(message, Insert)
    assert message.values == (b"\x00\x01\x02",)


def test_empty_string_is_not_null() -> None:
    message = decode(insert(1, [b"", None]))
    assert isinstance(message, Insert)
    assert message.values == (b"", None)


# Captured from PostgreSQL 15 (pgoutput, proto_version 1) for
# ``CREATE TABLE t (id int); INSERT INTO t VALUES (2)``.
CAPTURED = [
    b"B\x00\x00\x00\x00\x05\xdd\x8d\xc0\x00\x03\x03\xd4\xc0\x00\xb76\x00\x00\x04A",
    b"R\x00\x00A\xfcpublic\x00t\x00d\x00\x01\x00id\x00\x00\x00\x00\x17\xff\xff\xff\xff",
    b"I\x00\x00A\xfcN\x00\x01t\x00\x00\x00\x012",
    b"C\x00\x00\x00\x00\x00\x05\xdd\x8d\xc0\x00\x00\x00\x00\x05\xdd\x8d\xf0"
    b"\x00\x03\x03\xd4\xc0\x00\xb76",
]


def test_bytes_captured_from_postgresql() -> None:
    first, rel, row, last = (decode(message) for message in CAPTURED)
    assert isinstance(first, Begin)
    assert isinstance(last, Commit)
    assert first.final_lsn == last.commit_lsn == parse_lsn("0/5DD8DC0")
    assert last.end_lsn == parse_lsn("0/5DD8DF0")
    assert first.commit_time == last.commit_time
    assert first.xid == 1089
    assert pg_timestamp(first.commit_time).year >= 2024
    assert rel == Relation(
        oid=16_892,
        namespace="public",
        name="t",
        replica_identity="d",
        columns=(RelationColumn(0, "id", 23, -1),),
    )
    assert row == Insert(relation_oid=16_892, values=(b"2",))


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"Y" + struct.pack("!I", 99) + cstring("public") + cstring("mood"), id="type"),
        pytest.param(b"O" + struct.pack("!Q", 123) + cstring("origin"), id="origin"),
        pytest.param(b"U" + struct.pack("!I", 7) + b"N" + tuple_data([b"1", b"x"]), id="update"),
        pytest.param(b"D" + struct.pack("!I", 7) + b"K" + tuple_data([b"1"]), id="delete"),
        pytest.param(b"T" + struct.pack("!ibI", 1, 0, 7), id="truncate"),
        pytest.param(
            b"M" + struct.pack("!bQ", 1, 5) + cstring("prefix") + struct.pack("!i", 2) + b"hi",
            id="message",
        ),
    ],
)
def test_other_message_types_are_skipped(message: bytes) -> None:
    assert decode(message) is None
    assert message[0] in pgoutput.SKIPPED_TYPES


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"S\x00\x00\x00\x01\x01", "unknown pgoutput message type 'S'", id="stream"),
        pytest.param(begin(1, 2, 3)[:-1], "truncated", id="short-begin"),
        pytest.param(commit(1, 2, 3) + b"\x00", "trailing", id="long-commit"),
        pytest.param(b"R\x00\x00\x00\x01public", "unterminated", id="unterminated-string"),
        pytest.param(insert(1, [b"abc"])[:-1], "truncated", id="short-value"),
        pytest.param(b"I\x00\x00\x00\x01K" + tuple_data([b"1"]), "new tuple", id="no-new-tuple"),
        pytest.param(
            b"I\x00\x00\x00\x01N\x00\x01u", "unchanged TOAST", id="unchanged-toast-in-insert"
        ),
        pytest.param(b"I\x00\x00\x00\x01N\x00\x01x", "kind", id="unknown-value-kind"),
    ],
)
def test_malformed_messages_are_errors(message: bytes, complaint: str) -> None:
    with pytest.raises(PgOutputError, match=complaint):
        decode(message)


def test_memoryview_input() -> None:
    assert decode(memoryview(begin(1, 2, 3))) == Begin(1, 2, 3)


def test_lsn_text() -> None:
    assert format_lsn(0x16_B374D848) == "16/B374D848"
    assert parse_lsn("16/B374D848") == 0x16_B374D848
    assert parse_lsn("0/0") == 0
    with pytest.raises(ValueError, match="LSN"):
        parse_lsn("12345")


def test_timestamps_count_from_2000() -> None:
    assert pg_timestamp(0) == datetime(2000, 1, 1, tzinfo=UTC)
    assert pg_timestamp(86_400_000_000) == datetime(2000, 1, 2, tzinfo=UTC)


values_strategy = st.lists(st.one_of(st.none(), st.binary(max_size=300)), max_size=20)


@given(oid=st.integers(0, 2**32 - 1), values=values_strategy)
def test_any_insert_round_trips(oid: int, values: list[bytes | None]) -> None:
    assert decode(insert(oid, values)) == Insert(relation_oid=oid, values=tuple(values))


@given(
    lsns=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    timestamp=st.integers(-(2**63), 2**63 - 1),
)
def test_any_commit_round_trips(lsns: tuple[int, int], timestamp: int) -> None:
    assert decode(commit(lsns[0], lsns[1], timestamp)) == Commit(0, lsns[0], lsns[1], timestamp)


@given(data=st.binary(max_size=64))
def test_garbage_never_crashes_differently(data: bytes) -> None:
    """Whatever the bytes, the decoder answers a message, None or PgOutputError."""
    with contextlib.suppress(PgOutputError):
        decode(data)


def test_a_name_that_is_not_utf8_is_an_error() -> None:
    with pytest.raises(PgOutputError, match="UTF-8"):
        decode(b"R\x00\x00\x00\x01" + b"\xff\xfe\x00" + b"t\x00d\x00\x00")
