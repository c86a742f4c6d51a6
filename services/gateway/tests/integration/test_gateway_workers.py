"""The gateway's /readyz reports every consumer group and relay from the workers' own
reports in real Redis: a group with no live replica, or a database whose relays are all
standing by, makes the platform not ready, and says so."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from marquee_gateway.main import create_app
from marquee_gateway.settings import GatewaySettings
from marquee_platform.workers import WorkerBeacon, WorkerStatus
from marquee_testing.fixtures import serve_in_thread

GROUP = f"group-{uuid.uuid4().hex[:8]}"
RELAY = f"relay_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def gateway(redis_url: str, kafka_bootstrap: str) -> Iterator[str]:
    settings = GatewaySettings(
        service_urls={},
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        expected_consumer_groups=[GROUP],
        expected_relays=[RELAY],
        rate_limits_enabled=False,
        log_json=False,
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


class Workers:
    """Beacons standing in for worker processes: the same reports, written the same way."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.beacons: list[WorkerBeacon] = []

    async def start(self, status: WorkerStatus) -> WorkerBeacon:
        beacon = WorkerBeacon(self.redis_url, lambda: status).start()
        await beacon.announce()
        self.beacons.append(beacon)
        return beacon

    async def stop_all(self) -> None:
        for beacon in self.beacons:
            await beacon.stop()


@pytest.fixture
async def workers(redis_url: str) -> AsyncIterator[Workers]:
    running = Workers(redis_url)
    yield running
    await running.stop_all()


async def readiness(gateway: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gateway, trust_env=False) as client:
        response = await client.get("/readyz")
    return response.status_code, response.json()["checks"]


async def test_no_live_replica_of_a_group_or_no_active_relay_is_not_ready(
    gateway: str, workers: Workers, kafka_bootstrap: str
) -> None:
    bootstrap = kafka_bootstrap
    status, checks = await readiness(gateway)
    assert status == 503
    assert checks[f"consumer:{GROUP}"]["status"] == "down"
    assert "no replica of consumer group" in checks[f"consumer:{GROUP}"]["error"]
    assert checks[f"relay:{RELAY}"]["status"] == "down"

    # A relay standing by is not relaying; the report says a takeover is coming.
    standby = await workers.start(
        WorkerStatus(kind="relay", group=RELAY, bootstrap=bootstrap, instance="h:1", role="standby")
    )
    _, checks = await readiness(gateway)
    assert "1 standing by" in checks[f"relay:{RELAY}"]["error"]

    await workers.start(
        WorkerStatus(kind="relay", group=RELAY, bootstrap=bootstrap, instance="h:2", role="active")
    )
    for instance, partitions, lag in (("h:3", ("t[0]", "t[1]"), 5), ("h:4", ("t[2]",), 2)):
        await workers.start(
            WorkerStatus(
                kind="consumer",
                group=GROUP,
                bootstrap=bootstrap,
                instance=instance,
                partitions=partitions,
                lag=lag,
            )
        )
    # Another platform's worker of the same name, on another cluster, is not ours.
    await workers.start(
        WorkerStatus(kind="consumer", group=GROUP, bootstrap="elsewhere:9092", instance="x:9")
    )
    status, checks = await readiness(gateway)
    assert status == 200, checks
    assert checks[f"relay:{RELAY}"]["detail"] == {"active": "h:2", "standby": 1}
    group = checks[f"consumer:{GROUP}"]["detail"]
    assert (group["replicas"], group["partitions"], group["lag"]) == (2, 3, 7)
    assert group["by_replica"]["h:3"] == {"partitions": 2, "lag": 5}

    # A replica that stops cleanly removes its report at once.
    await standby.stop()
    _, checks = await readiness(gateway)
    assert checks[f"relay:{RELAY}"]["detail"] == {"active": "h:2", "standby": 0}
