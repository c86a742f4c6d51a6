"""Readiness to publish: what an event needs before it is public, and keeps while it is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from marquee_events.domain.events import EventDetails
from marquee_events.domain.problems import MAX_PROBLEMS_REPORTED, Problem, summarize
from marquee_events.domain.seating import SeatingSummary
from marquee_events.domain.ticket_types import SaleContext, TicketTypeSpec, ticket_type_problems
from marquee_platform.errors import Conflict


class NotReadyToPublish(Conflict):
    code = "not-ready"
    title = "The event is not ready for that"


def readiness_problems(
    details: EventDetails,
    *,
    ticket_types: Sequence[TicketTypeSpec],
    seating: SeatingSummary,
) -> list[Problem]:
    """What keeps an event from being public (also re-checked on every edit once it is)."""
    problems: list[Problem] = []
    if details.sale_starts_at is None:
        problems.append(Problem("sale_starts_at", "set when the sale opens"))
    if details.sale_ends_at is None:
        problems.append(Problem("sale_ends_at", "set when the sale closes"))
    if not ticket_types:
        problems.append(Problem("ticket_types", "add at least one ticket type"))
    for index, spec in enumerate(ticket_types):
        context = SaleContext(
            ends_at=details.ends_at,
            max_tickets_per_order=details.max_tickets_per_order,
            seating=seating,
            sale_starts_at=details.sale_starts_at,
            sale_ends_at=details.sale_ends_at,
            other_ticket_types=[other for other in ticket_types if other is not spec],
        )
        for problem in ticket_type_problems(spec, context):
            problems.append(
                Problem(
                    f"ticket_types[{index}].{problem.path}",
                    f"ticket type '{spec.name}': {problem.message}",
                )
            )
    return problems


def check_ready_to_publish(
    details: EventDetails,
    *,
    ticket_types: Sequence[TicketTypeSpec],
    seating: SeatingSummary,
    now: datetime,
) -> None:
    problems = readiness_problems(details, ticket_types=ticket_types, seating=seating)
    if details.starts_at <= now:
        problems.insert(
            0,
            Problem(
                "starts_at",
                f"the event starts at {details.starts_at.isoformat()}, which has passed; an "
                "event is published before it starts",
            ),
        )
    if problems:
        raise NotReadyToPublish(
            f"The event can't be published yet: {summarize(problems)}.",
            problems=[str(problem) for problem in problems[:MAX_PROBLEMS_REPORTED]],
        )


def check_still_ready(
    details: EventDetails,
    *,
    ticket_types: Sequence[TicketTypeSpec],
    seating: SeatingSummary,
) -> None:
    """After an edit of a public event: refuse a change that would make it unpublishable."""
    problems = readiness_problems(details, ticket_types=ticket_types, seating=seating)
    if problems:
        raise NotReadyToPublish(
            f"The event is public and this change would leave it inconsistent: "
            f"{summarize(problems)}.",
            problems=[str(problem) for problem in problems[:MAX_PROBLEMS_REPORTED]],
        )
