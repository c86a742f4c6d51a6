"""Tickets after the sale: check-in at the door (online and uploaded offline scans) and
transfer to another account.

A scan is decided in this order, each answer a fact the door staff can act on:

1. not one of our barcodes at all → 422 ``malformed-barcode`` (nothing recorded: it was
   not a ticket, maybe the wrong QR code);
2. a barcode of another event → ``other_event``;
3. the signature does not verify with this event's key → ``forged``;
4. the ticket was refunded or transferred (revoked, or an older version) → ``revoked``;
5. the first accepted scan of the ticket → ``valid``; any later one → ``already_used``
   with when and at which gate it was let in.

Every scan is recorded, whatever its answer. The partial unique index ``first_scan_wins``
keeps one accepted scan per ticket whatever the concurrency; an uploaded offline scan
that happened *before* the accepted one takes its place (the first scan wins) and both
are reported as a conflict — two people got in on one ticket, and nobody loses that fact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from marquee_booking import barcodes
from marquee_booking.domain import TicketNotFound, TransferRefused
from marquee_booking.handlers import new_ticket
from marquee_booking.models import BookingEvent, CheckIn, Ticket
from marquee_booking.repository import (
    CheckInRepository,
    EventRepository,
    OrderRepository,
    PeopleRepository,
    TicketRepository,
)
from marquee_booking.schemas import CheckInRead
from marquee_contracts.booking import (
    TICKET_ISSUED,
    TICKET_TRANSFERRED,
    TicketIssued,
    TicketTransferred,
)
from marquee_platform.clock import Clock
from marquee_platform.errors import InvalidInput
from marquee_platform.outbox import Outbox


@dataclass(frozen=True, slots=True)
class Scan:
    barcode: str
    gate: str | None
    scanned_at: datetime
    scanned_by: str
    device_id: str | None = None
    scan_id: str | None = None


class MalformedBarcodeInput(InvalidInput):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"{detail} Scan the ticket's own QR code, or type the code printed under it.",
            code="malformed-barcode",
        )


async def check_in(
    event: BookingEvent,
    scan: Scan,
    *,
    tickets: TicketRepository,
    checkins: CheckInRepository,
    clock: Clock,
) -> CheckInRead:
    try:
        claims = barcodes.read_barcode(scan.barcode)
    except barcodes.BarcodeError as error:
        raise MalformedBarcodeInput(str(error)) from error

    def recorded(result: str, ticket_id: uuid.UUID | None) -> CheckIn:
        return CheckIn(
            id=uuid.uuid4(),
            event_id=event.event_id,
            ticket_id=ticket_id,
            result=result,
            gate=scan.gate,
            device_id=scan.device_id,
            scan_id=scan.scan_id,
            scanned_at=scan.scanned_at,
            recorded_at=clock(),
            scanned_by=scan.scanned_by,
        )

    if claims.event_id != event.event_id:
        await checkins.record(recorded("other_event", None))
        return CheckInRead(
            result="other_event",
            ticket_id=None,
            detail=f"This ticket is for another event, not {event.name}.",
            scan_id=scan.scan_id,
        )
    try:
        barcodes.verify_barcode(scan.barcode, event.public_key)
    except barcodes.BarcodeError:
        await checkins.record(recorded("forged", None))
        return CheckInRead(
            result="forged",
            ticket_id=None,
            detail="The barcode's signature is not this event's: the ticket is forged.",
            scan_id=scan.scan_id,
        )
    ticket = await tickets.get(claims.ticket_id, for_update=True)
    if ticket is None or ticket.event_id != event.event_id:
        await checkins.record(recorded("forged", None))
        return CheckInRead(
            result="forged",
            ticket_id=None,
            detail="No such ticket was ever issued for this event.",
            scan_id=scan.scan_id,
        )
    if ticket.status != "valid" or ticket.version != claims.version:
        await checkins.record(recorded("revoked", ticket.id))
        why = ticket.revoked_reason or "reissued"
        return CheckInRead(
            result="revoked",
            ticket_id=ticket.id,
            seat_id=ticket.seat_id,
            ticket_type_id=ticket.ticket_type_id,
            detail=f"This ticket was {why}: it no longer admits anyone.",
            scan_id=scan.scan_id,
        )
    accepted = await checkins.accepted(ticket.id)
    if accepted is not None and scan.scanned_at < accepted.scanned_at:
        # An offline scan from before the accepted one: the first scan wins.
        accepted.result = "already_used"
        await checkins.session.flush()
        first = accepted
        accepted = None
    else:
        first = None
    if accepted is None and await checkins.record(recorded("valid", ticket.id)):
        return CheckInRead(
            result="valid",
            ticket_id=ticket.id,
            seat_id=ticket.seat_id,
            ticket_type_id=ticket.ticket_type_id,
            detail="Welcome in." if first is None else "Welcome in (scanned offline first).",
            first_scan=None,
            scan_id=scan.scan_id,
        )
    accepted = await checkins.accepted(ticket.id)
    assert accepted is not None
    await checkins.record(recorded("already_used", ticket.id))
    return CheckInRead(
        result="already_used",
        ticket_id=ticket.id,
        seat_id=ticket.seat_id,
        ticket_type_id=ticket.ticket_type_id,
        detail=f"Already let in at {accepted.scanned_at.isoformat()}"
        + (f" at gate {accepted.gate}." if accepted.gate else "."),
        first_scan=CheckInRead.first_scan_of(accepted),
        scan_id=scan.scan_id,
    )


async def upload_offline_scans(
    event: BookingEvent,
    scans: list[Scan],
    *,
    tickets: TicketRepository,
    checkins: CheckInRepository,
    clock: Clock,
) -> list[CheckInRead]:
    """Apply a device's offline scans in the order they happened. A scan uploaded before
    (same device and scan id) answers what it answered then, without a second record."""
    results = []
    for scan in sorted(scans, key=lambda scan: scan.scanned_at):
        assert scan.device_id is not None
        assert scan.scan_id is not None
        seen = await checkins.by_scan(event.event_id, scan.device_id, scan.scan_id)
        if seen is not None:
            results.append(
                CheckInRead(
                    result=seen.result,
                    ticket_id=seen.ticket_id,
                    detail="This scan was uploaded before.",
                    scan_id=scan.scan_id,
                )
            )
            continue
        try:
            results.append(
                await check_in(event, scan, tickets=tickets, checkins=checkins, clock=clock)
            )
        except MalformedBarcodeInput as error:
            await checkins.record(
                CheckIn(
                    id=uuid.uuid4(),
                    event_id=event.event_id,
                    ticket_id=None,
                    result="forged",
                    gate=scan.gate,
                    device_id=scan.device_id,
                    scan_id=scan.scan_id,
                    scanned_at=scan.scanned_at,
                    recorded_at=clock(),
                    scanned_by=scan.scanned_by,
                )
            )
            results.append(
                CheckInRead(
                    result="forged", ticket_id=None, detail=error.detail, scan_id=scan.scan_id
                )
            )
    return results


async def transfer_ticket(
    ticket: Ticket,
    *,
    to_email: str,
    people: PeopleRepository,
    events: EventRepository,
    orders: OrderRepository,
    tickets: TicketRepository,
    checkins: CheckInRepository,
    outbox: Outbox,
    clock: Clock,
) -> Ticket:
    """Give a live ticket to another account: its barcode is revoked and the recipient
    gets a new ticket (version + 1) for the same place, which stays sold."""
    if ticket.status != "valid":
        raise TransferRefused(
            f"This ticket was {ticket.revoked_reason}: it cannot be given away.",
            code="ticket-not-transferable",
        )
    if await checkins.accepted(ticket.id) is not None:
        raise TransferRefused(
            "This ticket has been used at the door: it cannot be given away.",
            code="ticket-already-used",
        )
    recipient = await people.by_email(to_email)
    if recipient is None:
        raise TransferRefused(
            f"There is no Marquee account for {to_email.strip().lower()}: ask them to sign up "
            "with that address, then transfer again.",
            code="unknown-recipient",
        )
    if recipient.user_id == ticket.holder_id:
        raise TransferRefused("You hold this ticket already.", code="transfer-to-self")
    event = await events.get(ticket.event_id)
    order = await orders.get(ticket.order_id)
    if event is None or order is None:
        raise TicketNotFound(ticket.id)
    now = clock()
    if now >= event.ends_at:
        raise TransferRefused(
            "The event is over: its tickets cannot change hands.", code="event-over"
        )
    ticket.status = "revoked"
    ticket.revoked_reason = "transferred"
    ticket.revoked_at = now
    await tickets.session.flush()
    line = next(line for line in await orders.lines(order.id) if line.id == ticket.order_line_id)
    replacement = new_ticket(
        order,
        line,
        holder_id=recipient.user_id,
        version=ticket.version + 1,
        event=event,
        now=now,
        replaces=ticket.id,
    )
    tickets.add(replacement)
    await tickets.session.flush()
    await outbox.add(
        TICKET_TRANSFERRED.name,
        TicketTransferred(
            old_ticket_id=ticket.id,
            new_ticket_id=replacement.id,
            order_id=order.id,
            event_id=order.event_id,
            from_user_id=ticket.holder_id,
            to_user_id=recipient.user_id,
            transferred_at=now,
        ),
        key=order.id,
    )
    await outbox.add(
        TICKET_ISSUED.name,
        TicketIssued(
            ticket_id=replacement.id,
            order_id=order.id,
            event_id=order.event_id,
            user_id=recipient.user_id,
            issued_at=now,
            seat_id=replacement.seat_id,
            ticket_type_id=replacement.ticket_type_id,
            version=replacement.version,
            replaces_ticket_id=ticket.id,
            barcode=replacement.barcode,
        ),
        key=order.id,
    )
    return replacement
