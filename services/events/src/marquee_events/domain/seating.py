"""Seating maps: sections of rows of seats, general-admission areas, and their checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marquee_events.domain.problems import Problem, check_name, is_blank, problem_list, summarize
from marquee_platform.errors import InvalidInput

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


class InvalidSeatingMap(InvalidInput):
    code = "invalid-seating-map"
    title = "The seating map is not valid"


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
        check_name(self.problems, path, name, what=what, max_length=max_length)

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
        if not is_blank(category) and len(category) <= MAX_PRICE_CATEGORY_LENGTH:
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
            f"The seating map is not valid: {summarize(check.problems)}.",
            errors=problem_list(check.problems, prefix="seating_map."),
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


def seat_layout(seating: SeatingMap) -> list[dict[str, Any]]:
    """A *valid* map's seats as laid out — sections in the organizer's order (their
    ranking), rows from the stage back, seats along each row — each seat with its own or
    its row's price category: what inventory places best-available seats from."""
    return [
        {
            "name": section.name,
            "rows": [
                {
                    "label": row.label,
                    "seats": [
                        {
                            "id": seat.id,
                            "price_category": (_seat_price_category(seat, row) or "").strip(),
                        }
                        for seat in row.seats
                    ],
                }
                for row in section.rows
            ],
        }
        for section in seating.sections
    ]


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
