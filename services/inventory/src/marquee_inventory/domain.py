"""Inventory rules with no I/O: the seat map, where best-available puts people, sale
windows, and the commands and errors of holds.

Seat geometry comes from the venue's seating map as the organizer listed it: sections
best first (their ranking), rows from the stage back, seats along each row in order.
Two seats are *adjacent* when they are next to each other in one row; a row's *centre
line* is its middle seat.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from marquee_platform.errors import Conflict, InvalidInput, NotFound, PermissionDenied

SELLING_STATUSES = frozenset({"published", "on_sale", "sold_out"})
"""Event statuses in which places may be held (within the sale window)."""


class SeatState(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    SOLD = "sold"


@dataclass(frozen=True, slots=True)
class Seat:
    seat_id: str
    section: str
    section_rank: int
    """0 is the organizer's best section."""
    row_label: str
    row_index: int
    """0 is the row nearest the stage."""
    position: int
    """Index along the row; adjacent seats differ by one."""
    row_length: int
    price_category: str

    @property
    def centre_offset(self) -> float:
        return abs(self.position - (self.row_length - 1) / 2)


@dataclass(frozen=True, slots=True)
class TicketType:
    ticket_type_id: uuid.UUID
    name: str
    kind: str
    """``seated`` or ``general_admission``."""
    price_category: str | None
    capacity: int | None
    """General admission: how many places it sells. Seated: None (its seats decide)."""
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    min_per_order: int
    max_per_order: int

    @property
    def is_seated(self) -> bool:
        return self.kind == "seated"


@dataclass(frozen=True, slots=True)
class Row:
    section: str
    section_rank: int
    row_label: str
    row_index: int
    seats: tuple[Seat, ...]
    """In position order."""


@dataclass(slots=True)
class SeatMap:
    """Every seat of an event, indexed by id and grouped into rows, best rows first."""

    seats: dict[str, Seat]
    rows: list[Row] = field(init=False)

    def __post_init__(self) -> None:
        grouped: dict[tuple[int, int], list[Seat]] = {}
        for seat in self.seats.values():
            grouped.setdefault((seat.section_rank, seat.row_index), []).append(seat)
        self.rows = [
            Row(
                section=members[0].section,
                section_rank=rank,
                row_label=members[0].row_label,
                row_index=index,
                seats=tuple(sorted(members, key=lambda seat: seat.position)),
            )
            for (rank, index), members in sorted(grouped.items())
        ]

    @classmethod
    def from_sections(cls, sections: Iterable[Mapping[str, object]]) -> SeatMap:
        """From the published seating (``[{name, rows: [{label, seats: [{id,
        price_category}]}]}]``, best section first)."""
        seats: dict[str, Seat] = {}
        for rank, section in enumerate(sections):
            rows = section["rows"]
            assert isinstance(rows, list)
            for row_index, row in enumerate(rows):
                row_seats = row["seats"]
                for position, seat in enumerate(row_seats):
                    seats[seat["id"]] = Seat(
                        seat_id=seat["id"],
                        section=str(section["name"]),
                        section_rank=rank,
                        row_label=str(row["label"]),
                        row_index=row_index,
                        position=position,
                        row_length=len(row_seats),
                        price_category=seat["price_category"],
                    )
        return cls(seats)


# ---- best available -------------------------------------------------------------------------


class PlacementRule(StrEnum):
    ADJACENT = "adjacent"
    """All seats side by side in one row."""
    SPLIT = "split"
    """No row had enough adjacent seats: the fewest, best blocks."""


@dataclass(frozen=True, slots=True)
class Placement:
    seats: tuple[Seat, ...]
    rule: PlacementRule

    def explain(self) -> str:
        rows = sorted({(seat.section, seat.row_label) for seat in self.seats})
        where = "; ".join(f"{section} row {row}" for section, row in rows)
        if self.rule is PlacementRule.ADJACENT:
            return (
                f"{len(self.seats)} adjacent seats in {where}: the best section by the "
                "organizer's ranking, then the row nearest the stage, then nearest the "
                "centre line."
            )
        return (
            f"No row had {len(self.seats)} adjacent seats, so they are split into "
            f"{len(rows)} blocks ({where}): the fewest blocks, best sections and rows first."
        )


def _runs(row: Row, free_seats: set[str]) -> list[list[Seat]]:
    """Maximal blocks of free, adjacent seats along a row."""
    runs: list[list[Seat]] = []
    current: list[Seat] = []
    for seat in row.seats:
        free = seat.seat_id in free_seats
        if free and current and seat.position == current[-1].position + 1:
            current.append(seat)
        elif free:
            if current:
                runs.append(current)
            current = [seat]
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def best_available(
    seat_map: SeatMap,
    available: set[str],
    count: int,
    *,
    price_category: str | None = None,
    categories: frozenset[str] | None = None,
    spread: int = 1,
) -> Placement | None:
    """Where ``count`` people should sit among ``available`` seats, or None if there are
    fewer than ``count`` seats left (of ``price_category``; among ``categories``, the ones
    a ticket type sells, when no category is asked for).

    Adjacent seats in one row when any row has them — best section, then nearest row,
    then the block whose middle is nearest the row's centre line — else the fewest,
    best blocks.
    ``spread`` > 1 picks at random among that many best adjacent blocks (of the best
    section and row that has any), for retries after losing a race for the best one.
    """
    if count <= 0:
        raise ValueError("count must be positive")

    def allowed(seat: Seat) -> bool:
        if price_category is not None:
            return seat.price_category == price_category
        return categories is None or seat.price_category in categories

    free = {seat_id for seat_id in available if seat_id in seat_map.seats}
    free = {seat_id for seat_id in free if allowed(seat_map.seats[seat_id])}
    if len(free) < count:
        return None
    candidates: list[tuple[tuple[int, int, float], list[Seat]]] = []
    for row in seat_map.rows:
        if candidates and (row.section_rank, row.row_index) > candidates[0][0][:2]:
            break  # rows come best first: nothing later can beat a block already found
        for run in _runs(row, free):
            for start in range(len(run) - count + 1):
                block = run[start : start + count]
                middle = (block[0].position + block[-1].position) / 2
                offset = abs(middle - (block[0].row_length - 1) / 2)
                candidates.append(((row.section_rank, row.row_index, offset), block))
    if candidates:
        candidates.sort(key=lambda candidate: candidate[0])
        chosen = candidates[0] if spread <= 1 else random.choice(candidates[:spread])  # noqa: S311
        return Placement(tuple(chosen[1]), PlacementRule.ADJACENT)
    return _best_split(seat_map, free, count)


def _best_split(seat_map: SeatMap, free: set[str], count: int) -> Placement:
    """The fewest blocks: take the longest free blocks first (best rows first among equal
    lengths), each trimmed towards its row's centre."""
    blocks: list[tuple[int, int, int, list[Seat]]] = []
    for order, row in enumerate(seat_map.rows):
        for run in _runs(row, free):
            blocks.append((-len(run), row.section_rank, order, run))
    blocks.sort(key=lambda block: block[:3])
    chosen: list[Seat] = []
    for _, _, _, run in blocks:
        wanted = count - len(chosen)
        if wanted <= 0:
            break
        if len(run) <= wanted:
            chosen.extend(run)
            continue
        centre = (run[0].row_length - 1) / 2
        start = min(
            range(len(run) - wanted + 1),
            key=lambda at: abs((run[at].position + run[at + wanted - 1].position) / 2 - centre),
        )
        chosen.extend(run[start : start + wanted])
    return Placement(tuple(chosen), PlacementRule.SPLIT)


# ---- sale windows -----------------------------------------------------------------------------


def sale_window_problem(
    ticket_type: TicketType,
    *,
    event_sale_starts_at: datetime | None,
    event_sale_ends_at: datetime | None,
    now: datetime,
) -> str | None:
    """Why ``ticket_type`` can't be held now, or None if its sale is open."""
    starts = ticket_type.sale_starts_at or event_sale_starts_at
    ends = ticket_type.sale_ends_at or event_sale_ends_at
    if starts is not None and now < starts:
        return f"Sales of {ticket_type.name} open at {starts.isoformat()}."
    if ends is not None and now >= ends:
        return f"Sales of {ticket_type.name} closed at {ends.isoformat()}."
    return None


# ---- holds --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeatRequest:
    seat_id: str
    ticket_type_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class HoldPlaces:
    """Hold these exact places for ``user_id`` (after best-available chose seats)."""

    event_id: uuid.UUID
    user_id: str
    seats: Sequence[tuple[str, uuid.UUID]] = ()
    """(seat id, ticket type id)."""
    general_admission: Sequence[tuple[uuid.UUID, int]] = ()
    """(ticket type id, quantity)."""


def new_hold_id() -> str:
    """Unguessable: 128 random bits, URL-safe."""
    import secrets

    return "hld_" + secrets.token_urlsafe(16)


class EventNotSelling(Conflict):
    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail, code=code)


class PlacesUnavailable(Conflict):
    """Someone else holds or bought some of the places; nothing was held."""

    def __init__(self, detail: str, *, left: Mapping[str, int]) -> None:
        super().__init__(detail, code="places-unavailable", left=dict(left))


class HoldNotFound(NotFound):
    def __init__(self, hold_id: str) -> None:
        super().__init__(f"There is no live hold {hold_id} of yours.", code="hold-not-found")


class AdmissionRequired(PermissionDenied):
    """The event sells through the waiting room and the request carries no admission."""

    def __init__(self, event_id: uuid.UUID) -> None:
        super().__init__(
            "This event's sale goes through the waiting room: join the queue at "
            f"POST /api/v1/waitroom/events/{event_id}/queue and send the admission token "
            "you receive in the Admission-Token header.",
            code="admission-required",
        )


class AdmissionInvalid(PermissionDenied):
    """The admission token does not admit this caller to this event; ``reason`` is one of
    ``expired``, ``other-account``, ``other-event``, ``bad-signature`` (or an unknown
    key) and ``malformed``."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, code="admission-invalid", reason=reason)


def bad_request(message: str, *, field_path: str, code: str = "invalid-hold") -> InvalidInput:
    return InvalidInput(
        message,
        code=code,
        errors=[{"location": "body", "field": field_path, "message": message, "kind": code}],
    )
