"""Ticket types and price rules, readiness to publish, and reviews."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marquee_events.domain import (
    DuplicateTicketType,
    EventDetails,
    EventStatus,
    NotReadyToPublish,
    SaleContext,
    SeatingSummary,
    TicketKind,
    TicketTypeSpec,
    check_ready_to_publish,
    check_review_allowed,
    check_seating_replaceable,
    check_ticket_type,
    check_ticket_type_change,
    price_range,
    ticket_type_problems,
    validate_review,
)
from marquee_platform.errors import Conflict, InvalidInput, PermissionDenied

NOW = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
STARTS = NOW + timedelta(days=30)
ENDS = STARTS + timedelta(hours=3)
SEATING = SeatingSummary(
    seated_seats=500,
    general_admission={"Floor": 1_000, "Terrace": 50},
    price_categories=("premium", "standard"),
)


def context(*others: TicketTypeSpec, **changes: object) -> SaleContext:
    base = SaleContext(
        ends_at=ENDS,
        max_tickets_per_order=8,
        seating=SEATING,
        sale_starts_at=NOW,
        sale_ends_at=STARTS,
        other_ticket_types=others,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


SEATED = TicketTypeSpec(
    name="Stalls", price_minor=4_500, currency="eur", price_category="standard", max_per_order=6
)
FLOOR = TicketTypeSpec(
    name="Floor",
    price_minor=3_000,
    currency="EUR",
    general_admission_area="Floor",
    quantity=600,
    max_per_order=6,
)


def fields_of(spec: TicketTypeSpec, sale: SaleContext) -> list[str]:
    return [problem.path for problem in ticket_type_problems(spec, sale)]


def test_valid_ticket_types_are_normalized() -> None:
    checked = check_ticket_type(replace(SEATED, name=" Stalls "), context())
    assert checked.name == "Stalls"
    assert checked.currency == "EUR"
    assert checked.kind is TicketKind.SEATED
    assert check_ticket_type(FLOOR, context(SEATED)).kind is TicketKind.GENERAL_ADMISSION


def test_prices_are_non_negative_minor_units_in_an_iso_currency() -> None:
    assert fields_of(replace(SEATED, price_minor=-1), context()) == ["price_minor"]
    assert fields_of(replace(SEATED, price_minor=0), context()) == []
    assert fields_of(replace(SEATED, currency="EURO"), context()) == ["currency"]
    assert fields_of(replace(SEATED, currency="XYZ"), context()) == ["currency"]


def test_an_event_has_one_currency() -> None:
    problems = ticket_type_problems(replace(FLOOR, currency="USD"), context(SEATED))
    assert [str(problem) for problem in problems] == [
        "currency: the event's other ticket types are priced in EUR; all ticket types of an "
        "event share one currency, not USD"
    ]


def test_seated_ticket_types_sell_a_price_category_of_the_map() -> None:
    problems = ticket_type_problems(replace(SEATED, price_category="vip"), context())
    assert [str(problem) for problem in problems] == [
        "price_category: 'vip' is not a price category of the venue's seating map (it has "
        "premium, standard)"
    ]
    assert fields_of(replace(SEATED, quantity=10), context()) == ["quantity"]


def test_a_ticket_type_is_seated_or_general_admission() -> None:
    assert fields_of(replace(SEATED, general_admission_area="Floor"), context()) == [
        "price_category"
    ]
    assert fields_of(replace(SEATED, price_category=None), context()) == ["price_category"]


def test_general_admission_quantities_fit_their_area() -> None:
    problems = ticket_type_problems(replace(FLOOR, name="Late", quantity=401), context(FLOOR))
    assert [str(problem) for problem in problems] == [
        "quantity: area 'Floor' holds 1000 places and the event's other ticket types already "
        "sell 600 of them, so at most 400 are left, not 401"
    ]
    assert fields_of(replace(FLOOR, name="Late", quantity=400), context(FLOOR)) == []
    assert fields_of(replace(FLOOR, general_admission_area="Balcony"), context()) == [
        "general_admission_area"
    ]
    assert fields_of(replace(FLOOR, quantity=None), context()) == ["quantity"]


def test_order_limits_fit_the_event() -> None:
    assert fields_of(replace(SEATED, min_per_order=0), context()) == ["min_per_order"]
    assert fields_of(replace(SEATED, min_per_order=4, max_per_order=2), context()) == [
        "max_per_order"
    ]
    assert fields_of(replace(SEATED, max_per_order=9), context()) == ["max_per_order"]


def test_a_ticket_types_sale_window_sits_inside_the_events() -> None:
    early = replace(SEATED, sale_starts_at=NOW - timedelta(hours=1))
    assert fields_of(early, context()) == ["sale_starts_at"]
    late = replace(SEATED, sale_ends_at=STARTS + timedelta(minutes=1))
    assert fields_of(late, context()) == ["sale_ends_at"]
    backwards = replace(SEATED, sale_starts_at=NOW + timedelta(days=2), sale_ends_at=NOW)
    assert fields_of(backwards, context()) == ["sale_ends_at"]


def test_names_are_unique_per_event_as_a_conflict() -> None:
    with pytest.raises(DuplicateTicketType, match="already has a ticket type named 'Stalls'"):
        check_ticket_type(replace(SEATED, name="STALLS"), context(SEATED))


def test_invalid_ticket_types_raise_naming_each_field() -> None:
    with pytest.raises(InvalidInput) as error:
        check_ticket_type(replace(SEATED, price_minor=-5, currency="??"), context())
    assert [problem["field"] for problem in error.value.extensions["errors"]] == [
        "price_minor",
        "currency",
    ]


def test_price_range_spans_the_ticket_types() -> None:
    assert price_range([]) is None
    assert price_range([SEATED, FLOOR, replace(FLOOR, price_minor=9_900)]) == (
        3_000,
        9_900,
        "eur",
    )


@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=12))
def test_accepted_general_admission_never_oversells_an_area(quantities: list[int]) -> None:
    accepted: list[TicketTypeSpec] = []
    for index, quantity in enumerate(quantities):
        spec = replace(FLOOR, name=f"Wave {index}", quantity=quantity)
        try:
            accepted.append(check_ticket_type(spec, context(*accepted)))
        except InvalidInput:
            assert sum(item.quantity or 0 for item in accepted) + quantity > 1_000
    assert sum(item.quantity or 0 for item in accepted) <= 1_000


# ---- changes once on sale -------------------------------------------------------------------


def test_prices_are_fixed_once_on_sale_but_names_and_new_types_are_not() -> None:
    check_ticket_type_change(EventStatus.PUBLISHED, name="Stalls", changes={"price_minor"})
    check_ticket_type_change(EventStatus.PUBLISHED, name="Stalls", deleting=True)
    check_ticket_type_change(EventStatus.ON_SALE, name="Stalls", changes={"name", "sale_ends_at"})
    check_ticket_type_change(EventStatus.ON_SALE, name="New")
    with pytest.raises(Conflict, match="its currency, price_minor can't change") as error:
        check_ticket_type_change(
            EventStatus.SOLD_OUT, name="Stalls", changes={"price_minor", "currency"}
        )
    assert error.value.extensions["fields"] == ["currency", "price_minor"]
    with pytest.raises(Conflict, match="can't be deleted"):
        check_ticket_type_change(EventStatus.ON_SALE, name="Stalls", deleting=True)
    with pytest.raises(Conflict, match="final"):
        check_ticket_type_change(EventStatus.CANCELLED, name="New")


# ---- readiness --------------------------------------------------------------------------------


def event(**changes: object) -> EventDetails:
    base = EventDetails(
        name="Rock night",
        starts_at=STARTS,
        ends_at=ENDS,
        sale_starts_at=NOW,
        sale_ends_at=STARTS,
        max_tickets_per_order=8,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_complete_future_event_is_ready() -> None:
    check_ready_to_publish(event(), ticket_types=[SEATED, FLOOR], seating=SEATING, now=NOW)


def test_publishing_lists_what_is_missing() -> None:
    with pytest.raises(NotReadyToPublish) as error:
        check_ready_to_publish(
            event(sale_starts_at=None, starts_at=NOW - timedelta(hours=1)),
            ticket_types=[],
            seating=SEATING,
            now=NOW,
        )
    assert [problem.split(":")[0] for problem in error.value.extensions["problems"]] == [
        "starts_at",
        "sale_starts_at",
        "ticket_types",
    ]


def test_publishing_rechecks_ticket_types_against_the_event() -> None:
    with pytest.raises(NotReadyToPublish) as error:
        check_ready_to_publish(
            event(max_tickets_per_order=4), ticket_types=[SEATED], seating=SEATING, now=NOW
        )
    assert error.value.extensions["problems"] == [
        "ticket_types[0].max_per_order: ticket type 'Stalls': 6 is more than the event "
        "allows in one order (4)"
    ]


def test_live_events_freeze_their_venues_seating_map() -> None:
    check_seating_replaceable([])
    with pytest.raises(Conflict, match="'Rock night'"):
        check_seating_replaceable(["Rock night"])


# ---- reviews ----------------------------------------------------------------------------------


def test_reviews_are_for_holders_after_the_end() -> None:
    check_review_allowed(status=EventStatus.COMPLETED, ends_at=NOW, now=NOW, is_holder=True)
    with pytest.raises(PermissionDenied, match="only people who held a ticket"):
        check_review_allowed(status=EventStatus.COMPLETED, ends_at=NOW, now=NOW, is_holder=False)
    with pytest.raises(Conflict, match="Reviews open when the event ends"):
        check_review_allowed(status=EventStatus.ON_SALE, ends_at=ENDS, now=NOW, is_holder=True)
    with pytest.raises(Conflict, match="cancelled"):
        check_review_allowed(status=EventStatus.CANCELLED, ends_at=NOW, now=NOW, is_holder=True)


@pytest.mark.parametrize("rating", [0, 6, -1])
def test_ratings_are_one_to_five(rating: int) -> None:
    with pytest.raises(InvalidInput, match="not a rating from 1 to 5"):
        validate_review(rating, "")
