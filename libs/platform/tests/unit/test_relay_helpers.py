"""The relay's pure helpers: slot names, Kafka headers, the command line."""

from __future__ import annotations

import json

import pytest

from marquee_platform.relay.__main__ import parse_args
from marquee_platform.relay.common import (
    RelayConfigError,
    database_name,
    kafka_headers,
    slot_name_for,
)


@pytest.mark.parametrize(
    ("name", "slot"),
    [
        ("auth", "marquee_outbox_auth"),
        ("Booking-EU.1", "marquee_outbox_booking_eu_1"),
        ("x" * 100, "marquee_outbox_" + "x" * 40),
    ],
)
def test_slot_names_are_valid_and_short_enough(name: str, slot: str) -> None:
    assert slot_name_for(name) == slot
    assert len(slot_name_for(name) + "_init") <= 63


def test_an_empty_name_is_a_configuration_error() -> None:
    with pytest.raises(RelayConfigError):
        slot_name_for("")


def test_headers_carry_the_outbox_headers_and_the_event_id() -> None:
    raw = json.dumps({"traceparent": "00-abc-def-01", "attempt": 2, "gone": None})
    assert kafka_headers(raw, "e-1") == [
        ("traceparent", b"00-abc-def-01"),
        ("attempt", b"2"),
        ("ce_id", b"e-1"),
    ]
    assert kafka_headers(b"{}", "e-2") == [("ce_id", b"e-2")]
    assert kafka_headers(None, "e-3") == [("ce_id", b"e-3")]


def test_cli_pairs_urls_with_names_or_derives_them() -> None:
    args = parse_args(
        [
            "--kafka-bootstrap",
            "127.0.0.1:9092",
            "--database-url",
            "postgresql+asyncpg://postgres@127.0.0.1/marquee_auth",
            "--database-url",
            "postgresql://postgres@127.0.0.1/marquee_booking",
        ]
    )
    assert args.name == ["marquee_auth", "marquee_booking"]
    assert args.mode == "auto"
    assert database_name("postgresql://h/db1") == "db1"


@pytest.mark.parametrize(
    "extra",
    [
        ["--name", "only-one"],
        ["--name", "same", "--name", "same"],
    ],
)
def test_cli_rejects_mismatched_or_duplicate_names(extra: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(
            [
                "--kafka-bootstrap",
                "127.0.0.1:9092",
                "--database-url",
                "postgresql://h/a",
                "--database-url",
                "postgresql://h/b",
                *extra,
            ]
        )
