"""SIGKILL the notifications process while it sends 5,000 messages, restart it: every
recipient has its message, and a copy is only ever one of the few messages a connection
had accepted and not yet recorded at the kill (Sender.record_every), with the same
Message-ID. Real processes (uvicorn), a real SMTP server on loopback, real PostgreSQL."""

from __future__ import annotations

import signal
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from marquee_contracts.catalog import EVENT_CANCELLED, EventCancelled
from marquee_notifications.sender import RECORD_EVERY
from marquee_notifications.sink import MemoryStore, SmtpSink
from marquee_platform.consumer import ConsumerRunner
from marquee_platform.db import Database
from marquee_platform.faults import MARKER
from marquee_testing.notifications import (
    NotificationsProcess,
    cloud_event,
    event_snapshot,
    publish_snapshot,
)
from marquee_testing.waiting import wait_until

pytestmark = pytest.mark.integration

HOLDERS = 5_000
CONCURRENCY = 4
UNRECORDED = CONCURRENCY * RECORD_EVERY
"""The most messages a kill can leave accepted by the server and not recorded as sent."""


@pytest.fixture
def notifications_process(
    notifications_database_url: str, sink: SmtpSink, tmp_path: Path
) -> Iterator[NotificationsProcess]:
    process = NotificationsProcess(
        notifications_database_url,
        sink.url,
        tmp_path / "app.log",
        settings={
            "NOTIFICATIONS_BULK_CONCURRENCY": str(CONCURRENCY),
            "NOTIFICATIONS_BULK_PER_SECOND": "600",
        },
    )
    yield process
    process.stop()


async def cancel_with_holders(
    runner: ConsumerRunner, database: Database, holders: int
) -> dict[str, str]:
    """An event with ``holders`` ticket holders is cancelled: one message each, queued by
    the consumer's own handler. Accounts and tickets are written in bulk (setup only)."""
    snapshot = event_snapshot()
    await publish_snapshot(runner, snapshot)
    people = {str(uuid.uuid4()): "" for _ in range(holders)}
    for user_id in people:
        people[user_id] = f"holder-{user_id}@example.org"
    async with database.transaction() as session:
        await session.execute(
            text("INSERT INTO recipients (user_id, email) VALUES (:u, :e)"),
            [{"u": u, "e": e} for u, e in people.items()],
        )
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
    cancelled = EventCancelled(
        event_id=snapshot.event_id,
        version=2,
        organizer_id="organizer-1",
        name=snapshot.name,
        starts_at=snapshot.starts_at,
        ends_at=snapshot.ends_at,
        venue_id=snapshot.venue.id,
        previous_status="on_sale",
        reason="Storm warning",
        cancelled_at=datetime.now(UTC),
    )
    envelope = cloud_event(EVENT_CANCELLED.name, cancelled)
    assert await runner.apply(envelope, topic=EVENT_CANCELLED.name)
    return {email: user_id for user_id, email in people.items()}


async def statuses(database: Database) -> Counter[str]:
    async with database.reading() as session:
        rows = await session.execute(text("SELECT status, count(*) FROM messages GROUP BY 1"))
        return Counter(dict(rows.all()))


def copies_by_recipient(mailbox: MemoryStore) -> dict[str, Counter[str | None]]:
    found: dict[str, Counter[str | None]] = defaultdict(Counter)
    for mail in mailbox.messages:
        for address in mail.rcpt_to:
            found[address][mail.message_id] += 1
    return found


async def test_sigkill_while_sending_5000_loses_none_and_copies_only_what_was_in_flight(
    runner: ConsumerRunner,
    database: Database,
    mailbox: MemoryStore,
    notifications_process: NotificationsProcess,
) -> None:
    expected = await cancel_with_holders(runner, database, HOLDERS)
    notifications_process.start()

    async def a_fifth_received() -> bool:
        return len(mailbox.messages) >= HOLDERS // 5

    await wait_until(a_fifth_received, timeout=120, message="the first thousand messages")
    notifications_process.kill()
    at_kill = len(mailbox.messages)
    left = await statuses(database)
    mid_stream = f"the kill came mid-stream: {at_kill} received, {dict(left)} in the database"
    assert at_kill < HOLDERS, mid_stream
    assert left["pending"] + left["sending"] > 0, mid_stream

    notifications_process.start()

    async def all_recorded() -> bool:
        return (await statuses(database))["sent"] == HOLDERS

    await wait_until(all_recorded, timeout=240, message="every message sent after the restart")
    copies = copies_by_recipient(mailbox)
    assert set(copies) == set(expected), "every holder received their message"
    assert all(len(ids) == 1 for ids in copies.values()), "one message (one Message-ID) each"
    duplicated = {address: sum(ids.values()) for address, ids in copies.items()}
    extra = sum(count - 1 for count in duplicated.values())
    assert extra <= UNRECORDED, (
        f"{extra} copies: more than the {UNRECORDED} messages that can be unrecorded at a kill"
    )
    print(f"received at kill {at_kill}, copies after restart {extra} (at most {UNRECORDED})")


async def test_a_crash_between_acceptance_and_record_resends_that_one_message_only(
    runner: ConsumerRunner,
    database: Database,
    mailbox: MemoryStore,
    notifications_process: NotificationsProcess,
) -> None:
    expected = await cancel_with_holders(runner, database, 200)
    notifications_process.start(crash_at="notifications.accepted-not-recorded")
    assert await notifications_process.wait_dead(timeout=60) == -signal.SIGKILL
    log = notifications_process.log.read_text(errors="replace")
    assert MARKER.format(name="notifications.accepted-not-recorded") in log
    crashed_with = len(mailbox.messages)
    assert 1 <= crashed_with <= CONCURRENCY, crashed_with

    notifications_process.start()

    async def all_recorded() -> bool:
        return (await statuses(database))["sent"] == 200

    await wait_until(all_recorded, timeout=120, message="every message sent after the restart")
    copies = copies_by_recipient(mailbox)
    assert set(copies) == set(expected)
    assert all(len(ids) == 1 for ids in copies.values()), "a copy carries the same Message-ID"
    assert sum(sum(ids.values()) - 1 for ids in copies.values()) <= CONCURRENCY
