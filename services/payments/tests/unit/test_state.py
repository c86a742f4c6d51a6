"""The payment's forward-only state machine (marquee_payments.state)."""

from __future__ import annotations

import pytest

from marquee_payments.state import next_status


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        ("requires_payment_method", "requires_action", "requires_action"),
        ("requires_action", "processing", "processing"),
        ("processing", "requires_action", None),  # a late step back
        ("requires_action", "failed", "failed"),
        ("failed", "requires_action", "requires_action"),  # the buyer retries
        ("failed", "succeeded", "succeeded"),
        ("canceled", "succeeded", "succeeded"),  # money taken is never forgotten
        ("succeeded", "failed", None),  # a late failure never overrides a success
        ("succeeded", "canceled", None),
        ("succeeded", "refunded", "refunded"),
        ("refunded", "succeeded", None),
        ("canceled", "failed", None),
        ("requires_payment_method", "refunded", None),
        ("succeeded", "succeeded", None),
    ],
)
def test_next_status(current: str, incoming: str, expected: str | None) -> None:
    assert next_status(current, incoming) == expected
