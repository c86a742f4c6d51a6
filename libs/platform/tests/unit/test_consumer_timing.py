"""The consumer group's failure-detection timing, from the environment."""

from __future__ import annotations

import pytest

from marquee_platform.consumer import GroupTiming
from marquee_platform.workers import WorkerStatus


def test_defaults_detect_a_dead_member_within_two_seconds() -> None:
    timing = GroupTiming.from_environment({})
    assert (timing.session_timeout_ms, timing.heartbeat_interval_ms) == (2000, 300)


def test_operators_can_match_a_broker_that_needs_longer_sessions() -> None:
    timing = GroupTiming.from_environment(
        {
            "MARQUEE_CONSUMER_SESSION_TIMEOUT_MS": "6000",
            "MARQUEE_CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
        }
    )
    assert (timing.session_timeout_ms, timing.heartbeat_interval_ms) == (6000, 1000)


def test_a_heartbeat_slower_than_a_third_of_the_session_is_refused() -> None:
    with pytest.raises(ValueError, match="at most a third"):
        GroupTiming.from_environment({"MARQUEE_CONSUMER_HEARTBEAT_INTERVAL_MS": "1000"})


def test_a_worker_status_survives_its_json_form() -> None:
    status = WorkerStatus(
        kind="consumer",
        group="search",
        bootstrap="127.0.0.1:9092",
        instance="host:12",
        partitions=("events.event-changed.v1[0]", "events.event-changed.v1[3]"),
        lag=7,
        started_at=1.5,
        reported_at=2.5,
    )
    assert WorkerStatus.from_json(status.to_json()) == status
    assert status.key == "marquee:workers:consumer:search:host:12"
