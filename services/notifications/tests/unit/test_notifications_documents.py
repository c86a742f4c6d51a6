"""The tickets PDF (a page per ticket, a QR code a phone or door scanner reads back to the
barcode) and the calendar file (the event in its own zone, with that zone's definition)."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from typing import Any

import pypdfium2
import pytest
import zxingcpp
from icalendar import Calendar

from marquee_notifications.documents import event_ics, tickets_pdf

EVENT: dict[str, Any] = {
    "event_id": "0b8f6f3e-6a53-4a4f-9d7e-2c1f0e9a5b17",
    "name": "Nils Frahm: Music for Paris",
    "starts_at": "2026-03-14T19:00:00Z",
    "ends_at": "2026-03-14T22:30:00+00:00",
    "time_zone": "Europe/Paris",
    "venue": {
        "name": "Le Zénith",
        "address": "211 avenue Jean Jaurès",
        "city": "Paris",
        "country": "FR",
    },
}
SCALE = 2
"""Pixels per PDF point when a page is rendered: 144 dpi, a phone camera's view of paper."""
CM = 72 / 2.54
"""PDF points in a centimetre."""


def ticket_barcode(seed: int) -> str:
    """Like booking's: "MQ:" and 115 bytes in base32 (docs/decisions/0009)."""
    return "MQ:" + base64.b32encode(random.Random(seed).randbytes(115)).decode().rstrip("=")


def base64url_barcode(seed: int) -> str:
    return base64.urlsafe_b64encode(random.Random(seed).randbytes(75)).decode().rstrip("=")


def ticket(number: int, barcode: str | None) -> dict[str, Any]:
    return {
        "ticket_id": f"5d2c9a7e-1f4b-4c3a-8e6d-9b0a7f1e2c{number:02d}",
        "barcode": barcode,
        "label": f"Stalls, row C, seat {number}",
        "ticket_type": "Adult",
    }


def pages_of(pdf: bytes) -> list[pypdfium2.PdfPage]:
    return list(pypdfium2.PdfDocument(pdf))


def decoded(page: pypdfium2.PdfPage) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(page.render(scale=SCALE).to_pil())


def text_of(page: pypdfium2.PdfPage) -> str:
    return str(page.get_textpage().get_text_range())


def test_each_page_has_the_qr_of_its_ticket_and_none_without_a_barcode() -> None:
    barcodes = [ticket_barcode(1), None, ticket_barcode(2), base64url_barcode(3)]
    tickets = [ticket(number, barcode) for number, barcode in enumerate(barcodes, start=1)]
    pages = pages_of(tickets_pdf(event=EVENT, tickets=tickets, locale="en"))
    assert len(pages) == len(tickets)
    for page, barcode in zip(pages, barcodes, strict=True):
        assert (page.get_width(), page.get_height()) == pytest.approx((595.28, 841.89), abs=0.1)
        assert [found.text for found in decoded(page)] == ([] if barcode is None else [barcode])


def test_the_qr_is_level_m_version_8_and_big_enough_to_scan() -> None:
    (page,) = pages_of(
        tickets_pdf(event=EVENT, tickets=[ticket(1, ticket_barcode(1))], locale="en")
    )
    (found,) = decoded(page)
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert (found.extra["Version"], found.extra["ECLevel"]) == ("8", "M")
    position = found.position
    symbol_width = (position.top_right.x - position.top_left.x) / SCALE / CM
    # 49 modules of code and 4 of quiet zone on each side: 6 cm in all, about 1 mm a module.
    assert symbol_width == pytest.approx(6 * 49 / 57, rel=0.03)


def test_the_quiet_zone_around_the_qr_is_blank() -> None:
    (page,) = pages_of(
        tickets_pdf(event=EVENT, tickets=[ticket(1, ticket_barcode(1))], locale="en")
    )
    image = page.render(scale=SCALE).to_pil().convert("L")
    (found,) = zxingcpp.read_barcodes(image)
    left, top = found.position.top_left.x, found.position.top_left.y
    right, bottom = found.position.bottom_right.x, found.position.bottom_right.y
    quiet = int(4 * (right - left) / 49)
    edge = 2  # where the code's own edge blurs into the quiet zone
    bands = [
        (left - quiet, top - quiet, right + quiet, top - edge),
        (left - quiet, bottom + edge, right + quiet, bottom + quiet),
        (left - quiet, top - quiet, left - edge, bottom + quiet),
        (right + edge, top - quiet, right + quiet, bottom + quiet),
    ]
    for band in bands:
        darkest, _ = image.crop(band).getextrema()
        assert darkest > 200, band


def test_a_page_says_what_the_ticket_is_for() -> None:
    barcode = ticket_barcode(1)
    (page,) = pages_of(tickets_pdf(event=EVENT, tickets=[ticket(12, barcode)], locale="en_GB"))
    text = text_of(page)
    assert "Nils Frahm: Music for Paris" in text
    assert "Saturday, 14 March 2026, 20:00 \N{EN DASH} 23:30 CET" in text
    assert "Le Zénith, 211 avenue Jean Jaurès, Paris, FR" in text
    assert "Adult" in text
    assert "Stalls, row C, seat 12" in text
    assert "5d2c9a7e-1f4b-4c3a-8e6d-9b0a7f1e2c12" in text
    assert barcode in "".join(text.split())  # typed in by hand when a scanner fails


def test_a_page_without_a_barcode_says_so() -> None:
    (page,) = pages_of(tickets_pdf(event=EVENT, tickets=[ticket(1, None)], locale="en"))
    assert "No barcode in this document" in " ".join(text_of(page).split())


def test_the_date_is_in_the_event_zone_and_the_readers_language() -> None:
    new_york = {**EVENT, "time_zone": "America/New_York"}
    (page,) = pages_of(tickets_pdf(event=new_york, tickets=[ticket(1, None)], locale="fr"))
    assert "samedi 14 mars 2026, 15:00 \N{EN DASH} 18:30" in text_of(page)


def test_the_same_tickets_give_the_same_bytes() -> None:
    tickets = [ticket(1, ticket_barcode(1)), ticket(2, None)]
    first = tickets_pdf(event=EVENT, tickets=tickets, locale="en")
    assert tickets_pdf(event=EVENT, tickets=tickets, locale="en") == first


@pytest.mark.parametrize(
    ("event", "tickets", "reason"),
    [
        (EVENT, [], "at least one ticket"),
        ({**EVENT, "time_zone": "Mars/Olympus_Mons"}, [ticket(1, None)], "unknown time zone"),
        ({**EVENT, "starts_at": "soon"}, [ticket(1, None)], "not an ISO 8601"),
        (EVENT, [{"ticket_id": "t", "label": "GA", "ticket_type": "GA"}], "no 'barcode'"),
        (EVENT, [ticket(1, "")], "barcode"),
    ],
)
def test_a_malformed_ticket_or_event_is_refused(
    event: dict[str, Any], tickets: list[dict[str, Any]], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        tickets_pdf(event=event, tickets=tickets, locale="en")


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Australia/Sydney"])
def test_the_calendar_entry_is_in_the_events_zone(zone: str) -> None:
    event = {**EVENT, "time_zone": zone}
    data = event_ics(event=event, uid="0b8f6f3e@tickets.example.org", url=None, sequence=3)
    calendar = Calendar.from_ical(data)
    assert calendar["METHOD"] == "PUBLISH"
    (entry,) = calendar.events
    start, end = entry["DTSTART"].dt, entry["DTEND"].dt
    assert start.tzinfo.key == zone
    assert end.tzinfo.key == zone
    assert start.astimezone(UTC) == datetime(2026, 3, 14, 19, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 3, 14, 22, 30, tzinfo=UTC)
    assert [timezone["TZID"] for timezone in calendar.timezones] == [zone]
    assert entry["UID"] == "0b8f6f3e@tickets.example.org"
    assert entry["SEQUENCE"] == 3
    assert "DTSTAMP" in entry
    assert "URL" not in entry


def test_the_calendar_entry_says_what_and_where() -> None:
    url = "https://tickets.example.org/events/0b8f6f3e-6a53-4a4f-9d7e-2c1f0e9a5b17"
    data = event_ics(event=EVENT, uid="0b8f6f3e@tickets.example.org", url=url)
    (entry,) = Calendar.from_ical(data).events
    assert entry["SUMMARY"] == "Nils Frahm: Music for Paris"
    assert entry["LOCATION"] == "Le Zénith, 211 avenue Jean Jaurès, Paris, FR"
    assert entry["URL"] == url
    assert entry["SEQUENCE"] == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"time_zone": "Atlantis/Capital"}, "unknown time zone"),
        ({"ends_at": "2026-03-14T18:00:00Z"}, "ends before it starts"),
        ({"starts_at": "2026-03-14 evening"}, "not an ISO 8601"),
    ],
)
def test_a_malformed_event_makes_no_calendar_file(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        event_ics(event={**EVENT, **changes}, uid="0b8f6f3e@tickets.example.org", url=None)
