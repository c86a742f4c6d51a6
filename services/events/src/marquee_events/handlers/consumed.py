"""What this service does with other services' events (see :mod:`marquee_events.consumers`)."""

from __future__ import annotations

from marquee_contracts.auth import UserDeleted
from marquee_contracts.booking import TicketIssued
from marquee_events.repository import ReviewRepository, TicketHolderRepository


async def record_ticket_holder(ticket: TicketIssued, *, holders: TicketHolderRepository) -> None:
    """Remember who holds a ticket to which event (they may review it once it has ended)."""
    await holders.record(
        event_id=ticket.event_id,
        user_id=ticket.user_id,
        ticket_id=ticket.ticket_id,
        issued_at=ticket.issued_at,
    )


async def forget_user(
    deleted: UserDeleted, *, holders: TicketHolderRepository, reviews: ReviewRepository
) -> None:
    """A person deleted their account: erase their reviews (rating and words are theirs)
    and that they held tickets. Events and venues an organizer created stay: tickets were
    sold for them; admins manage them from then on."""
    user_id = str(deleted.user_id)
    await holders.forget_user(user_id)
    await reviews.delete_by_author(user_id)
