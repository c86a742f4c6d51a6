"""Seating map validation: every problem named by its path, capacities that add up."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marquee_events.domain import (
    MAX_SEATED_SEATS,
    GeneralAdmissionArea,
    InvalidSeatingMap,
    Row,
    Seat,
    SeatingMap,
    Section,
    seat_ids_by_price_category,
    seating_map_from_document,
    seating_map_to_document,
    validate_seating_map,
)


def row(label: str, *seat_ids: str, category: str | None = "standard") -> Row:
    return Row(label=label, price_category=category, seats=tuple(Seat(id) for id in seat_ids))


def problems_of(error: pytest.ExceptionInfo[InvalidSeatingMap]) -> list[str]:
    errors = error.value.extensions["errors"]
    return [f"{problem['field']}: {problem['message']}" for problem in errors]


SMALL_HALL = SeatingMap(
    sections=(
        Section("Stalls", (row("A", "A-1", "A-2", "A-3"), row("B", "B-1", "B-2"))),
        Section(
            "Balcony",
            (
                Row(
                    label="C",
                    seats=(Seat("C-1", price_category="premium"), Seat("C-2", "premium")),
                ),
            ),
        ),
    ),
    general_admission=(GeneralAdmissionArea("Standing", 100),),
)


def test_a_valid_map_is_summarised() -> None:
    summary = validate_seating_map(SMALL_HALL, capacity=107)
    assert summary.seated_seats == 7
    assert summary.general_admission == {"Standing": 100}
    assert summary.general_admission_capacity == 100
    assert summary.price_categories == ("premium", "standard")
    assert summary.total_places == 107


def test_a_seat_id_used_twice_names_both_places() -> None:
    seating = SeatingMap(
        sections=(
            Section("Stalls", (row("A", "A-11", "A-12"),)),
            Section("Circle", (row("B", "B-1"),)),
            Section(
                "Gallery",
                (
                    *(row(f"R{index}", f"G-{index}-1") for index in range(5)),
                    row("R5", "G-5-1", "G-5-2", "G-5-3", "A-12"),
                ),
            ),
        )
    )
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=13)
    assert (
        "sections[2].rows[5].seats[3]: seat id 'A-12' is used twice (first at "
        "sections[0].rows[0].seats[1])" in error.value.detail
    )
    assert error.value.code == "invalid-seating-map"
    assert problems_of(error)[0].startswith("seating_map.sections[2].rows[5].seats[3]: ")


def test_seat_ids_are_unique_ignoring_case() -> None:
    seating = SeatingMap(sections=(Section("Stalls", (row("A", "A-1", "a-1"),)),))
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=2)
    assert "seat id 'a-1' is used twice (first at sections[0].rows[0].seats[0] as 'A-1')" in (
        error.value.detail
    )


def test_empty_sections_rows_and_maps_are_refused() -> None:
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(
            SeatingMap(sections=(Section("Stalls", (row("A", "A-1"),)), Section("Balcony", ()))),
            capacity=1,
        )
    assert "sections[1]: section 'Balcony' has no rows" in error.value.detail

    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(
            SeatingMap(sections=(Section("Stalls", (row("A", "A-1"), row("B"))),)), capacity=1
        )
    assert "sections[0].rows[1]: row 'B' of section 'Stalls' has no seats" in error.value.detail

    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(SeatingMap(), capacity=1)
    assert "neither sections nor general_admission" in error.value.detail


def test_capacity_must_equal_seats_plus_general_admission() -> None:
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(SMALL_HALL, capacity=110)
    assert problems_of(error) == [
        "capacity: the venue's capacity is 110 but its seating map holds 107 places "
        "(7 seats + 100 general admission); they must be equal"
    ]


def test_every_seat_needs_a_price_category_from_itself_or_its_row() -> None:
    seating = SeatingMap(
        sections=(
            Section(
                "Stalls",
                (
                    Row("A", (Seat("A-1"), Seat("A-2", price_category="vip"))),
                    Row("B", (Seat("B-1"), Seat("B-2", price_category="vip")), "standard"),
                ),
            ),
        )
    )
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=4)
    assert problems_of(error) == [
        "seating_map.sections[0].rows[0].seats[0]: seat 'A-1' has no price category; give it "
        "one, or give row 'A' a default price_category"
    ]


@pytest.mark.parametrize("seat_id", ["", "A 1", "-A1", "A1234567890123456", "Å-1", "A\n1"])
def test_malformed_seat_ids_are_refused(seat_id: str) -> None:
    seating = SeatingMap(sections=(Section("Stalls", (row("A", seat_id),)),))
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=1)
    assert "sections[0].rows[0].seats[0]: seat id" in error.value.detail
    assert "is not valid" in error.value.detail


def test_names_must_be_unique_where_people_use_them() -> None:
    seating = SeatingMap(
        sections=(
            Section("Stalls", (row("A", "A-1"), row("a", "A-2"))),
            Section("stalls ", (row("A", "B-1"),)),
        ),
        general_admission=(GeneralAdmissionArea("Pit", 10), GeneralAdmissionArea("PIT", 0)),
    )
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=13)
    found = problems_of(error)
    assert (
        "seating_map.sections[0].rows[1]: row label 'a' is used twice in section 'Stalls' "
        "(first at sections[0].rows[0])" in found
    )
    assert (
        "seating_map.sections[1]: section name 'stalls ' is used twice (first at sections[0])"
        in found
    )
    assert (
        "seating_map.general_admission[1]: area name 'PIT' is used twice (first at "
        "general_admission[0])" in found
    )
    assert any(
        item.startswith("seating_map.general_admission[1].capacity: area 'PIT' has capacity 0")
        for item in found
    )


def test_a_venue_has_at_most_so_many_seats() -> None:
    seats = tuple(Seat(f"S{index}") for index in range(MAX_SEATED_SEATS + 1))
    seating = SeatingMap(sections=(Section("Field", (Row("1", seats, "standard"),)),))
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=MAX_SEATED_SEATS + 1)
    assert f"at most {MAX_SEATED_SEATS} seats" in error.value.detail


def test_general_admission_only_venues_are_fine() -> None:
    seating = SeatingMap(general_admission=(GeneralAdmissionArea("Field", 50_000),))
    summary = validate_seating_map(seating, capacity=50_000)
    assert summary.seated_seats == 0
    assert summary.price_categories == ()


def test_the_detail_shows_three_problems_and_counts_the_rest() -> None:
    seating = SeatingMap(sections=tuple(Section(f"S{index}", ()) for index in range(6)))
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=1)
    assert "and 4 more, listed in 'errors'" in error.value.detail
    assert len(error.value.extensions["errors"]) == 7


# ---- properties ---------------------------------------------------------------------------

categories = st.sampled_from(["standard", "premium", "restricted-view"])


@st.composite
def valid_maps(draw: st.DrawFn) -> SeatingMap:
    """Valid maps: unique names, unique seat ids, every seat with a category."""
    section_count = draw(st.integers(min_value=0, max_value=4))
    area_count = draw(st.integers(min_value=0 if section_count else 1, max_value=3))
    counter = 0
    sections = []
    for section_index in range(section_count):
        rows = []
        for row_index in range(draw(st.integers(min_value=1, max_value=4))):
            default = draw(st.none() | categories)
            seats = []
            for _ in range(draw(st.integers(min_value=1, max_value=6))):
                counter += 1
                own = draw(categories) if default is None else draw(st.none() | categories)
                seats.append(Seat(f"{section_index}-{row_index}-{counter}", own))
            rows.append(Row(f"R{row_index}", tuple(seats), default))
        sections.append(Section(f"Section {section_index}", tuple(rows)))
    areas = tuple(
        GeneralAdmissionArea(f"Area {index}", draw(st.integers(min_value=1, max_value=5_000)))
        for index in range(area_count)
    )
    return SeatingMap(sections=tuple(sections), general_admission=areas)


def seat_paths(seating: SeatingMap) -> list[tuple[str, Seat]]:
    return [
        (f"sections[{s}].rows[{r}].seats[{i}]", seat)
        for s, section in enumerate(seating.sections)
        for r, a_row in enumerate(section.rows)
        for i, seat in enumerate(a_row.seats)
    ]


def total_places(seating: SeatingMap) -> int:
    return len(seat_paths(seating)) + sum(area.capacity for area in seating.general_admission)


@given(valid_maps())
def test_valid_maps_validate_and_their_counts_add_up(seating: SeatingMap) -> None:
    summary = validate_seating_map(seating, capacity=total_places(seating))
    assert summary.seated_seats == len(seat_paths(seating))
    assert summary.total_places == total_places(seating)
    grouped = seat_ids_by_price_category(seating)
    assert sorted(grouped) == list(summary.price_categories)
    assert sorted(seat for seats in grouped.values() for seat in seats) == sorted(
        seat.id for _, seat in seat_paths(seating)
    )


@given(valid_maps(), st.integers(min_value=1, max_value=100))
def test_any_capacity_other_than_the_total_is_refused(seating: SeatingMap, off_by: int) -> None:
    capacity = total_places(seating) + off_by
    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(seating, capacity=capacity)
    assert [problem["field"] for problem in error.value.extensions["errors"]] == ["capacity"]


@given(valid_maps(), st.data())
@settings(max_examples=200)
def test_a_duplicated_seat_id_is_reported_where_it_repeats(
    seating: SeatingMap, data: st.DataObject
) -> None:
    seats = seat_paths(seating)
    if len(seats) < 2:
        return
    first_index = data.draw(st.integers(min_value=0, max_value=len(seats) - 2))
    later_index = data.draw(st.integers(min_value=first_index + 1, max_value=len(seats) - 1))
    first_path, first_seat = seats[first_index]
    later_path, _ = seats[later_index]
    copied_id = data.draw(st.sampled_from([first_seat.id, first_seat.id.lower()]))
    section, row_, seat = (int(part.split("[")[1].rstrip("]")) for part in later_path.split("."))
    sections = list(seating.sections)
    rows = list(sections[section].rows)
    row_seats = list(rows[row_].seats)
    row_seats[seat] = Seat(copied_id, row_seats[seat].price_category)
    rows[row_] = Row(rows[row_].label, tuple(row_seats), rows[row_].price_category)
    sections[section] = Section(sections[section].name, tuple(rows))
    broken = SeatingMap(tuple(sections), seating.general_admission)

    with pytest.raises(InvalidSeatingMap) as error:
        validate_seating_map(broken, capacity=total_places(broken))
    errors = error.value.extensions["errors"]
    assert [problem["field"] for problem in errors] == [f"seating_map.{later_path}"]
    assert f"used twice (first at {first_path}" in errors[0]["message"]


@given(valid_maps())
def test_maps_round_trip_through_their_stored_document(seating: SeatingMap) -> None:
    assert seating_map_from_document(seating_map_to_document(seating)) == seating
