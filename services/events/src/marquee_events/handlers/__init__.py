"""One async function per command or consumed event. Dependencies are keyword-only; the
transaction belongs to the caller (the request or the consumed message), never to these.

Every change to an event bumps its ``version`` and writes its full snapshot to
``events.event-changed.v1`` through the outbox, in the same transaction; the event row is
locked first (``SELECT … FOR UPDATE``, by :func:`event_to_manage`), so versions and
snapshots of one event are produced in order.

One module per part of the service; this package offers them all, so callers write
``from marquee_events import handlers`` and ``handlers.create_event(...)``. Turning rows
into messages is :mod:`marquee_events.messages`'s job.
"""

from __future__ import annotations

from marquee_events.handlers.consumed import forget_user, record_ticket_holder
from marquee_events.handlers.events import (
    change_status,
    create_event,
    delete_event,
    event_to_manage,
    status_change_action,
    update_event,
    visible_event,
)
from marquee_events.handlers.reviews import post_review, reply_to_review
from marquee_events.handlers.ticket_types import (
    TicketTypeOfEvent,
    add_ticket_type,
    delete_ticket_type,
    ticket_type_to_manage,
    update_ticket_type,
)
from marquee_events.handlers.venues import create_venue, update_venue, venue_to_manage

__all__ = [
    "TicketTypeOfEvent",
    "add_ticket_type",
    "change_status",
    "create_event",
    "create_venue",
    "delete_event",
    "delete_ticket_type",
    "event_to_manage",
    "forget_user",
    "post_review",
    "record_ticket_holder",
    "reply_to_review",
    "status_change_action",
    "ticket_type_to_manage",
    "update_event",
    "update_ticket_type",
    "update_venue",
    "venue_to_manage",
    "visible_event",
]
