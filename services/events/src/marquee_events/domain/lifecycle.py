"""An event's status: draft → published → on sale ⇄ sold out → completed, or cancelled."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from marquee_events.domain.problems import Problem, invalid, is_blank
from marquee_platform.errors import Conflict


class EventStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ON_SALE = "on_sale"
    SOLD_OUT = "sold_out"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


LIFECYCLE_ORDER: tuple[EventStatus, ...] = tuple(EventStatus)
FINAL_STATUSES = frozenset({EventStatus.CANCELLED, EventStatus.COMPLETED})
PUBLIC_STATUSES = frozenset(EventStatus) - {EventStatus.DRAFT}
LIVE_STATUSES = frozenset({EventStatus.PUBLISHED, EventStatus.ON_SALE, EventStatus.SOLD_OUT})
"""Public and not over: listed as upcoming, and they freeze their venue's seating map."""
SELLING_STATUSES = frozenset({EventStatus.ON_SALE, EventStatus.SOLD_OUT})

_TRANSITIONS: Mapping[EventStatus, frozenset[EventStatus]] = {
    EventStatus.DRAFT: frozenset({EventStatus.PUBLISHED, EventStatus.CANCELLED}),
    EventStatus.PUBLISHED: frozenset({EventStatus.ON_SALE, EventStatus.CANCELLED}),
    EventStatus.ON_SALE: frozenset(
        {EventStatus.SOLD_OUT, EventStatus.CANCELLED, EventStatus.COMPLETED}
    ),
    EventStatus.SOLD_OUT: frozenset(
        {EventStatus.ON_SALE, EventStatus.CANCELLED, EventStatus.COMPLETED}
    ),
    EventStatus.CANCELLED: frozenset(),
    EventStatus.COMPLETED: frozenset(),
}
"""The legal moves, ignoring time. Time adds: ``completed`` only once the event has
ended; ``published`` and ``on_sale`` only before it ends."""

_NEED_NOT_ENDED = frozenset({EventStatus.PUBLISHED, EventStatus.ON_SALE})


class IllegalTransition(Conflict):
    code = "illegal-status-transition"
    title = "That status change is not allowed"


def allowed_transitions(
    current: EventStatus, *, now: datetime, ends_at: datetime
) -> tuple[EventStatus, ...]:
    """The statuses ``current`` may move to at ``now``, in lifecycle order."""
    ended = now >= ends_at
    possible = _TRANSITIONS[current]
    return tuple(
        status
        for status in LIFECYCLE_ORDER
        if status in possible
        and not (status is EventStatus.COMPLETED and not ended)
        and not (status in _NEED_NOT_ENDED and ended)
    )


def check_transition(
    current: EventStatus, requested: EventStatus, *, now: datetime, ends_at: datetime
) -> None:
    """Raise :class:`IllegalTransition` (naming current, requested and allowed statuses)
    unless ``current`` may become ``requested`` at ``now``."""
    allowed = allowed_transitions(current, now=now, ends_at=ends_at)
    if requested in allowed:
        return
    if requested == current:
        reason = f"The event is already {current.value}."
    elif current in FINAL_STATUSES:
        reason = f"The event is {current.value}, which is final: no status can follow it."
    elif requested is EventStatus.COMPLETED and requested in _TRANSITIONS[current]:
        reason = (
            f"The event can't be completed before it ends (at {ends_at.isoformat()}); it is "
            f"{current.value}."
        )
    elif requested in _NEED_NOT_ENDED and requested in _TRANSITIONS[current]:
        reason = (
            f"The event ended at {ends_at.isoformat()}; it can't become {requested.value} any more."
        )
    else:
        reason = f"An event that is {current.value} can't become {requested.value}."
    options = ", ".join(status.value for status in allowed) or "nothing"
    raise IllegalTransition(
        f"{reason} From {current.value} it can now become: {options}.",
        current_status=current.value,
        requested_status=requested.value,
        allowed_statuses=[status.value for status in allowed],
    )


class EventNotEditable(Conflict):
    code = "event-not-editable"
    title = "The event can't be changed that way now"


def check_event_editable(
    status: EventStatus, *, changes: Iterable[str] = (), what: str = "edited"
) -> None:
    """Final events can't change at all; the venue only changes while the event is a draft."""
    if status in FINAL_STATUSES:
        raise EventNotEditable(
            f"The event is {status.value}, which is final: it can't be {what} any more.",
            current_status=status.value,
        )
    if "venue_id" in changes and status is not EventStatus.DRAFT:
        raise EventNotEditable(
            f"The venue can only change while the event is a draft; it is {status.value}. "
            "Cancel it and create a new event at the other venue instead.",
            current_status=status.value,
        )


MAX_CANCELLATION_REASON_LENGTH = 1_000


def validate_cancellation_reason(reason: str | None) -> str | None:
    if reason is None or is_blank(reason):
        return None
    if len(reason) > MAX_CANCELLATION_REASON_LENGTH:
        raise invalid(
            [Problem("reason", f"at most {MAX_CANCELLATION_REASON_LENGTH} characters")],
            what="status change",
        )
    return reason.strip()
