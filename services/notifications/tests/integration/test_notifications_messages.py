"""Messages from their causes to a real SMTP server, each exactly once per person and
cause: redeliveries and dead-letter replays, fan-outs to every holder, reminders that
move with the event, preferences, deleted accounts, template errors and a server that
refuses for a while. Real PostgreSQL, a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, text

from marquee_contracts.auth import (
    EMAIL_VERIFICATION_REQUESTED,
    PASSWORD_CHANGED,
    USER_DELETED,
    EmailVerificationRequested,
    PasswordChanged,
    UserDeleted,
)
from marquee_contracts.booking import (
    ORDER_CLOSED,
    ORDER_CONFIRMED,
    TICKET_CANCELLED,
    TICKET_ISSUED,
    OrderClosed,
    OrderConfirmed,
    TicketCancelled,
    TicketIssued,
)
from marquee_contracts.catalog import EVENT_CANCELLED, EventCancelled
from marquee_notifications.models import Message
from marquee_notifications.sender import Sender
from marquee_notifications.sink import MemoryStore, SmtpSink
from marquee_platform.consumer import ConsumerRunner
from marquee_platform.db import Database
from marquee_platform.outbox import INBOX
from marquee_testing.events import People
from marquee_testing.notifications import (
    apply,
    attachments,
    cloud_event,
    event_snapshot,
    issue_ticket,
    parse,
    publish_snapshot,
    qr_codes,
    register,
    text_body,
)
from marquee_testing.waiting import wait_until

pytestmark = pytest.mark.integration


async def messages(database: Database, **where: Any) -> list[Message]:
    async with database.reading() as session:
        statement = select(Message).order_by(Message.created_at)
        for column, value in where.items():
            statement = statement.where(getattr(Message, column) == value)
        return list((await session.execute(statement)).scalars())


async def people_with_addresses(runner: ConsumerRunner, count: int) -> list[tuple[str, str]]:
    found = []
    for _ in range(count):
        user_id = str(uuid.uuid4())
        address = f"fan-{user_id[:8]}@example.org"
        await register(runner, user_id, address)
        found.append((user_id, address))
    return found


async def test_a_verification_link_is_mailed_once_whatever_is_redelivered(
    runner: ConsumerRunner, database: Database, senders: dict[str, Sender], mailbox: MemoryStore
) -> None:
    [(user_id, address)] = await people_with_addresses(runner, 1)
    requested = cloud_event(
        EMAIL_VERIFICATION_REQUESTED.name,
        EmailVerificationRequested(
            user_id=uuid.UUID(user_id),
            email=address,
            token="tok_verify_abc123",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        ),
    )
    assert await runner.apply(requested, topic=EMAIL_VERIFICATION_REQUESTED.name)
    assert not await runner.apply(requested, topic=EMAIL_VERIFICATION_REQUESTED.name)
    # A replay from the dead-letter topic after the inbox forgot the event (its retention):
    async with database.transaction() as session:
        await session.execute(delete(INBOX).where(INBOX.c.event_id == requested.id))
    assert await runner.apply(requested, topic=EMAIL_VERIFICATION_REQUESTED.name)

    assert await senders["direct"].drain() == 1
    assert await senders["direct"].drain() == 0
    [mail] = mailbox.to(address)
    assert "http://marquee.test/verify-email?token=tok_verify_abc123" in text_body(parse(mail.raw))
    [row] = await messages(database, kind="verify-email")
    assert row.status == "sent"
    assert mail.message_id == row.message_id_header
    assert "tok_verify_abc123" not in str(row.context), "the link's credential is not kept"


async def test_an_event_edit_reaches_every_holder_once_and_says_what_changed(
    runner: ConsumerRunner, database: Database, senders: dict[str, Sender], mailbox: MemoryStore
) -> None:
    (a, a_mail), (b, b_mail), (c, _) = await people_with_addresses(runner, 3)
    starts = datetime(2027, 3, 14, 19, 0, tzinfo=UTC)  # 20:00 in Paris
    snapshot = event_snapshot(starts_at=starts, version=1)
    await publish_snapshot(runner, snapshot)
    await issue_ticket(runner, event_id=snapshot.event_id, user_id=a)
    await issue_ticket(runner, event_id=snapshot.event_id, user_id=a)
    await issue_ticket(runner, event_id=snapshot.event_id, user_id=b)
    refunded = await issue_ticket(runner, event_id=snapshot.event_id, user_id=c)
    await apply(
        runner,
        TICKET_CANCELLED.name,
        TicketCancelled(
            ticket_id=refunded.ticket_id,
            order_id=refunded.order_id,
            event_id=snapshot.event_id,
            seat_id=None,
            ticket_type_id=uuid.uuid4(),
            reason="refunded",
            cancelled_at=datetime.now(UTC),
        ),
    )

    moved = snapshot.model_copy(update={"version": 2, "starts_at": starts + timedelta(hours=1)})
    await publish_snapshot(runner, moved)
    await publish_snapshot(runner, moved)  # the same snapshot again, as a new event: ignored
    await publish_snapshot(runner, snapshot)  # an older one, late: ignored

    await senders["bulk"].drain()
    assert sorted(mailbox.count_by_recipient().items()) == sorted({a_mail: 1, b_mail: 1}.items())
    body = text_body(parse(mailbox.to(a_mail)[0].raw))
    # 20:00 and 21:00 in Paris, in the recipient's (default English) locale:
    assert re.search(r"\b8:00\sPM", body), body
    assert re.search(r"\b9:00\sPM", body), body
    assert len(await messages(database, kind="event-changed")) == 2


async def test_a_cancellation_reaches_every_holder_once_and_drops_their_reminders(
    runner: ConsumerRunner, database: Database, senders: dict[str, Sender], mailbox: MemoryStore
) -> None:
    holders = await people_with_addresses(runner, 5)
    snapshot = event_snapshot(version=1)
    await publish_snapshot(runner, snapshot)
    for user_id, _ in holders:
        await issue_ticket(runner, event_id=snapshot.event_id, user_id=user_id)
    assert len(await messages(database, kind="event-reminder", status="pending")) == 5

    cancelled = cloud_event(
        EVENT_CANCELLED.name,
        EventCancelled(
            event_id=snapshot.event_id,
            version=2,
            organizer_id="organizer-1",
            name=snapshot.name,
            starts_at=snapshot.starts_at,
            ends_at=snapshot.ends_at,
            venue_id=snapshot.venue.id,
            previous_status="on_sale",
            reason="The band split up",
            cancelled_at=datetime.now(UTC),
        ),
    )
    await runner.apply(cancelled, topic=EVENT_CANCELLED.name)
    async with database.transaction() as session:  # a dead-letter replay, inbox pruned
        await session.execute(delete(INBOX).where(INBOX.c.event_id == cancelled.id))
    await runner.apply(cancelled, topic=EVENT_CANCELLED.name)

    await senders["bulk"].drain()
    assert mailbox.count_by_recipient() == Counter({address: 1 for _, address in holders})
    assert "The band split up" in text_body(parse(mailbox.messages[0].raw))
    reminders = await messages(database, kind="event-reminder")
    assert {row.status for row in reminders} == {"skipped"}


async def test_reminders_move_with_the_event_and_respect_unsubscribing(
    runner: ConsumerRunner,
    database: Database,
    senders: dict[str, Sender],
    mailbox: MemoryStore,
    client: httpx.AsyncClient,
    app: FastAPI,
    clock: Any,
) -> None:
    (a, a_mail), (b, _) = await people_with_addresses(runner, 2)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    snapshot = event_snapshot(starts_at=starts, version=1)
    await publish_snapshot(runner, snapshot)
    for user_id in (a, b):
        await issue_ticket(runner, event_id=snapshot.event_id, user_id=user_id)
    [first, _] = await messages(database, kind="event-reminder", status="pending")
    assert first.next_attempt_at == starts - timedelta(hours=24)

    later = starts + timedelta(days=1)
    await publish_snapshot(runner, snapshot.model_copy(update={"version": 2, "starts_at": later}))
    pending = await messages(database, kind="event-reminder", status="pending")
    assert [row.next_attempt_at for row in pending] == [later - timedelta(hours=24)] * 2
    assert len(await messages(database, kind="event-reminder", status="skipped")) == 2

    # b unsubscribes with the signed link a reminder carries (RFC 8058 one-click POST).
    link = app.state.unsubscribe_links.url(b, "reminders")
    path = link.removeprefix("http://marquee.test")
    assert (await client.get(path)).status_code == 200  # a page, not an unsubscribe
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert (await client.post(forged, content="List-Unsubscribe=One-Click")).status_code == 422
    done = await client.post(path, content="List-Unsubscribe=One-Click")
    assert done.status_code == 200, done.text

    def reminders() -> list[Any]:
        return [m for m in mailbox.messages if parse(m.raw)["X-Marquee-Kind"] == "event-reminder"]

    await senders["bulk"].drain()  # (the move itself is news to both: event-changed)
    assert reminders() == [], "no reminder is due before its time"
    clock.advance(later - timedelta(hours=23) - datetime.now(UTC))
    await senders["bulk"].drain()
    [reminder] = reminders()
    assert reminder.rcpt_to == (a_mail,)
    sent = parse(reminder.raw)
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent["List-Unsubscribe"].startswith("<http://marquee.test/api/v1/notifications/")
    [skipped] = [
        row
        for row in await messages(database, kind="event-reminder")
        if row.user_id == b
        and row.status == "skipped"
        and "reminders off" in (row.last_error or "")
    ]
    assert skipped.sent_at is None


async def test_a_deleted_account_gets_its_goodbye_and_nothing_else(
    runner: ConsumerRunner, database: Database, senders: dict[str, Sender], mailbox: MemoryStore
) -> None:
    [(user_id, address)] = await people_with_addresses(runner, 1)
    snapshot = event_snapshot()
    await publish_snapshot(runner, snapshot)
    await apply(
        runner,
        PASSWORD_CHANGED.name,
        PasswordChanged(user_id=uuid.UUID(user_id), changed_at=datetime.now(UTC), reason="changed"),
    )
    await apply(runner, USER_DELETED.name, UserDeleted(user_id=uuid.UUID(user_id)))
    # Something about the account after its deletion (a late order expiry):
    await apply(
        runner,
        ORDER_CLOSED.name,
        OrderClosed(
            order_id=uuid.uuid4(),
            hold_id="h",
            event_id=snapshot.event_id,
            user_id=user_id,
            reason="expired",
            closed_at=datetime.now(UTC),
        ),
    )
    await senders["direct"].drain()

    [goodbye] = mailbox.messages
    assert goodbye.rcpt_to == (address,)
    assert parse(goodbye.raw)["X-Marquee-Kind"] == "account-deleted"
    by_kind = {row.kind: row for row in await messages(database)}
    assert by_kind["password-changed"].status == "skipped"
    assert by_kind["order-expired"].status == "skipped"
    assert by_kind["order-expired"].last_error == "the account was deleted"
    async with database.reading() as session:
        kept = await session.execute(
            text("SELECT count(*) FROM messages WHERE to_address = :a OR context::text LIKE :l"),
            {"a": address, "l": f"%{address}%"},
        )
        assert kept.scalar_one() == 0, "no message keeps the deleted account's address"


async def test_a_template_error_fails_one_message_and_the_rest_go(
    runner: ConsumerRunner, database: Database, senders: dict[str, Sender], mailbox: MemoryStore
) -> None:
    holders = await people_with_addresses(runner, 3)
    snapshot = event_snapshot()
    await publish_snapshot(runner, snapshot)
    for user_id, _ in holders:
        await apply(
            runner,
            ORDER_CLOSED.name,
            OrderClosed(
                order_id=uuid.uuid4(),
                hold_id="h",
                event_id=snapshot.event_id,
                user_id=user_id,
                reason="expired",
                closed_at=datetime.now(UTC),
            ),
        )
    broken = holders[1][0]
    async with database.transaction() as session:  # a context its template cannot render
        await session.execute(
            text("UPDATE messages SET context = context - 'event' WHERE user_id = :u"),
            {"u": broken},
        )
    # ... and an event notifications never heard of: recorded as skipped, not retried.
    await apply(
        runner,
        ORDER_CLOSED.name,
        OrderClosed(
            order_id=uuid.uuid4(),
            hold_id="h",
            event_id=uuid.uuid4(),
            user_id=holders[0][0],
            reason="payment-failed",
            closed_at=datetime.now(UTC),
        ),
    )
    await senders["direct"].drain()

    assert sorted(mailbox.count_by_recipient()) == sorted(
        [address for user_id, address in holders if user_id != broken]
    )
    [failed] = await messages(database, status="failed")
    assert failed.user_id == broken
    assert (failed.last_error or "").startswith("template:")
    assert "event" in (failed.last_error or "")
    [unknown] = await messages(database, kind="payment-failed")
    assert unknown.status == "skipped"
    assert "unknown" in (unknown.last_error or "")


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.node.name.startswith("test_a_server_refusing"):
        return {"max_attempts": 100, "retry_base_seconds": 0.5, "retry_max_seconds": 2.0}
    return {}


async def test_a_server_refusing_for_30_seconds_delays_messages_and_loses_none(
    runner: ConsumerRunner,
    database: Database,
    senders: dict[str, Sender],
    mailbox: MemoryStore,
    sink: SmtpSink,
) -> None:
    people = await people_with_addresses(runner, 20)
    sink.refuse(seconds=30, code=451)
    refused_from = time.monotonic()
    for user_id, _ in people:
        await apply(
            runner,
            PASSWORD_CHANGED.name,
            PasswordChanged(
                user_id=uuid.UUID(user_id), changed_at=datetime.now(UTC), reason="changed"
            ),
        )

    async def all_received() -> bool:
        await senders["direct"].drain(max_seconds=1)  # one sender round, as the app runs it
        return len(mailbox.messages) >= len(people)

    await wait_until(
        all_received, timeout=90, message="the messages to go after the window", interval=0.1
    )
    assert time.monotonic() - refused_from >= 30, "they went while the server refused"
    assert sink.refused > 0
    assert mailbox.count_by_recipient() == Counter({address: 1 for _, address in people})
    rows = await messages(database, kind="password-changed")
    assert {row.status for row in rows} == {"sent"}
    assert min(row.attempts for row in rows) > 1


async def test_failed_messages_are_listed_for_admins_who_may_retry_them(
    runner: ConsumerRunner,
    database: Database,
    senders: dict[str, Sender],
    mailbox: MemoryStore,
    client: httpx.AsyncClient,
    people: People,
) -> None:
    [(user_id, address)] = await people_with_addresses(runner, 1)
    await apply(
        runner,
        PASSWORD_CHANGED.name,
        PasswordChanged(user_id=uuid.UUID(user_id), changed_at=datetime.now(UTC), reason="reset"),
    )
    async with database.transaction() as session:
        await session.execute(text("UPDATE messages SET status = 'failed', last_error = 'x'"))
    listed = await client.get(
        "/api/v1/notifications/admin/messages?status=failed", headers=people.admin()
    )
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["to_address"] is None
    assert item["user_id"] == user_id
    refused = await client.get(
        "/api/v1/notifications/admin/messages", headers=people.customer(user_id)
    )
    assert refused.status_code == 403
    retried = await client.post(
        f"/api/v1/notifications/admin/messages/{item['id']}/retry", headers=people.admin()
    )
    assert retried.status_code == 200, retried.text
    again = await client.post(
        f"/api/v1/notifications/admin/messages/{item['id']}/retry", headers=people.admin()
    )
    assert again.status_code == 409
    await senders["direct"].drain()
    assert [mail.rcpt_to for mail in mailbox.messages] == [(address,)]


async def test_a_confirmation_that_arrives_before_its_tickets_waits_for_them(
    runner: ConsumerRunner, database: Database, senders: dict[str, Sender], mailbox: MemoryStore
) -> None:
    """booking.order-confirmed and booking.ticket-issued are two topics: no order between
    them. The confirmation is held back (retried) until its tickets are known."""
    [(user_id, address)] = await people_with_addresses(runner, 1)
    snapshot = event_snapshot()
    await publish_snapshot(runner, snapshot)
    order_id, ticket_id = uuid.uuid4(), uuid.uuid4()
    await apply(
        runner,
        ORDER_CONFIRMED.name,
        OrderConfirmed(
            order_id=order_id,
            event_id=snapshot.event_id,
            user_id=user_id,
            ticket_ids=[ticket_id],
            total_minor=4500,
            currency="EUR",
            confirmed_at=datetime.now(UTC),
        ),
    )
    await senders["direct"].drain()
    assert mailbox.messages == []
    [waiting] = await messages(database, kind="order-confirmation")
    assert waiting.status == "pending"
    assert "tickets not seen yet" in (waiting.last_error or "")

    await apply(
        runner,
        TICKET_ISSUED.name,
        TicketIssued(
            ticket_id=ticket_id,
            order_id=order_id,
            event_id=snapshot.event_id,
            user_id=user_id,
            issued_at=datetime.now(UTC),
            barcode="MQ:TESTBARCODE0123456789",
        ),
    )

    async def sent() -> bool:
        await senders["direct"].drain()
        return len(mailbox.messages) == 1

    await wait_until(sent, timeout=30, message="the confirmation once its ticket is known")
    [mail] = mailbox.to(address)
    assert qr_codes(attachments(parse(mail.raw))["tickets.pdf"]) == ["MQ:TESTBARCODE0123456789"]
