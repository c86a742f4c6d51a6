"""A purchase, an edit and a cancellation through the real saga (inventory, booking and
payments apps, their consumers and the simulated provider's signed webhooks) with
notifications consuming every message they publish, to a real SMTP server: one
confirmation per order whose PDF's QR codes decode to the issued barcodes and whose
``.ics`` parses in the event's time zone; an edit and a cancellation reach every holder
once, and so does the refund that follows."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import icalendar
import pytest

from marquee_contracts import CloudEvent
from marquee_contracts.catalog import EVENT_CHANGED
from marquee_notifications.sender import Sender
from marquee_notifications.sink import MemoryStore
from marquee_platform.consumer import ConsumerRunner
from marquee_testing.fixtures import TokenIssuer
from marquee_testing.inventory import changed_snapshot, published_event
from marquee_testing.notifications import (
    attachments,
    cloud_event,
    parse,
    qr_codes,
    register,
    text_body,
)
from marquee_testing.saga import Saga

pytestmark = pytest.mark.integration


def with_notifications(saga: Saga, runner: ConsumerRunner) -> list[tuple[str, CloudEvent]]:
    """Every message the saga carries also goes to notifications; returns the log."""
    carried: list[tuple[str, CloudEvent]] = []
    deliver = saga.deliver

    async def deliver_too(topic: str, event: CloudEvent) -> int:
        applied = await deliver(topic, event)
        if topic in runner.handlers:
            await runner.apply(event, topic=topic)
            carried.append((topic, event))
        return applied

    saga.deliver = deliver_too  # type: ignore[method-assign]
    return carried


async def buy(saga: Saga, event_id: uuid.UUID, headers: dict[str, str], seats: list[str]) -> str:
    held = await saga.inventory.client.post(
        f"/api/v1/inventory/events/{event_id}/holds",
        json={"seats": [{"seat_id": seat} for seat in seats]},
        headers=headers,
    )
    assert held.status_code == 201, held.text
    placed = await saga.booking.client.post(
        "/api/v1/orders",
        json={"event_id": str(event_id), "hold_id": held.json()["hold_id"]},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert placed.status_code == 201, placed.text
    order_id: str = placed.json()["order_id"]
    started = await saga.payments.client.post(
        "/api/v1/payments", json={"order_id": order_id}, headers=headers
    )
    assert started.status_code == 201, started.text
    payment = started.json()
    confirmed = await saga.payments.client.post(
        f"/api/v1/payments/simulator/intents/{payment['provider_payment_id']}/confirm",
        json={"client_secret": payment["client_secret"], "outcome": "succeed"},
    )
    assert confirmed.status_code == 200, confirmed.text
    await saga.pump()
    return order_id


async def test_purchase_edit_and_cancellation_mail_every_holder_once(
    saga: Saga,
    runner: ConsumerRunner,
    senders: dict[str, Sender],
    mailbox: MemoryStore,
    token_issuer: TokenIssuer,
) -> None:
    carried = with_notifications(saga, runner)
    event = published_event(rows=1, seats_per_row=4)
    await saga.publish(event.message)
    version = event.message.version
    snapshot = changed_snapshot(event, version=version)
    await runner.apply(cloud_event(EVENT_CHANGED.name, snapshot), topic=EVENT_CHANGED.name)
    seats = [seat.id for seat in event.message.seating.sections[0].rows[0].seats]  # type: ignore[union-attr]

    fans: dict[str, tuple[str, dict[str, str]]] = {}
    for name in ("ada", "bo"):
        user_id = str(uuid.uuid4())
        fans[name] = (user_id, token_issuer.headers(user_id, ("customer",)))
        await register(runner, user_id, f"{name}-{user_id[:6]}@example.org")
    ada, bo = fans["ada"], fans["bo"]
    ada_mail, bo_mail = (f"{n}-{fans[n][0][:6]}@example.org" for n in ("ada", "bo"))

    ada_order = await buy(saga, event.event_id, ada[1], seats[:2])
    await buy(saga, event.event_id, bo[1], seats[2:3])
    await senders["direct"].drain()

    confirmations = [
        m for m in mailbox.messages if parse(m.raw)["X-Marquee-Kind"] == "order-confirmation"
    ]
    assert Counter(m.rcpt_to[0] for m in confirmations) == Counter({ada_mail: 1, bo_mail: 1})
    confirmation = parse(next(m for m in confirmations if m.rcpt_to == (ada_mail,)).raw)
    files = attachments(confirmation)
    tickets = await saga.booking.client.get(f"/api/v1/orders/{ada_order}/tickets", headers=ada[1])
    assert tickets.status_code == 200, tickets.text
    issued = sorted(ticket["barcode"] for ticket in tickets.json())
    assert len(issued) == 2
    assert sorted(qr_codes(files["tickets.pdf"])) == issued
    calendar = icalendar.Calendar.from_ical(files["event.ics"])
    [vevent] = calendar.walk("VEVENT")
    start = vevent.decoded("DTSTART")
    assert str(start.tzinfo) == event.message.time_zone
    assert start == event.message.starts_at.replace(microsecond=0)  # iCalendar: seconds
    assert calendar.walk("VTIMEZONE"), "the calendar entry carries its time zone"

    # Everything carried so far, delivered again: nobody hears twice.
    for topic, envelope in list(carried):
        await runner.apply(envelope, topic=topic)
    await senders["direct"].drain()
    assert len(mailbox.messages) == 2

    # The organizer moves the event an hour later: every holder once (ada holds two).
    moved = changed_snapshot(
        event, version=version + 1, starts_at=event.message.starts_at + timedelta(hours=1)
    )
    await runner.apply(cloud_event(EVENT_CHANGED.name, moved), topic=EVENT_CHANGED.name)
    await senders["bulk"].drain()
    changed = [parse(m.raw) for m in mailbox.messages[2:]]
    assert Counter(m["To"] for m in changed) == Counter({ada_mail: 1, bo_mail: 1})
    assert {m["X-Marquee-Kind"] for m in changed} == {"event-changed"}

    # ... then cancels it: every holder once, then their refunds once each.
    await saga.cancel_event(event, version=version + 2)
    await saga.pump()
    await senders["bulk"].drain()
    await senders["direct"].drain()
    later = [parse(m.raw) for m in mailbox.messages[4:]]
    kinds: Counter[tuple[str, str]] = Counter((m["To"], m["X-Marquee-Kind"]) for m in later)
    assert kinds == Counter(
        {
            (ada_mail, "event-cancelled"): 1,
            (bo_mail, "event-cancelled"): 1,
            (ada_mail, "refund-issued"): 1,
            (bo_mail, "refund-issued"): 1,
        }
    ), kinds
    refund = next(m for m in later if m["X-Marquee-Kind"] == "refund-issued" and m["To"] == bo_mail)
    assert "50.00" in text_body(refund)
