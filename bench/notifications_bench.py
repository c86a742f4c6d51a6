"""Notifications: messages/s from cause to SMTP acceptance, and how long one person's own
message waits while a 50,000-message fan-out drains.

What runs: the notifications app as its own process (uvicorn: the API and both senders,
as in production), a scratch PostgreSQL database of the machine's (dropped at the end),
and a real SMTP server in this process (the aiosmtpd sink) that records, for every message
it accepts, when, to whom and its Message-ID. Causes are applied through the consumer's
own apply-once path (``ConsumerRunner.apply``: the handler and the inbox row in one
transaction); the broker between an outbox and a consumer is measured by
``make bench-relay`` and is not repeated here.

1. **Throughput**: ``--messages`` password-changed events for as many accounts, applied by
   8 concurrent appliers; messages/s = messages / (last acceptance - first cause).
2. **Burst**: an event with ``--holders`` ticket holders is cancelled (one fan-out, one
   message each, paced at ``--bulk-per-second``); while it drains, a transactional cause
   every 50 ms (a password change of another account); the delay of each from its cause
   to its acceptance gives p50/p99.
3. **Exactly once**: every account expected is counted at the sink. ``duplicates`` = copies
   beyond one per recipient, ``lost`` = recipients expected but never received.

The last line is ``RESULT messages_per_s=… transactional_p99_s=… duplicates=… lost=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from marquee_contracts.auth import PASSWORD_CHANGED, PasswordChanged
from marquee_contracts.catalog import EVENT_CANCELLED, EventCancelled
from marquee_notifications.consumers import build_consumer
from marquee_notifications.main import SERVICE
from marquee_notifications.settings import NotificationsSettings
from marquee_notifications.sink import ReceivedMail, SmtpSink
from marquee_platform.consumer import ConsumerRunner
from marquee_platform.db import Database
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_testing.notifications import (
    NotificationsProcess,
    cloud_event,
    event_snapshot,
    publish_snapshot,
)

POSTGRES = os.environ.get("MARQUEE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Tally:
    """What the sink accepted: per recipient, when, and how many copies."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        self.copies: Counter[str] = Counter()
        self.message_ids: dict[str, set[str | None]] = {}

    async def add(self, mail: ReceivedMail) -> None:
        now = time.monotonic()
        for address in mail.rcpt_to:
            self.first_seen.setdefault(address, now)
            self.copies[address] += 1
            self.message_ids.setdefault(address, set()).add(mail.message_id)

    def received(self, addresses: Sequence[str]) -> int:
        return sum(1 for address in addresses if address in self.copies)


async def accounts(database: Database, count: int, prefix: str) -> dict[str, str]:
    """``count`` accounts known to notifications (written in bulk: setup, not measured)."""
    people = {str(uuid.uuid4()): "" for _ in range(count)}
    for user_id in people:
        people[user_id] = f"{prefix}-{user_id}@example.org"
    async with database.transaction() as session:
        await session.execute(
            text("INSERT INTO recipients (user_id, email) VALUES (:u, :e)"),
            [{"u": u, "e": e} for u, e in people.items()],
        )
    return people


async def password_changed(runner: ConsumerRunner, user_id: str) -> None:
    event = cloud_event(
        PASSWORD_CHANGED.name,
        PasswordChanged(user_id=uuid.UUID(user_id), changed_at=datetime.now(UTC), reason="reset"),
    )
    assert await runner.apply(event, topic=PASSWORD_CHANGED.name)


async def wait_for(tally: Tally, addresses: Sequence[str], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while tally.received(addresses) < len(addresses) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if time.monotonic() - last_report > 10:
            say(f"  {what}: {tally.received(addresses):,} of {len(addresses):,} received")
            last_report = time.monotonic()


async def throughput(runner: ConsumerRunner, database: Database, tally: Tally, count: int) -> float:
    people = await accounts(database, count, "throughput")
    users = list(people)
    say(f"throughput: {count:,} causes (password changed), 8 concurrent appliers")
    started = time.monotonic()

    async def applier(share: Sequence[str]) -> None:
        for user_id in share:
            await password_changed(runner, user_id)

    await asyncio.gather(*(applier(users[index::8]) for index in range(8)))
    applied = time.monotonic() - started
    addresses = list(people.values())
    await wait_for(tally, addresses, timeout=600, what="throughput")
    last = max(tally.first_seen[address] for address in addresses if address in tally.first_seen)
    rate = count / (last - started)
    say(f"  causes applied in {applied:.1f}s; all accepted after {last - started:.1f}s")
    say(f"  {rate:.0f} messages/s")
    return rate


async def burst(
    runner: ConsumerRunner, database: Database, tally: Tally, holders: int
) -> tuple[list[float], float, list[str]]:
    snapshot = event_snapshot()
    await publish_snapshot(runner, snapshot)
    people = await accounts(database, holders, "holder")
    async with database.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO holdings (ticket_id, event_id, order_id, user_id, issued_at) "
                "VALUES (:t, :e, :o, :u, now())"
            ),
            [
                {"t": uuid.uuid4(), "e": snapshot.event_id, "o": uuid.uuid4(), "u": u}
                for u in people
            ],
        )
    transactional = await accounts(database, 20_000, "own")
    say(f"burst: an event with {holders:,} holders is cancelled")
    started = time.monotonic()
    cancelled = EventCancelled(
        event_id=snapshot.event_id,
        version=2,
        organizer_id=snapshot.organizer_id,
        name=snapshot.name,
        starts_at=snapshot.starts_at,
        ends_at=snapshot.ends_at,
        venue_id=snapshot.venue.id,
        previous_status="on_sale",
        reason="Storm warning",
        cancelled_at=datetime.now(UTC),
    )
    assert await runner.apply(
        cloud_event(EVENT_CANCELLED.name, cancelled), topic=EVENT_CANCELLED.name
    )
    say(f"  {holders:,} messages queued in {time.monotonic() - started:.1f}s (one statement)")
    holder_addresses = list(people.values())
    caused: dict[str, float] = {}
    others = iter(transactional.items())
    last_report = time.monotonic()
    while tally.received(holder_addresses) < holders and time.monotonic() - started < 1200:
        user_id, address = next(others)
        caused[address] = time.monotonic()
        await password_changed(runner, user_id)
        await asyncio.sleep(0.05)
        if time.monotonic() - last_report > 10:
            say(
                f"  fan-out: {tally.received(holder_addresses):,} of {holders:,}; "
                f"{len(caused)} transactional causes so far"
            )
            last_report = time.monotonic()
    drained = time.monotonic() - started
    own = list(caused)
    await wait_for(tally, own, timeout=120, what="transactional")
    delays = [tally.first_seen[a] - caused[a] for a in own if a in tally.first_seen]
    say(f"  fan-out drained in {drained:.1f}s ({holders / drained:.0f}/s)")
    return delays, holders / drained, holder_addresses + own


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--holders", type=int, default=50_000)
    parser.add_argument("--bulk-per-second", type=float, default=1_000.0)
    parser.add_argument("--connections", type=int, default=16, help="SMTP connections per lane")
    args = parser.parse_args()

    url = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url += f"/bench_notifications_{uuid.uuid4().hex[:8]}"
    logs = Path(tempfile.mkdtemp(prefix="bench-notifications-"))
    tally = Tally()
    await ensure_database(url)
    try:
        assert SERVICE.migrations is not None
        await upgrade_async(url, SERVICE.migrations)
        database = Database(url, pool_size=10)
        runner = build_consumer(NotificationsSettings(database_url=url), database=database)
        async with SmtpSink(tally) as sink:
            app = NotificationsProcess(
                url,
                sink.url,
                logs / "notifications.log",
                settings={
                    "NOTIFICATIONS_BULK_PER_SECOND": str(args.bulk_per_second),
                    "NOTIFICATIONS_BULK_CONCURRENCY": str(args.connections),
                    "NOTIFICATIONS_DIRECT_CONCURRENCY": str(args.connections),
                    "NOTIFICATIONS_LEASE_SECONDS": "60",
                },
            )
            app.start()
            say(f"notifications app pid {app.process.pid if app.process else '?'}; logs {logs}")
            try:
                rate = await throughput(runner, database, tally, args.messages)
                delays, bulk_rate, everyone = await burst(runner, database, tally, args.holders)
            finally:
                app.stop()
        await database.dispose()
    finally:
        await drop_database(url)
    expected = list(everyone)
    duplicates = sum(max(0, tally.copies[a] - 1) for a in tally.copies)
    lost = sum(1 for a in expected if a not in tally.copies)
    p50 = statistics.median(delays)
    p99 = percentile(delays, 0.99)
    say(
        f"transactional during the burst: {len(delays)} messages, p50 {p50:.3f}s, "
        f"p99 {p99:.3f}s; fan-out {bulk_rate:.0f}/s (paced at {args.bulk_per_second:.0f}/s)"
    )
    print(
        f"RESULT messages_per_s={rate:.0f} transactional_p99_s={p99:.3f} "
        f"duplicates={duplicates} lost={lost}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
