"""Attachments of ticket messages: a PDF with one page per ticket (its QR code for the door)
and an iCalendar file that puts the event in the holder's calendar.

Also the helpers both attachments and the message templates use to show a date: in the
event's time zone, in the reader's language, with the zone named, so that a person
travelling to an event never has to guess whose 20:00 it is.

The QR code follows ``docs/decisions/0009-ticket-barcodes.md``: error correction level M,
a quiet zone of 4 modules; 6 cm wide on paper, about 1 mm a module for a ticket barcode.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_time, get_timezone_name
from babel.support import Translations
from icalendar import Calendar, Event
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas

DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
"""Compiled translations, ``<lang>/LC_MESSAGES/messages.mo`` (none shipped: English)."""

QR_SIZE = 6 * cm
"""The QR code with its quiet zone, on paper."""
QR_QUIET_ZONE_MODULES = 4
QR_ERROR_CORRECTION = "M"

VENUE_FIELDS = ("name", "address", "city", "country")
RANGE_SEPARATOR = " \N{EN DASH} "
"""Between the start and the end of an event, in every language."""


@dataclass(frozen=True, slots=True)
class _Fonts:
    """A font with glyphs for most languages when the system has one (DejaVu Sans), else
    the PDF base fonts, which show only Western European letters."""

    regular: str
    bold: str


# --- dates and places, for the attachments and the templates ------------------------------


def reader_locale(locale: object) -> Locale:
    """The Babel locale of a reader's preference (``fr``, ``pt-BR``, ``de_CH``): one Babel
    does not know falls back to its language, then to English."""
    return _parse_locale(locale.strip() if isinstance(locale, str) else "")


@functools.lru_cache(maxsize=256)
def _parse_locale(locale: str) -> Locale:
    if locale:
        tag = locale.replace("-", "_")
        for candidate in (tag, tag.split("_")[0]):
            try:
                return Locale.parse(candidate)
            except (ValueError, TypeError, UnknownLocaleError):
                continue
    return Locale.parse(DEFAULT_LOCALE)


@functools.lru_cache(maxsize=256)
def translations_for(locale: str, directory: Path = LOCALE_DIR) -> gettext.NullTranslations:
    """The catalog of ``locale`` from ``directory``, or no translation (English) when there
    is none; ``fr_CA`` finds ``fr`` if that is all there is."""
    return Translations.load(str(directory), locales=[locale])


def parse_instant(value: object, *, what: str = "a date") -> datetime:
    """An ISO 8601 date and time with its UTC offset, as every date in a context is."""
    if not isinstance(value, str):
        raise ValueError(f"{what} should be an ISO 8601 date and time, not {type(value).__name__}")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} is not an ISO 8601 date and time: {value!r}") from None
    if instant.utcoffset() is None:
        raise ValueError(f"{what} has no UTC offset, so it names no instant: {value!r}")
    return instant


def time_zone(name: object) -> ZoneInfo:
    """The IANA zone an event takes place in (``Europe/Paris``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a time zone should be an IANA name, not {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


def event_zone(event: Mapping[str, Any]) -> ZoneInfo:
    return time_zone(required_field(event, "time_zone", "the event"))


def format_instant(value: object, *, zone: ZoneInfo, locale: Locale) -> str:
    """``Saturday, 14 March 2026, 20:00 CET`` (en_GB): the full date, the time the way the
    reader's language writes it, and the zone, all as seen in ``zone``."""
    local = parse_instant(value).astimezone(zone)
    time_text = format_time(local, _time_pattern(locale), tzinfo=zone, locale=locale)
    return _with_date(local, f"{time_text} {zone_label(local, locale)}", zone, locale)


def format_span(starts_at: object, ends_at: object, *, zone: ZoneInfo, locale: Locale) -> str:
    """When an event takes place: ``Saturday, 14 March 2026, 20:00 - 23:00 CET`` (an en
    dash), or both full dates when it ends on another day."""
    start = parse_instant(starts_at, what="the start").astimezone(zone)
    end = parse_instant(ends_at, what="the end").astimezone(zone)
    start_label, end_label = zone_label(start, locale), zone_label(end, locale)
    if start.date() != end.date() or start_label != end_label:
        return (
            format_instant(starts_at, zone=zone, locale=locale)
            + RANGE_SEPARATOR
            + format_instant(ends_at, zone=zone, locale=locale)
        )
    pattern = _time_pattern(locale)
    times = (
        format_time(start, pattern, tzinfo=zone, locale=locale)
        + RANGE_SEPARATOR
        + f"{format_time(end, pattern, tzinfo=zone, locale=locale)} {end_label}"
    )
    return _with_date(start, times, zone, locale)


def event_dates(event: Mapping[str, Any], *, locale: Locale) -> str:
    """When ``event`` takes place, in its own time zone."""
    return format_span(
        required_field(event, "starts_at", "the event"),
        required_field(event, "ends_at", "the event"),
        zone=event_zone(event),
        locale=locale,
    )


def zone_label(local: datetime, locale: Locale) -> str:
    """``CET``, ``EDT``; the zone's name where the language has no abbreviation for it
    (``heure normale d'Europe centrale``): an offset like ``+0100`` names no place."""
    short = get_timezone_name(local, "short", locale=locale)
    if any(character.isalpha() for character in short):
        return short
    return get_timezone_name(local, "long", locale=locale)


def venue_line(venue: object) -> str:
    """``Le Zénith, 211 avenue Jean Jaurès, Paris, FR``: the parts that are known."""
    if not isinstance(venue, Mapping):
        raise ValueError(f"a venue should be an object with a name and an address, not {venue!r}")
    parts = (venue.get(key) for key in VENUE_FIELDS)
    return ", ".join(str(part).strip() for part in parts if part and str(part).strip())


def _time_pattern(locale: Locale) -> str:
    return str(locale.time_formats["short"].pattern)


def _with_date(local: datetime, time_text: str, zone: ZoneInfo, locale: Locale) -> str:
    # The language's own way to join a date and a time ("{1}, {0}", "{1} {0}", "{1} 'à' {0}"),
    # with the time already written, so it goes in as a quoted literal.
    literal = "'" + time_text.replace("'", "''") + "'"
    pattern = (
        str(locale.datetime_formats["full"])
        .replace("{1}", str(locale.date_formats["full"].pattern))
        .replace("{0}", literal)
    )
    return format_datetime(local, pattern, tzinfo=zone, locale=locale)


def required_field(mapping: Mapping[str, Any], key: str, what: str) -> Any:
    """``mapping[key]``, or an error that says which part of a context lacks what."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{what} should be an object, not {mapping!r}")
    if key not in mapping:
        raise ValueError(f"{what} has no {key!r}")
    return mapping[key]


# --- the tickets PDF ----------------------------------------------------------------------


def tickets_pdf(
    *, event: Mapping[str, Any], tickets: Sequence[Mapping[str, Any]], locale: str | None
) -> bytes:
    """One A4 page per ticket: the event, when and where, the ticket, and its QR code (a
    ticket without a barcode says where to find it instead). The same tickets give the
    same bytes."""
    if not tickets:
        raise ValueError("a tickets PDF needs at least one ticket")
    reader = reader_locale(locale)
    _ = translations_for(str(reader)).gettext
    name = str(required_field(event, "name", "the event"))
    when = event_dates(event, locale=reader)
    where = venue_line(required_field(event, "venue", "the event"))
    fonts = _fonts()

    buffer = io.BytesIO()
    # invariant: no creation time or random document id, so a ticket reprints identically.
    canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1)
    canvas.setTitle(_("Tickets: %(event)s") % {"event": name})
    canvas.setAuthor("Marquee")
    canvas.setCreator("Marquee")
    for number, ticket in enumerate(tickets, start=1):
        what = f"ticket {number}"
        barcode = required_field(ticket, "barcode", what)
        if barcode is not None and (not isinstance(barcode, str) or not barcode.strip()):
            raise ValueError(f"the barcode of {what} should be text or null")
        _ticket_page(
            canvas,
            fonts=fonts,
            gettext=_,
            header=_("Ticket %(number)d of %(count)d") % {"number": number, "count": len(tickets)},
            event_name=name,
            when=when,
            where=where,
            ticket_type=str(required_field(ticket, "ticket_type", what) or ""),
            label=str(required_field(ticket, "label", what) or ""),
            ticket_id=str(required_field(ticket, "ticket_id", what)),
            barcode=barcode,
        )
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _ticket_page(
    canvas: Canvas,
    *,
    fonts: _Fonts,
    gettext: Any,
    header: str,
    event_name: str,
    when: str,
    where: str,
    ticket_type: str,
    label: str,
    ticket_id: str,
    barcode: str | None,
) -> None:
    _ = gettext
    page_width, page_height = A4
    margin = 2 * cm
    width = page_width - 2 * margin
    y = page_height - margin

    canvas.setFillColor(colors.HexColor("#6b7280"))
    canvas.setFont(fonts.bold, 9)
    canvas.drawString(margin, y, "MARQUEE")
    canvas.setFont(fonts.regular, 9)
    canvas.drawRightString(page_width - margin, y, header)
    canvas.setFillColor(colors.black)
    y -= 40
    y = _paragraph(canvas, event_name, x=margin, y=y, width=width, font=fonts.bold, size=22)
    y -= 6
    y = _paragraph(canvas, when, x=margin, y=y, width=width, font=fonts.regular, size=12)
    if where:
        y = _paragraph(canvas, where, x=margin, y=y, width=width, font=fonts.regular, size=12)
    y -= 10
    canvas.setStrokeColor(colors.HexColor("#d1d5db"))
    canvas.line(margin, y, page_width - margin, y)
    y -= 28
    if ticket_type:
        y = _paragraph(canvas, ticket_type, x=margin, y=y, width=width, font=fonts.bold, size=15)
    if label:
        y = _paragraph(canvas, label, x=margin, y=y, width=width, font=fonts.regular, size=13)

    y -= 16
    left = (page_width - QR_SIZE) / 2
    bottom = y - QR_SIZE
    if barcode is None:
        canvas.setStrokeColor(colors.HexColor("#9ca3af"))
        canvas.setDash(4, 3)
        canvas.roundRect(left, bottom, QR_SIZE, QR_SIZE, 8)
        canvas.setDash()
        _paragraph(
            canvas,
            _(
                "No barcode in this document: show this ticket from your Marquee account "
                "at the door."
            ),
            x=left + 14,
            y=bottom + QR_SIZE / 2 + 14,
            width=QR_SIZE - 28,
            font=fonts.regular,
            size=10,
            centered=True,
        )
        y = bottom - 16
    else:
        _draw_qr(canvas, barcode, left=left, bottom=bottom)
        # The text under the code is for a person typing it in when a scanner fails.
        y = _code_lines(canvas, barcode, center=page_width / 2, y=bottom, width=QR_SIZE * 1.6)
        y -= 18
    canvas.setFont(fonts.regular, 9)
    canvas.setFillColor(colors.HexColor("#374151"))
    canvas.drawCentredString(
        page_width / 2, y, _("Ticket ID: %(ticket_id)s") % {"ticket_id": ticket_id}
    )
    canvas.setFillColor(colors.black)
    if barcode is not None:
        _paragraph(
            canvas,
            _(
                "Show this code at the entrance, printed or on your phone. Keep it to "
                "yourself: anyone who has it can use this ticket."
            ),
            x=margin,
            y=margin + 24,
            width=width,
            font=fonts.regular,
            size=10,
        )


def _draw_qr(canvas: Canvas, barcode: str, *, left: float, bottom: float) -> None:
    # The widget's box includes the quiet zone: QR_SIZE is the code with its white margin.
    widget = QrCodeWidget(
        barcode,
        barLevel=QR_ERROR_CORRECTION,
        barBorder=QR_QUIET_ZONE_MODULES,
        barWidth=QR_SIZE,
        barHeight=QR_SIZE,
    )
    drawing = Drawing(QR_SIZE, QR_SIZE)
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, left, bottom)


def _code_lines(canvas: Canvas, code: str, *, center: float, y: float, width: float) -> float:
    size = 6.5
    per_line = max(1, int(width // pdfmetrics.stringWidth("M", "Courier", size)))
    canvas.setFont("Courier", size)
    canvas.setFillColor(colors.HexColor("#374151"))
    for start in range(0, len(code), per_line):
        y -= size + 2
        canvas.drawCentredString(center, y, code[start : start + per_line])
    canvas.setFillColor(colors.black)
    return y


def _paragraph(
    canvas: Canvas,
    text: str,
    *,
    x: float,
    y: float,
    width: float,
    font: str,
    size: float,
    centered: bool = False,
) -> float:
    """Draws ``text`` wrapped to ``width`` from ``y`` down; returns the next line's y."""
    canvas.setFont(font, size)
    for line in simpleSplit(text, font, size, width):
        y -= size * 1.25
        if centered:
            canvas.drawCentredString(x + width / 2, y, line)
        else:
            canvas.drawString(x, y, line)
    return y


@functools.cache
def _fonts() -> _Fonts:
    try:
        pdfmetrics.registerFont(TTFont("MarqueeSans", "DejaVuSans.ttf"))
        pdfmetrics.registerFont(TTFont("MarqueeSans-Bold", "DejaVuSans-Bold.ttf"))
    except TTFError:
        return _Fonts("Helvetica", "Helvetica-Bold")
    return _Fonts("MarqueeSans", "MarqueeSans-Bold")


# --- the calendar file --------------------------------------------------------------------


def event_ics(*, event: Mapping[str, Any], uid: str, url: str | None, sequence: int = 0) -> bytes:
    """An iCalendar file (METHOD:PUBLISH) with the event in its own time zone and that
    zone's VTIMEZONE, so calendars show it right wherever the holder is. ``uid`` and a
    growing ``sequence`` let a later file update the same entry."""
    if not uid:
        raise ValueError("a calendar entry needs a uid")
    if sequence < 0:
        raise ValueError(f"a calendar sequence is never negative, not {sequence}")
    zone = event_zone(event)
    start = parse_instant(required_field(event, "starts_at", "the event"), what="the start")
    end = parse_instant(required_field(event, "ends_at", "the event"), what="the end")
    if end < start:
        raise ValueError("the event ends before it starts")
    calendar = Calendar.new(prodid="-//Marquee//Notifications//EN", method="PUBLISH")
    calendar.pop("UID", None)  # a new random one per file: it would identify nothing
    calendar.add_component(
        Event.new(
            uid=uid,
            sequence=sequence,
            stamp=datetime.now(UTC),
            summary=str(required_field(event, "name", "the event")),
            start=start.astimezone(zone),
            end=end.astimezone(zone),
            location=venue_line(required_field(event, "venue", "the event")) or None,
            url=url,
        )
    )
    # Only the transitions around the event: the whole 1970-2038 history of a zone is
    # kilobytes that no calendar needs.
    calendar.add_missing_timezones(
        first_date=(start - timedelta(days=366)).date(),
        last_date=(end + timedelta(days=366)).date(),
    )
    return bytes(calendar.to_ical())
