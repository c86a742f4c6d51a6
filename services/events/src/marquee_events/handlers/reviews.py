"""Reviews: a ticket holder's one review of an event that has ended, and its organizer's
one reply."""

from __future__ import annotations

import uuid

from marquee_contracts.catalog import REVIEW_POSTED, REVIEW_REPLIED
from marquee_events.domain import (
    PUBLIC_STATUSES,
    Actor,
    EventStatus,
    PostReview,
    authorize_management,
    check_review_allowed,
    validate_reply,
    validate_review,
)
from marquee_events.messages import review_posted_message, review_replied_message
from marquee_events.models import Review
from marquee_events.repository import (
    EventRepository,
    ReviewRepository,
    TicketHolderRepository,
    event_not_found,
)
from marquee_platform.clock import Clock
from marquee_platform.errors import Conflict
from marquee_platform.outbox import Outbox


async def post_review(
    event_id: uuid.UUID,
    command: PostReview,
    *,
    actor: Actor,
    events: EventRepository,
    reviews: ReviewRepository,
    holders: TicketHolderRepository,
    outbox: Outbox,
    clock: Clock,
) -> Review:
    """A ticket holder's one review of an event that has ended."""
    event = await events.get(event_id)
    status = EventStatus(event.status)
    if status not in PUBLIC_STATUSES:
        raise event_not_found(event_id)
    now = clock()
    check_review_allowed(
        status=status,
        ends_at=event.ends_at,
        now=now,
        is_holder=await holders.is_holder(event.id, actor.user_id),
    )
    comment = validate_review(command.rating, command.comment)
    review = await reviews.add_once(
        {
            "id": uuid.uuid4(),
            "event_id": event.id,
            "author_id": actor.user_id,
            "rating": command.rating,
            "comment": comment,
            "created_at": now,
        }
    )
    if review is None:
        earlier = await reviews.by_author(event.id, actor.user_id)
        when = f" on {earlier.created_at.date().isoformat()}" if earlier else ""
        raise Conflict(
            f"You already reviewed '{event.name}'{when}; each ticket holder reviews an event once.",
            code="already-reviewed",
            review_id=str(earlier.id) if earlier else None,
        )
    await outbox.add(REVIEW_POSTED.name, review_posted_message(review, event), key=event.id)
    return review


async def reply_to_review(
    event_id: uuid.UUID,
    review_id: uuid.UUID,
    reply: str,
    *,
    actor: Actor,
    events: EventRepository,
    reviews: ReviewRepository,
    outbox: Outbox,
    clock: Clock,
) -> Review:
    """The organizer's one reply to a review (admins may reply for them)."""
    event = await events.get(event_id)
    authorize_management(
        actor, owner_id=event.organizer_id, action=f"reply to reviews of event '{event.name}'"
    )
    text = validate_reply(reply)
    review = await reviews.get(review_id, event_id=event.id, for_update=True)
    if review.reply is not None:
        assert review.replied_at is not None
        raise Conflict(
            f"This review was already replied to on {review.replied_at.date().isoformat()}; "
            "a review gets one reply.",
            code="already-replied",
        )
    review.reply = text
    review.replied_by = actor.user_id
    review.replied_at = clock()
    await outbox.add(REVIEW_REPLIED.name, review_replied_message(review, event), key=event.id)
    return review
