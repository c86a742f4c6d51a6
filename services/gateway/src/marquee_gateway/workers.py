"""The workers in the gateway's ``/readyz``: every consumer group and every relay.

Consumers and relays have no port to probe; each reports itself in Redis
(:mod:`marquee_platform.workers`). A group is up while at least one replica reports in,
and its entry says how many replicas hold how many partitions with what lag; a relay is
up while some replica of it is the active one. Without this a killed consumer left the
platform "ready" while its events went unapplied.

Which groups and relays to expect: the settings' lists, else those of the services the
gateway routes to (a service's consumer group is named after it, as is the relay of its
database).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis_asyncio
from fastapi import FastAPI

from marquee_platform.service import discover_services
from marquee_platform.workers import WorkerStatus, read_workers


def expected_workers(
    routed: Iterable[str], consumer_groups: list[str] | None, relays: list[str] | None
) -> tuple[list[str], list[str]]:
    """The consumer groups and relays behind the ``routed`` services: as configured, else
    found from the installed services' specs."""
    if consumer_groups is not None and relays is not None:
        return consumer_groups, relays
    installed = discover_services()
    specs = [installed[name] for name in routed if name in installed]
    return (
        consumer_groups
        if consumer_groups is not None
        else [spec.name for spec in specs if spec.consumer_factory is not None],
        relays if relays is not None else [spec.name for spec in specs if spec.has_database],
    )


class WorkerReports:
    """Reads the workers' reports once per ``/readyz``: the checks run together, and
    those that ask while a read is in flight share it."""

    def __init__(self, redis: redis_asyncio.Redis, bootstrap: str) -> None:
        self.redis = redis
        self.bootstrap = bootstrap
        self._reading: asyncio.Task[list[WorkerStatus]] | None = None

    async def of(self, kind: str, group: str) -> list[WorkerStatus]:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(
                read_workers(self.redis, bootstrap=self.bootstrap)
            )
        statuses = await asyncio.shield(self._reading)
        return [s for s in statuses if s.kind == kind and s.group == group]


def consumer_group_check(reports: WorkerReports, group: str) -> Any:
    async def check() -> dict[str, Any]:
        members = await reports.of("consumer", group)
        if not members:
            raise RuntimeError(f"no replica of consumer group {group} reports in")
        return {
            "replicas": len(members),
            "partitions": sum(len(member.partitions) for member in members),
            "lag": sum(member.lag or 0 for member in members),
            "by_replica": {
                member.instance: {"partitions": len(member.partitions), "lag": member.lag}
                for member in members
            },
        }

    return check


def relay_check(reports: WorkerReports, name: str) -> Any:
    async def check() -> dict[str, Any]:
        relays = await reports.of("relay", name)
        active = [relay.instance for relay in relays if relay.role == "active"]
        if not active:
            standing_by = len(relays)
            raise RuntimeError(
                f"no active relay for {name}"
                + (f" ({standing_by} standing by, taking over)" if standing_by else "")
            )
        return {"active": active[0], "standby": len(relays) - len(active)}

    return check


def add_worker_checks(
    app: FastAPI,
    redis: redis_asyncio.Redis,
    *,
    bootstrap: str,
    consumer_groups: list[str] | None,
    relays: list[str] | None,
) -> None:
    reports = WorkerReports(redis, bootstrap)
    groups, relay_names = expected_workers(app.state.settings.service_urls, consumer_groups, relays)
    for group in groups:
        app.state.readiness.add(f"consumer:{group}", consumer_group_check(reports, group))
    for name in relay_names:
        app.state.readiness.add(f"relay:{name}", relay_check(reports, name))
