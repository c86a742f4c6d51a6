"""The catalog's rules as pure functions: seating maps, event details, the status lifecycle,
ticket types and their prices, reviews, and who may manage what.

Nothing here knows about HTTP or the database. Functions either return normalized values
or raise a domain error (:mod:`marquee_platform.errors`) whose message names the part of
the input that is wrong and says what would be right.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marquee_events.iso_codes import COUNTRY_CODES, CURRENCY_CODES
from marquee_platform.errors import Conflict, InvalidInput, PermissionDenied, PreconditionFailed

# ---- problems ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: where (a dotted path into the request body) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


MAX_PROBLEMS_REPORTED = 100


def _problem_list(problems: Sequence[Problem], *, prefix: str = "") -> list[dict[str, str]]:
    def field_of(path: str) -> str:
        return path if not prefix or path in ("capacity", prefix.rstrip(".")) else prefix + path

    return [
        {
            "location": f"body {field_of(problem.path)}",
            "field": field_of(problem.path),
            "message": problem.message,
            "kind": "invalid",
        }
        for problem in problems[:MAX_PROBLEMS_REPORTED]
    ]


def _summary(problems: Sequence[Problem], *, shown: int = 3) -> str:
    text = "; ".join(str(problem) for problem in problems[:shown])
    if len(problems) > shown:
        text += f" (and {len(problems) - shown} more, listed in 'errors')"
    return text


def invalid(problems: Sequence[Problem], *, what: str, code: str = "invalid-input") -> InvalidInput:
    """An :class:`InvalidInput` listing ``problems`` (each names its part of the body)."""
    return InvalidInput(
        f"The {what} is not valid: {_summary(problems)}.",
        code=code,
        errors=_problem_list(problems),
    )


class InvalidSeatingMap(InvalidInput):
    code = "invalid-seating-map"
    title = "The seating map is not valid"


# ---- who may do what --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking, as the domain needs to know it."""

    user_id: str
    is_organizer: bool = False
    is_admin: bool = False


def authorize_management(actor: Actor, *, owner_id: str | None, action: str) -> None:
    """Let organizers manage their own things and admins anything; refuse everyone else.

    ``action`` says what was tried, in words ("edit event 'Rock night'"), so the refusal
    names it. ``owner_id`` None means there is no owner yet (creating something).
    """
    if actor.is_admin:
        return
    if not actor.is_organizer:
        raise PermissionDenied(
            f"You can't {action}: that needs the organizer role, and your account doesn't have it.",
            code="organizer-role-required",
            action=action,
        )
    if owner_id is not None and owner_id != actor.user_id:
        raise PermissionDenied(
            f"You can't {action}: it belongs to another organizer. Only its organizer or an "
            "admin can do that.",
            code="not-the-owner",
            action=action,
        )


def can_manage(actor: Actor | None, owner_id: str) -> bool:
    return actor is not None and (actor.is_admin or actor.user_id == owner_id)


# ---- optimistic concurrency ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpectedVersion:
    """The version a client last saw, from ``If-Match`` (``from_header``) or the body."""

    version: int
    from_header: bool = False


class VersionConflict(Conflict):
    """The thing changed since the client read it (``expected_version`` in the body)."""

    code = "version-conflict"
    title = "It changed since you read it"


class StaleIfMatch(VersionConflict, PreconditionFailed):
    """The same, asked for with ``If-Match``: a failed precondition (HTTP 412)."""

    code = "precondition-failed"
    title = "Precondition failed"


def check_version(current: int, expected: ExpectedVersion | None, *, what: str) -> None:
    """Refuse a change based on a stale read: someone else changed ``what`` meanwhile."""
    if expected is None or expected.version == current:
        return
    error = StaleIfMatch if expected.from_header else VersionConflict
    raise error(
        f"{what[0].upper()}{what[1:]} is at version {current}, not {expected.version}: it "
        "changed since you read it. Read it again, reapply your change and retry.",
        current_version=current,
        expected_version=expected.version,
    )


# ---- seating maps -----------------------------------------------------------------------

MAX_SEATED_SEATS = 40_000
"""Seats per venue. Every seat id travels in one ``events.event-published.v1`` message,
which must stay under Kafka's default 1 MB: 40,000 ids of at most 16 characters do."""
MAX_CAPACITY = 500_000
MAX_NAME_LENGTH = 100
MAX_ROW_LABEL_LENGTH = 20
MAX_PRICE_CATEGORY_LENGTH = 40
SEAT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,15}")
SEAT_ID_RULE = (
    "use 1 to 16 letters, digits or . _ : / # - (ASCII), starting with a letter or a digit"
)


@dataclass(frozen=True, slots=True)
class Seat:
    id: str
    price_category: str | None = None
    """None: the row's default price category."""


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    seats: tuple[Seat, ...]
    price_category: str | None = None
    """The default for seats that name none (keeps large maps small)."""


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class GeneralAdmissionArea:
    name: str
    capacity: int


@dataclass(frozen=True, slots=True)
class SeatingMap:
    sections: tuple[Section, ...] = ()
    general_admission: tuple[GeneralAdmissionArea, ...] = ()


@dataclass(frozen=True, slots=True)
class SeatingSummary:
    """What a valid seating map can sell."""

    seated_seats: int
    general_admission: Mapping[str, int]
    """Area name → capacity."""
    price_categories: tuple[str, ...]
    """Sorted, each used by at least one seat."""

    @property
    def general_admission_capacity(self) -> int:
        return sum(self.general_admission.values())

    @property
    def total_places(self) -> int:
        return self.seated_seats + self.general_admission_capacity


def _blank(text: str) -> bool:
    return not text.strip()


def _check_name(
    problems: list[Problem], path: str, name: str, *, what: str, max_length: int
) -> None:
    if _blank(name):
        problems.append(Problem(path, f"{what} is empty; give it a name"))
    elif len(name) > max_length:
        problems.append(
            Problem(path, f"{what} '{name[:20]}…' is {len(name)} characters; at most {max_length}")
        )


def _seat_price_category(seat: Seat, row: Row) -> str | None:
    return seat.price_category if seat.price_category is not None else row.price_category


class _UniqueNames:
    """Names compared ignoring case and surrounding spaces; remembers where each was first."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[str, str]] = {}

    def first_use(self, name: str, path: str, *, strip: bool = True) -> tuple[str, str] | None:
        """Where ``name`` was first used (path, name as written), or None if it is new."""
        key = (name.strip() if strip else name).casefold()
        if not key:
            return None
        first = self._first.get(key)
        if first is None:
            self._first[key] = (path, name)
        return first


class _SeatingMapCheck:
    """Walks a seating map once, collecting every problem with its path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.seated = 0
        self.categories: set[str] = set()
        self.areas: dict[str, int] = {}
        self._section_names = _UniqueNames()
        self._seat_ids = _UniqueNames()
        self._area_names = _UniqueNames()

    def _problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def _name(self, path: str, name: str, *, what: str, max_length: int) -> None:
        _check_name(self.problems, path, name, what=what, max_length=max_length)

    def section(self, path: str, section: Section) -> None:
        self._name(path, section.name, what="section name", max_length=MAX_NAME_LENGTH)
        first = self._section_names.first_use(section.name, path)
        if first is not None:
            self._problem(
                path, f"section name '{section.name}' is used twice (first at {first[0]})"
            )
        if not section.rows:
            self._problem(path, f"section '{section.name}' has no rows; remove it or give it rows")
        row_labels = _UniqueNames()
        for index, row in enumerate(section.rows):
            self.row(f"{path}.rows[{index}]", row, section=section, labels=row_labels)

    def row(self, path: str, row: Row, *, section: Section, labels: _UniqueNames) -> None:
        self._name(path, row.label, what="row label", max_length=MAX_ROW_LABEL_LENGTH)
        first = labels.first_use(row.label, path)
        if first is not None:
            self._problem(
                path,
                f"row label '{row.label}' is used twice in section '{section.name}' (first at "
                f"{first[0]})",
            )
        if row.price_category is not None:
            self._name(
                f"{path}.price_category",
                row.price_category,
                what="price category",
                max_length=MAX_PRICE_CATEGORY_LENGTH,
            )
        if not row.seats:
            self._problem(
                path,
                f"row '{row.label}' of section '{section.name}' has no seats; remove it or "
                "give it seats",
            )
        for index, seat in enumerate(row.seats):
            self.seat(f"{path}.seats[{index}]", seat, row=row)

    def seat(self, path: str, seat: Seat, *, row: Row) -> None:
        self.seated += 1
        if not SEAT_ID_PATTERN.fullmatch(seat.id):
            self._problem(path, f"seat id '{seat.id[:40]}' is not valid: {SEAT_ID_RULE}")
        first = self._seat_ids.first_use(seat.id, path, strip=False)
        if first is not None:
            first_path, first_id = first
            written = "" if first_id == seat.id else f" as '{first_id}'"
            self._problem(
                path,
                f"seat id '{seat.id}' is used twice (first at {first_path}{written}); seat ids "
                "must be unique across the venue, ignoring case",
            )
        category = _seat_price_category(seat, row)
        if category is None:
            self._problem(
                path,
                f"seat '{seat.id}' has no price category; give it one, or give row "
                f"'{row.label}' a default price_category",
            )
            return
        if seat.price_category is not None:
            self._name(
                f"{path}.price_category",
                seat.price_category,
                what="price category",
                max_length=MAX_PRICE_CATEGORY_LENGTH,
            )
        if not _blank(category) and len(category) <= MAX_PRICE_CATEGORY_LENGTH:
            self.categories.add(category.strip())

    def area(self, path: str, area: GeneralAdmissionArea) -> None:
        self._name(path, area.name, what="area name", max_length=MAX_NAME_LENGTH)
        first = self._area_names.first_use(area.name, path)
        if first is not None:
            self._problem(path, f"area name '{area.name}' is used twice (first at {first[0]})")
        elif area.name.strip():
            self.areas[area.name.strip()] = area.capacity
        if area.capacity < 1:
            self._problem(
                f"{path}.capacity",
                f"area '{area.name}' has capacity {area.capacity}; it must hold at least 1 "
                "place (remove the area otherwise)",
            )


def validate_seating_map(seating: SeatingMap, *, capacity: int) -> SeatingSummary:
    """Check a seating map against its venue's capacity; raise :class:`InvalidSeatingMap`
    listing every problem, each named by its path (``sections[2].rows[5].seats[3]``).

    The rules: at least one section or general-admission area; no empty section or row;
    section names and area names unique, row labels unique within their section; seat ids
    well formed and unique across the venue (ignoring case, since people read them aloud);
    every seat has a price category (its own or its row's); areas hold at least one place;
    and seats plus general-admission places equal the venue's capacity *exactly*, so a
    typo in either is caught rather than silently selling fewer or more places.
    """
    check = _SeatingMapCheck()
    if not seating.sections and not seating.general_admission:
        check.problems.append(
            Problem(
                "seating_map",
                "it has neither sections nor general_admission areas; a venue needs at "
                "least one place to sell",
            )
        )
    for index, section in enumerate(seating.sections):
        check.section(f"sections[{index}]", section)
    if check.seated > MAX_SEATED_SEATS:
        check.problems.append(
            Problem(
                "sections",
                f"the map has {check.seated} seats; a venue can have at most "
                f"{MAX_SEATED_SEATS} seats (general-admission areas have no such limit)",
            )
        )
    for index, area in enumerate(seating.general_admission):
        check.area(f"general_admission[{index}]", area)

    general_admission = sum(max(area.capacity, 0) for area in seating.general_admission)
    total = check.seated + general_admission
    if not 1 <= capacity <= MAX_CAPACITY:
        check.problems.append(
            Problem("capacity", f"capacity {capacity} must be between 1 and {MAX_CAPACITY}")
        )
    elif total != capacity and (seating.sections or seating.general_admission):
        check.problems.append(
            Problem(
                "capacity",
                f"the venue's capacity is {capacity} but its seating map holds {total} places "
                f"({check.seated} seats + {general_admission} general admission); they must "
                "be equal",
            )
        )

    if check.problems:
        raise InvalidSeatingMap(
            f"The seating map is not valid: {_summary(check.problems)}.",
            errors=_problem_list(check.problems, prefix="seating_map."),
        )
    return SeatingSummary(
        seated_seats=check.seated,
        general_admission=check.areas,
        price_categories=tuple(sorted(check.categories)),
    )


def seat_ids_by_price_category(seating: SeatingMap) -> dict[str, list[str]]:
    """Every seat id of a *valid* map, grouped by its price category, in map order."""
    grouped: dict[str, list[str]] = {}
    for section in seating.sections:
        for row in section.rows:
            for seat in row.seats:
                category = _seat_price_category(seat, row)
                assert category is not None, "validate the map first"
                grouped.setdefault(category.strip(), []).append(seat.id)
    return grouped


def seating_map_from_document(document: Mapping[str, Any]) -> SeatingMap:
    """The map as stored (JSON), back as domain values."""
    return SeatingMap(
        sections=tuple(
            Section(
                name=section["name"],
                rows=tuple(
                    Row(
                        label=row["label"],
                        price_category=row.get("price_category"),
                        seats=tuple(
                            Seat(id=seat["id"], price_category=seat.get("price_category"))
                            for seat in row["seats"]
                        ),
                    )
                    for row in section["rows"]
                ),
            )
            for section in document.get("sections", ())
        ),
        general_admission=tuple(
            GeneralAdmissionArea(name=area["name"], capacity=area["capacity"])
            for area in document.get("general_admission", ())
        ),
    )


def seating_map_to_document(seating: SeatingMap) -> dict[str, Any]:
    """The map as stored (JSON); absent defaults are left out to keep large maps small."""

    def seat_document(seat: Seat) -> dict[str, str]:
        document = {"id": seat.id}
        if seat.price_category is not None:
            document["price_category"] = seat.price_category.strip()
        return document

    def row_document(row: Row) -> dict[str, Any]:
        document: dict[str, Any] = {
            "label": row.label.strip(),
            "seats": [seat_document(seat) for seat in row.seats],
        }
        if row.price_category is not None:
            document["price_category"] = row.price_category.strip()
        return document

    return {
        "sections": [
            {"name": section.name.strip(), "rows": [row_document(row) for row in section.rows]}
            for section in seating.sections
        ],
        "general_admission": [
            {"name": area.name.strip(), "capacity": area.capacity}
            for area in seating.general_admission
        ],
    }


# ---- venues -----------------------------------------------------------------------------

MAX_ADDRESS_LENGTH = 300
_TIME_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


@lru_cache(maxsize=1024)
def is_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows (``Europe/Paris``)."""
    if not _TIME_ZONE_NAME.fullmatch(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class VenueDetails:
    name: str
    address: str
    city: str
    country: str
    latitude: float
    longitude: float
    time_zone: str
    capacity: int


def validate_venue_details(details: VenueDetails) -> VenueDetails:
    """Normalize a venue's fields (trimmed, country upper case) or raise naming each bad one."""
    problems: list[Problem] = []
    _check_name(problems, "name", details.name, what="name", max_length=MAX_NAME_LENGTH)
    _check_name(problems, "address", details.address, what="address", max_length=MAX_ADDRESS_LENGTH)
    _check_name(problems, "city", details.city, what="city", max_length=MAX_NAME_LENGTH)
    country = details.country.strip().upper()
    if country not in COUNTRY_CODES:
        problems.append(
            Problem(
                "country",
                f"'{details.country[:10]}' is not an ISO 3166-1 alpha-2 country code "
                "(two letters, such as FR or US)",
            )
        )
    if not -90.0 <= details.latitude <= 90.0:  # also false for NaN
        problems.append(
            Problem("location.latitude", f"{details.latitude} is not between -90 and 90")
        )
    if not -180.0 <= details.longitude <= 180.0:
        problems.append(
            Problem("location.longitude", f"{details.longitude} is not between -180 and 180")
        )
    if not is_time_zone(details.time_zone):
        problems.append(
            Problem(
                "time_zone",
                f"'{details.time_zone[:60]}' is not an IANA time zone (such as Europe/Paris "
                "or America/New_York)",
            )
        )
    if not 1 <= details.capacity <= MAX_CAPACITY:
        problems.append(
            Problem("capacity", f"{details.capacity} must be between 1 and {MAX_CAPACITY}")
        )
    if problems:
        raise invalid(problems, what="venue")
    return replace(
        details,
        name=details.name.strip(),
        address=details.address.strip(),
        city=details.city.strip(),
        country=country,
    )


# ---- events -----------------------------------------------------------------------------


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


class EventCategory(StrEnum):
    CONCERT = "concert"
    FESTIVAL = "festival"
    THEATRE = "theatre"
    COMEDY = "comedy"
    DANCE = "dance"
    CLASSICAL = "classical"
    SPORTS = "sports"
    FAMILY = "family"
    CONFERENCE = "conference"
    EXHIBITION = "exhibition"
    FILM = "film"
    OTHER = "other"


CATEGORY_VALUES = frozenset(category.value for category in EventCategory)
MAX_EVENT_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_IMAGES = 10
MAX_URL_LENGTH = 2_000
MAX_EVENT_DURATION = timedelta(days=60)
MAX_SALE_LEAD = timedelta(days=2 * 366)
"""How long before the event its sale may open."""
MAX_TICKETS_PER_ORDER_LIMIT = 100


@dataclass(frozen=True, slots=True)
class EventDetails:
    """What an organizer says about an event (everything but venue, owner and status)."""

    name: str
    starts_at: datetime
    ends_at: datetime
    category: str = EventCategory.OTHER.value
    description: str = ""
    tags: tuple[str, ...] = ()
    image_urls: tuple[str, ...] = ()
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    high_demand: bool = False
    max_tickets_per_order: int = 10


def _is_http_url(url: str) -> bool:
    if len(url) > MAX_URL_LENGTH or any(character.isspace() for character in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, lower case, deduplicated, in the order given."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(" ".join(tag.split()).casefold(), None)
    return tuple(seen)


def _check_aware(problems: list[Problem], path: str, moment: datetime | None) -> bool:
    if moment is not None and moment.utcoffset() is None:
        problems.append(Problem(path, "must include a time zone offset (e.g. Z or +02:00)"))
        return False
    return True


def validate_event_details(details: EventDetails) -> EventDetails:
    """Normalize an event's details (UTC times, tidy tags) or raise naming each bad field.

    Times: ``ends_at`` after ``starts_at`` and at most 60 days later; the sale window, when
    given, opens before it closes, closes no later than the event ends, and opens at most
    two years before the event starts.
    """
    problems: list[Problem] = []
    _check_name(problems, "name", details.name, what="name", max_length=MAX_EVENT_NAME_LENGTH)
    if len(details.description) > MAX_DESCRIPTION_LENGTH:
        problems.append(
            Problem(
                "description",
                f"is {len(details.description)} characters; at most {MAX_DESCRIPTION_LENGTH}",
            )
        )
    if details.category not in CATEGORY_VALUES:
        problems.append(
            Problem(
                "category",
                f"'{details.category[:40]}' is not a category; use one of "
                + ", ".join(category.value for category in EventCategory),
            )
        )
    tags = normalize_tags(details.tags)
    if len(tags) > MAX_TAGS:
        problems.append(Problem("tags", f"{len(tags)} tags; at most {MAX_TAGS}"))
    for index, tag in enumerate(tags):
        if not tag or len(tag) > MAX_TAG_LENGTH:
            problems.append(Problem(f"tags[{index}]", f"a tag is 1 to {MAX_TAG_LENGTH} characters"))
    if len(details.image_urls) > MAX_IMAGES:
        problems.append(
            Problem("image_urls", f"{len(details.image_urls)} images; at most {MAX_IMAGES}")
        )
    for index, url in enumerate(details.image_urls):
        if not _is_http_url(url):
            problems.append(
                Problem(
                    f"image_urls[{index}]",
                    f"'{url[:80]}' is not an http or https URL (at most {MAX_URL_LENGTH} "
                    "characters, no spaces)",
                )
            )
    if not 1 <= details.max_tickets_per_order <= MAX_TICKETS_PER_ORDER_LIMIT:
        problems.append(
            Problem(
                "max_tickets_per_order",
                f"{details.max_tickets_per_order} must be between 1 and "
                f"{MAX_TICKETS_PER_ORDER_LIMIT}",
            )
        )

    times_aware = all(
        [
            _check_aware(problems, "starts_at", details.starts_at),
            _check_aware(problems, "ends_at", details.ends_at),
            _check_aware(problems, "sale_starts_at", details.sale_starts_at),
            _check_aware(problems, "sale_ends_at", details.sale_ends_at),
        ]
    )
    if times_aware:
        problems.extend(_schedule_problems(details))
    if problems:
        raise invalid(problems, what="event")
    return replace(
        details,
        name=details.name.strip(),
        tags=tags,
        image_urls=tuple(details.image_urls),
        starts_at=details.starts_at.astimezone(UTC),
        ends_at=details.ends_at.astimezone(UTC),
        sale_starts_at=details.sale_starts_at.astimezone(UTC) if details.sale_starts_at else None,
        sale_ends_at=details.sale_ends_at.astimezone(UTC) if details.sale_ends_at else None,
    )


def _schedule_problems(details: EventDetails) -> list[Problem]:
    problems: list[Problem] = []
    if details.ends_at <= details.starts_at:
        problems.append(
            Problem(
                "ends_at",
                f"the event ends ({details.ends_at.isoformat()}) before or when it starts "
                f"({details.starts_at.isoformat()}); it must end after it starts",
            )
        )
    elif details.ends_at - details.starts_at > MAX_EVENT_DURATION:
        problems.append(
            Problem("ends_at", f"an event lasts at most {MAX_EVENT_DURATION.days} days")
        )
    opens, closes = details.sale_starts_at, details.sale_ends_at
    if opens is not None and closes is not None and closes <= opens:
        problems.append(
            Problem(
                "sale_ends_at",
                f"the sale closes ({closes.isoformat()}) before or when it opens "
                f"({opens.isoformat()})",
            )
        )
    if closes is not None and closes > details.ends_at:
        problems.append(
            Problem(
                "sale_ends_at",
                f"the sale closes ({closes.isoformat()}) after the event ends "
                f"({details.ends_at.isoformat()})",
            )
        )
    if opens is not None and opens >= details.ends_at:
        problems.append(Problem("sale_starts_at", "the sale opens after the event has ended"))
    if opens is not None and details.starts_at - opens > MAX_SALE_LEAD:
        problems.append(
            Problem(
                "sale_starts_at",
                f"the sale opens more than {MAX_SALE_LEAD.days} days before the event starts",
            )
        )
    return problems


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


# ---- ticket types and prices ------------------------------------------------------------


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
    _check_name(problems, "name", spec.name, what="name", max_length=MAX_TICKET_TYPE_NAME_LENGTH)
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

    times_aware = _check_aware(problems, "sale_starts_at", spec.sale_starts_at) and _check_aware(
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


# ---- readiness to publish ---------------------------------------------------------------


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
            f"The event can't be published yet: {_summary(problems)}.",
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
            f"{_summary(problems)}.",
            problems=[str(problem) for problem in problems[:MAX_PROBLEMS_REPORTED]],
        )


# ---- venues in use ----------------------------------------------------------------------


class SeatingMapInUse(Conflict):
    code = "seating-map-in-use"
    title = "The seating map is in use"


def check_seating_replaceable(live_event_names: Sequence[str]) -> None:
    """A venue's seating map (and so its capacity) is frozen while one of its events is
    published, on sale or sold out: inventory was built from it."""
    if live_event_names:
        shown = ", ".join(f"'{name}'" for name in live_event_names[:5])
        more = f" and {len(live_event_names) - 5} more" if len(live_event_names) > 5 else ""
        raise SeatingMapInUse(
            f"The seating map and capacity can't change while events at this venue are "
            f"published or on sale ({shown}{more}); wait until they are completed or "
            "cancelled, or create a new venue.",
            events=list(live_event_names[:50]),
        )


# ---- reviews ----------------------------------------------------------------------------

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
    if _blank(reply) or len(reply) > MAX_REVIEW_LENGTH:
        raise invalid(
            [Problem("reply", f"a reply is 1 to {MAX_REVIEW_LENGTH} characters")],
            what="reply",
        )
    return reply.strip()


# ---- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateVenue:
    details: VenueDetails
    seating: SeatingMap


@dataclass(frozen=True, slots=True)
class CreateEvent:
    venue_id: uuid.UUID
    details: EventDetails


@dataclass(frozen=True, slots=True)
class ChangeStatus:
    status: EventStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PostReview:
    rating: int
    comment: str = ""


MAX_CANCELLATION_REASON_LENGTH = 1_000


def validate_cancellation_reason(reason: str | None) -> str | None:
    if reason is None or _blank(reason):
        return None
    if len(reason) > MAX_CANCELLATION_REASON_LENGTH:
        raise invalid(
            [Problem("reason", f"at most {MAX_CANCELLATION_REASON_LENGTH} characters")],
            what="status change",
        )
    return reason.strip()
