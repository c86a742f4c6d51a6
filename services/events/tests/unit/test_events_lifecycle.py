"""Event status transitions, who may manage what, versions, event and venue details."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marquee_contracts.catalog import EVENT_CATEGORIES, EVENT_STATUSES, PUBLIC_STATUSES
from marquee_events.domain import (
    FINAL_STATUSES,
    Actor,
    EventCategory,
    EventDetails,
    EventStatus,
    ExpectedVersion,
    IllegalTransition,
    PreconditionFailed,
    VenueDetails,
    VersionConflict,
    allowed_transitions,
    authorize_management,
    check_event_editable,
    check_transition,
    check_version,
    is_time_zone,
    validate_event_details,
    validate_venue_details,
)
from marquee_events.domain import PUBLIC_STATUSES as DOMAIN_PUBLIC_STATUSES
from marquee_platform.errors import Conflict, InvalidInput, PermissionDenied

NOW = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)
EARLIER = NOW - timedelta(days=1)

S = EventStatus

BEFORE_THE_END = {
    S.DRAFT: (S.PUBLISHED, S.CANCELLED),
    S.PUBLISHED: (S.ON_SALE, S.CANCELLED),
    S.ON_SALE: (S.SOLD_OUT, S.CANCELLED),
    S.SOLD_OUT: (S.ON_SALE, S.CANCELLED),
    S.CANCELLED: (),
    S.COMPLETED: (),
}
AFTER_THE_END = {
    S.DRAFT: (S.CANCELLED,),
    S.PUBLISHED: (S.CANCELLED,),
    S.ON_SALE: (S.SOLD_OUT, S.CANCELLED, S.COMPLETED),
    S.SOLD_OUT: (S.CANCELLED, S.COMPLETED),
    S.CANCELLED: (),
    S.COMPLETED: (),
}


@pytest.mark.parametrize("current", list(EventStatus))
def test_the_transition_table(current: EventStatus) -> None:
    assert allowed_transitions(current, now=NOW, ends_at=LATER) == BEFORE_THE_END[current]
    assert allowed_transitions(current, now=NOW, ends_at=EARLIER) == AFTER_THE_END[current]


def test_an_illegal_transition_names_current_requested_and_allowed() -> None:
    with pytest.raises(IllegalTransition) as error:
        check_transition(S.ON_SALE, S.DRAFT, now=NOW, ends_at=LATER)
    assert isinstance(error.value, Conflict)
    assert error.value.extensions == {
        "current_status": "on_sale",
        "requested_status": "draft",
        "allowed_statuses": ["sold_out", "cancelled"],
    }
    assert "on_sale can't become draft" in error.value.detail
    assert "From on_sale it can now become: sold_out, cancelled." in error.value.detail


def test_completing_before_the_end_says_when_it_can() -> None:
    with pytest.raises(IllegalTransition, match="can't be completed before it ends"):
        check_transition(S.ON_SALE, S.COMPLETED, now=NOW, ends_at=LATER)
    check_transition(S.ON_SALE, S.COMPLETED, now=NOW, ends_at=NOW)


def test_final_statuses_say_so() -> None:
    with pytest.raises(IllegalTransition, match="cancelled, which is final") as error:
        check_transition(S.CANCELLED, S.ON_SALE, now=NOW, ends_at=LATER)
    assert error.value.extensions["allowed_statuses"] == []
    with pytest.raises(IllegalTransition, match="already published"):
        check_transition(S.PUBLISHED, S.PUBLISHED, now=NOW, ends_at=LATER)


@given(
    st.sampled_from(list(EventStatus)),
    st.sampled_from(list(EventStatus)),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(UTC)),
)
def test_transitions_follow_the_lifecycle_whatever_the_time(
    current: EventStatus, requested: EventStatus, now: datetime, ends_at: datetime
) -> None:
    allowed = allowed_transitions(current, now=now, ends_at=ends_at)
    assert current not in allowed
    if current in FINAL_STATUSES:
        assert allowed == ()
    if requested in allowed:
        check_transition(current, requested, now=now, ends_at=ends_at)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(current, requested, now=now, ends_at=ends_at)
    if S.COMPLETED in allowed:
        assert now >= ends_at
    assert S.DRAFT not in allowed


def test_domain_lists_match_the_published_contract() -> None:
    assert tuple(status.value for status in EventStatus) == EVENT_STATUSES
    assert {status.value for status in DOMAIN_PUBLIC_STATUSES} == set(PUBLIC_STATUSES)
    assert tuple(category.value for category in EventCategory) == EVENT_CATEGORIES


# ---- who may manage -------------------------------------------------------------------------


def test_organizers_manage_their_own_and_admins_anything() -> None:
    owner = Actor("org-1", is_organizer=True)
    authorize_management(owner, owner_id="org-1", action="edit event 'X'")
    authorize_management(owner, owner_id=None, action="create an event")
    authorize_management(Actor("admin", is_admin=True), owner_id="org-1", action="edit event 'X'")


def test_others_are_refused_with_what_they_tried() -> None:
    with pytest.raises(PermissionDenied) as error:
        authorize_management(Actor("org-2", is_organizer=True), owner_id="org-1", action="edit X")
    assert error.value.detail.startswith("You can't edit X: it belongs to another organizer")
    assert error.value.extensions == {"action": "edit X"}
    with pytest.raises(PermissionDenied, match="You can't create an event: that needs the"):
        authorize_management(Actor("fan"), owner_id=None, action="create an event")


# ---- versions -------------------------------------------------------------------------------


def test_a_stale_version_is_412_from_if_match_and_409_from_the_body() -> None:
    check_version(3, None, what="event 'X'")
    check_version(3, ExpectedVersion(3, from_header=True), what="event 'X'")
    with pytest.raises(PreconditionFailed) as error:
        check_version(4, ExpectedVersion(3, from_header=True), what="event 'X'")
    assert error.value.extensions == {"current_version": 4, "expected_version": 3}
    with pytest.raises(VersionConflict) as conflict:
        check_version(4, ExpectedVersion(3), what="event 'X'")
    assert not isinstance(conflict.value, PreconditionFailed)
    assert conflict.value.detail.startswith("Event 'X' is at version 4, not 3")


# ---- event details --------------------------------------------------------------------------


def details(**changes: object) -> EventDetails:
    base: dict[str, object] = {
        "name": "Rock night",
        "starts_at": LATER,
        "ends_at": LATER + timedelta(hours=3),
    }
    return EventDetails(**{**base, **changes})  # type: ignore[arg-type]


def fields_of(error: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [problem["field"] for problem in error.value.extensions["errors"]]


def test_event_details_are_normalized() -> None:
    paris = datetime(2027, 6, 1, 20, 0).astimezone()
    normalized = validate_event_details(
        details(
            name="  Rock night ",
            tags=(" Rock ", "rock", "LIVE  music"),
            starts_at=paris,
            ends_at=paris + timedelta(hours=2),
        )
    )
    assert normalized.name == "Rock night"
    assert normalized.tags == ("rock", "live music")
    assert normalized.starts_at.tzinfo is UTC


def test_an_event_ends_after_it_starts() -> None:
    with pytest.raises(InvalidInput) as error:
        validate_event_details(details(ends_at=LATER))
    assert fields_of(error) == ["ends_at"]
    assert "it must end after it starts" in error.value.detail


def test_sale_windows_stay_within_reason() -> None:
    with pytest.raises(InvalidInput) as error:
        validate_event_details(
            details(
                sale_starts_at=LATER - timedelta(days=800),
                sale_ends_at=LATER + timedelta(days=1),
            )
        )
    assert fields_of(error) == ["sale_ends_at", "sale_starts_at"]
    with pytest.raises(InvalidInput) as error:
        validate_event_details(details(sale_starts_at=NOW, sale_ends_at=NOW))
    assert fields_of(error) == ["sale_ends_at"]


def test_images_are_http_urls_and_categories_come_from_the_list() -> None:
    with pytest.raises(InvalidInput) as error:
        validate_event_details(
            details(
                image_urls=("https://img.example/a.png", "ftp://x/y.png", "javascript:alert(1)"),
                category="party",
            )
        )
    assert fields_of(error) == ["category", "image_urls[1]", "image_urls[2]"]


def test_times_must_carry_an_offset() -> None:
    with pytest.raises(InvalidInput) as error:
        validate_event_details(details(sale_starts_at=datetime(2027, 1, 1)))
    assert fields_of(error) == ["sale_starts_at"]


def test_final_events_are_not_editable_and_the_venue_is_fixed_once_public() -> None:
    check_event_editable(S.DRAFT, changes={"venue_id", "name"})
    check_event_editable(S.ON_SALE, changes={"name"})
    with pytest.raises(Conflict, match="only change while the event is a draft"):
        check_event_editable(S.PUBLISHED, changes={"venue_id"})
    with pytest.raises(Conflict, match="completed, which is final"):
        check_event_editable(S.COMPLETED, changes={"name"})


# ---- venue details --------------------------------------------------------------------------


def venue(**changes: object) -> VenueDetails:
    base: dict[str, object] = {
        "name": "Olympia",
        "address": "28 Boulevard des Capucines",
        "city": "Paris",
        "country": "fr",
        "latitude": 48.87,
        "longitude": 2.33,
        "time_zone": "Europe/Paris",
        "capacity": 100,
    }
    return VenueDetails(**{**base, **changes})  # type: ignore[arg-type]


def test_venue_details_are_normalized() -> None:
    assert validate_venue_details(venue()).country == "FR"


def test_bad_venue_details_are_each_named() -> None:
    with pytest.raises(InvalidInput) as error:
        validate_venue_details(
            venue(country="XX", latitude=91.0, longitude=math.nan, time_zone="Mars/Olympus")
        )
    assert fields_of(error) == ["country", "location.latitude", "location.longitude", "time_zone"]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("Europe/Paris", True),
        ("America/Argentina/Buenos_Aires", True),
        ("UTC", True),
        ("Mars/Olympus", False),
        ("../../etc/passwd", False),
        ("/etc/localtime", False),
        ("", False),
        ("Europe/Paris ", False),
    ],
)
def test_time_zones_are_iana_names(name: str, valid: bool) -> None:
    assert is_time_zone(name) is valid
