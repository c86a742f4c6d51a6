"""Reviews: ticket holders rate an event once it has ended; its organizer replies once."""

from __future__ import annotations

from datetime import datetime

from marquee_events.domain.lifecycle import EventStatus
from marquee_events.domain.problems import Problem, invalid, is_blank
from marquee_platform.errors import Conflict, PermissionDenied

MAX_REVIEW_LENGTH = 2_000


def check_review_allowed(
    *, status: EventStatus, ends_at: datetime, now: datetime, is_holder: bool
) -> None:
    """Ticket holders review an event once it has ended (and was not cancelled)."""
    if not is_holder:
        raise PermissionDenied(
            "You can't review this event: only people who held a ticket to it can.",
            code="not-a-ticket-holder",
            action="review event",
        )
    if status is EventStatus.CANCELLED:
        raise Conflict("The event was cancelled; it can't be reviewed.", code="event-cancelled")
    if now < ends_at:
        raise Conflict(
            f"Reviews open when the event ends, at {ends_at.isoformat()}; come back then.",
            code="event-not-ended",
            opens_at=ends_at.isoformat(),
        )


def validate_review(rating: int, comment: str) -> str:
    problems: list[Problem] = []
    if not 1 <= rating <= 5:
        problems.append(Problem("rating", f"{rating} is not a rating from 1 to 5"))
    if len(comment) > MAX_REVIEW_LENGTH:
        problems.append(
            Problem("comment", f"is {len(comment)} characters; at most {MAX_REVIEW_LENGTH}")
        )
    if problems:
        raise invalid(problems, what="review")
    return comment.strip()


def validate_reply(reply: str) -> str:
    if is_blank(reply) or len(reply) > MAX_REVIEW_LENGTH:
        raise invalid(
            [Problem("reply", f"a reply is 1 to {MAX_REVIEW_LENGTH} characters")],
            what="reply",
        )
    return reply.strip()
