"""Replicas started together drift apart: each wait is jittered within its bounds."""

from __future__ import annotations

from marquee_platform.periodic import PeriodicTask, advisory_lock_key


def test_waits_are_jittered_within_bounds() -> None:
    async def nothing() -> None:
        return None

    task = PeriodicTask("test-jitter", every_seconds=10, run=nothing, jitter=0.2)
    waits = [task.next_wait() for _ in range(500)]
    assert all(8 <= wait <= 12 for wait in waits)
    assert max(waits) - min(waits) > 2  # they really spread


def test_lock_keys_are_stable_and_distinct() -> None:
    assert advisory_lock_key("expire-holds") == advisory_lock_key("expire-holds")
    assert advisory_lock_key("expire-holds") != advisory_lock_key("prune-platform-tables")
    assert -(2**63) <= advisory_lock_key("expire-holds") < 2**63
