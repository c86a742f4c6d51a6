"""Ticket types and their prices: what an event sells, for how much, and when."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from marquee_events.domain.lifecycle import (
    FINAL_STATUSES,
    SELLING_STATUSES,
    EventNotEditable,
    EventStatus,
)
from marquee_events.domain.problems import Problem, check_aware, check_name, invalid
from marquee_events.domain.seating import SeatingSummary
from marquee_events.iso_codes import CURRENCY_CODES
from marquee_platform.errors import Conflict


class TicketKind(StrEnum):
    SEATED = "seated"
    GENERAL_ADMISSION = "general_admission"


MAX_PRICE_MINOR = 100_000_000
"""One million in major units: far above any ticket, low enough to catch a misplaced digit."""
MAX_TICKET_TYPES_PER_EVENT = 50
MAX_TICKET_TYPE_NAME_LENGTH = 100


@dataclass(frozen=True, slots=True)
class TicketTypeSpec:
    """A ticket type: seats of one price category, or a quantity of places in one area."""

    name: str
    price_minor: int
    currency: str
    price_category: str | None = None
    general_admission_area: str | None = None
    quantity: int | None = None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    min_per_order: int = 1
    max_per_order: int = 10

    @property
    def kind(self) -> TicketKind:
        if self.general_admission_area is not None:
            return TicketKind.GENERAL_ADMISSION
        return TicketKind.SEATED


@dataclass(frozen=True, slots=True)
class SaleContext:
    """What ticket types are checked against: the event's schedule, limits and seating."""

    ends_at: datetime
    max_tickets_per_order: int
    seating: SeatingSummary
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    other_ticket_types: Sequence[TicketTypeSpec] = field(default_factory=tuple)
    """The event's other ticket types (without the one being checked)."""


class DuplicateTicketType(Conflict):
    code = "duplicate-ticket-type"
    title = "A ticket type with that name exists"


def ticket_type_problems(spec: TicketTypeSpec, context: SaleContext) -> list[Problem]:
    """Everything wrong with ``spec`` in ``context`` (paths are the ticket type's fields).

    Price rules: a non-negative integer amount of minor units below
    :data:`MAX_PRICE_MINOR`; an ISO 4217 currency, the same for every ticket type of the
    event (one price range, one currency). Seated ticket types name a price category of
    the venue's map and no quantity; general-admission ones name an area and a quantity,
    and the quantities of one area's ticket types fit its capacity. Per-order limits fit
    within the event's, and a ticket type's sale window within the event's.
    """
    problems: list[Problem] = []
    check_name(problems, "name", spec.name, what="name", max_length=MAX_TICKET_TYPE_NAME_LENGTH)
    if not 0 <= spec.price_minor <= MAX_PRICE_MINOR:
        problems.append(
            Problem(
                "price_minor",
                f"{spec.price_minor} must be between 0 and {MAX_PRICE_MINOR} (minor units, "
                "e.g. cents)",
            )
        )
    currency = spec.currency.strip().upper()
    if currency not in CURRENCY_CODES:
        problems.append(
            Problem("currency", f"'{spec.currency[:10]}' is not an ISO 4217 currency code")
        )
    else:
        others = sorted(
            {other.currency.strip().upper() for other in context.other_ticket_types} - {currency}
        )
        if others:
            problems.append(
                Problem(
                    "currency",
                    f"the event's other ticket types are priced in {', '.join(others)}; all "
                    f"ticket types of an event share one currency, not {currency}",
                )
            )

    seating = context.seating
    if (spec.price_category is None) == (spec.general_admission_area is None):
        problems.append(
            Problem(
                "price_category",
                "give either price_category (seats of that category) or "
                "general_admission_area and quantity, not both or neither",
            )
        )
    elif spec.kind is TicketKind.SEATED:
        assert spec.price_category is not None
        if spec.quantity is not None:
            problems.append(
                Problem(
                    "quantity",
                    "a seated ticket type sells the seats of its price category; leave "
                    "quantity out",
                )
            )
        if spec.price_category.strip() not in seating.price_categories:
            known = ", ".join(seating.price_categories) or "none: it has no seats"
            problems.append(
                Problem(
                    "price_category",
                    f"'{spec.price_category[:40]}' is not a price category of the venue's "
                    f"seating map (it has {known})",
                )
            )
    else:
        area = (spec.general_admission_area or "").strip()
        if area not in seating.general_admission:
            known = ", ".join(sorted(seating.general_admission)) or "none"
            problems.append(
                Problem(
                    "general_admission_area",
                    f"'{area[:40]}' is not a general-admission area of the venue (it has {known})",
                )
            )
        elif spec.quantity is None or spec.quantity < 1:
            problems.append(
                Problem("quantity", "a general-admission ticket type sells at least 1 place")
            )
        else:
            capacity = seating.general_admission[area]
            taken = sum(
                other.quantity or 0
                for other in context.other_ticket_types
                if (other.general_admission_area or "").strip() == area
            )
            if taken + spec.quantity > capacity:
                problems.append(
                    Problem(
                        "quantity",
                        f"area '{area}' holds {capacity} places and the event's other ticket "
                        f"types already sell {taken} of them, so at most "
                        f"{max(capacity - taken, 0)} are left, not {spec.quantity}",
                    )
                )

    if spec.min_per_order < 1:
        problems.append(Problem("min_per_order", "must be at least 1"))
    if spec.max_per_order < spec.min_per_order:
        problems.append(
            Problem(
                "max_per_order",
                f"{spec.max_per_order} is less than min_per_order ({spec.min_per_order})",
            )
        )
    if spec.max_per_order > context.max_tickets_per_order:
        problems.append(
            Problem(
                "max_per_order",
                f"{spec.max_per_order} is more than the event allows in one order "
                f"({context.max_tickets_per_order})",
            )
        )

    times_aware = check_aware(problems, "sale_starts_at", spec.sale_starts_at) and check_aware(
        problems, "sale_ends_at", spec.sale_ends_at
    )
    if times_aware:
        problems.extend(_ticket_sale_window_problems(spec, context))
    return problems


def _ticket_sale_window_problems(spec: TicketTypeSpec, context: SaleContext) -> list[Problem]:
    problems: list[Problem] = []
    opens, closes = spec.sale_starts_at, spec.sale_ends_at
    if opens is not None and closes is not None and closes <= opens:
        problems.append(Problem("sale_ends_at", "the sale closes before or when it opens"))
    if opens is not None and context.sale_starts_at is not None and opens < context.sale_starts_at:
        problems.append(
            Problem(
                "sale_starts_at",
                f"opens before the event's sale does ({context.sale_starts_at.isoformat()})",
            )
        )
    latest_close = context.sale_ends_at or context.ends_at
    if closes is not None and closes > latest_close:
        problems.append(
            Problem(
                "sale_ends_at",
                f"closes after the event's sale does ({latest_close.isoformat()})",
            )
        )
    if opens is not None and opens >= latest_close:
        problems.append(
            Problem("sale_starts_at", f"opens after the event's sale closes ({latest_close})")
        )
    return problems


def check_ticket_type(spec: TicketTypeSpec, context: SaleContext) -> TicketTypeSpec:
    """Normalize ``spec`` (trimmed names, upper-case currency, UTC times) or raise:
    :class:`DuplicateTicketType` (409) for a name the event already uses, else
    :class:`InvalidInput` (422) naming every bad field."""
    folded = spec.name.strip().casefold()
    for other in context.other_ticket_types:
        if other.name.strip().casefold() == folded:
            raise DuplicateTicketType(
                f"The event already has a ticket type named '{other.name}'; pick another "
                "name (names are compared ignoring case) or change that one.",
            )
    if len(context.other_ticket_types) >= MAX_TICKET_TYPES_PER_EVENT:
        raise Conflict(
            f"An event has at most {MAX_TICKET_TYPES_PER_EVENT} ticket types.",
            code="too-many-ticket-types",
        )
    problems = ticket_type_problems(spec, context)
    if problems:
        raise invalid(problems, what="ticket type")
    return replace(
        spec,
        name=spec.name.strip(),
        currency=spec.currency.strip().upper(),
        price_category=spec.price_category.strip() if spec.price_category else None,
        general_admission_area=(
            spec.general_admission_area.strip() if spec.general_admission_area else None
        ),
        sale_starts_at=spec.sale_starts_at.astimezone(UTC) if spec.sale_starts_at else None,
        sale_ends_at=spec.sale_ends_at.astimezone(UTC) if spec.sale_ends_at else None,
    )


def price_range(specs: Iterable[TicketTypeSpec]) -> tuple[int, int, str] | None:
    """(cheapest, dearest, currency) of an event's ticket types; None if it has none."""
    prices = [(spec.price_minor, spec.currency) for spec in specs]
    if not prices:
        return None
    amounts = [amount for amount, _ in prices]
    return min(amounts), max(amounts), prices[0][1]


PRICING_FIELDS = frozenset(
    {"price_minor", "currency", "price_category", "general_admission_area", "quantity"}
)


def check_ticket_type_change(
    status: EventStatus, *, name: str, changes: Iterable[str] = (), deleting: bool = False
) -> None:
    """Ticket types change freely until the sale starts. Once it has, their price and what
    they sell are fixed (orders in flight were priced with them) and they can't be
    deleted; new ticket types may still be added. A final event changes nothing."""
    if status in FINAL_STATUSES:
        raise EventNotEditable(
            f"The event is {status.value}, which is final: its ticket types can't change.",
            current_status=status.value,
        )
    if status in SELLING_STATUSES:
        if deleting:
            raise EventNotEditable(
                f"Ticket type '{name}' is on sale (the event is {status.value}); it can't be "
                "deleted. Close its sale by setting its sale_ends_at instead.",
                current_status=status.value,
            )
        fixed = sorted(PRICING_FIELDS.intersection(changes))
        if fixed:
            raise EventNotEditable(
                f"Ticket type '{name}' is on sale (the event is {status.value}): its "
                f"{', '.join(fixed)} can't change. Add a new ticket type instead.",
                current_status=status.value,
                fields=fixed,
            )
