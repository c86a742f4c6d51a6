"""Messages from templates: a subject, a plain-text and an HTML body, and for tickets a PDF
and a calendar file, in the reader's language.

Each kind has ``templates/<kind>/subject.txt``, ``body.txt`` and ``body.html``; the bodies
extend ``_layout.txt`` and ``_layout.html`` (the footer, with an unsubscribe link when
there is one). Every sentence is wrapped for translation; catalogs are
``templates/../locale/<lang>/LC_MESSAGES/messages.mo`` (``pybabel extract -F babel.cfg``).

Filters the templates use:

- ``event_time``: an ISO 8601 instant as seen in the event's time zone;
- ``event_dates``: an event's start and end (``Saturday, March 14, 2026, 8:00 PM - 11:00 PM CET``);
- ``moment``: an instant not tied to the event (a link's expiry) in the event's zone when
  the message is about an event, else in UTC;
- ``money(currency)``: minor units in the currency's own decimals (JPY has none);
- ``venue``: a venue's known parts on one line.
"""

from __future__ import annotations

import gettext
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale
from babel.numbers import format_currency, get_currency_precision, is_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from marquee_notifications.documents import (
    event_dates,
    event_ics,
    event_zone,
    format_instant,
    reader_locale,
    required_field,
    tickets_pdf,
    translations_for,
    venue_line,
)
from marquee_notifications.kinds import KINDS

TEMPLATES_DIR = Path(__file__).parent / "templates"

KINDS_WITH_TICKETS = frozenset({"order-confirmation", "ticket-received"})
"""Kinds that carry the tickets (a PDF) and the event (a calendar file)."""

_CHOICES: Mapping[str, Mapping[str, frozenset[str]]] = {
    "verify-email": {"reason": frozenset({"registration", "email-change"})},
    "password-changed": {"reason": frozenset({"changed", "reset"})},
    "event-cancelled": {"refund": frozenset({"automatic"})},
}
"""Fields whose value picks a wording: any other value would silently get the wrong one."""
_CHANGED_FIELDS = frozenset({"starts_at", "ends_at", "venue"})


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    """One line, no newlines."""
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()


class TemplateProblem(Exception):
    """A message that cannot be rendered (unknown kind, a template error, a context field
    missing or malformed): str(error) is the reason, shown to admins on the failed message."""


@dataclass(frozen=True, slots=True)
class _Reader:
    """Who a message is rendered for, as the filters and gettext see it."""

    locale: Locale
    translations: gettext.NullTranslations
    zone: ZoneInfo | None
    """The event's time zone when the message is about an event."""


class Renderer:
    """Renders every kind of message; built once, it keeps every template it loaded."""

    def __init__(self, *, public_url: str, templates: Path | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        self.templates = templates if templates is not None else TEMPLATES_DIR
        self._locale_dir = self.templates.parent / "locale"
        self._calendar_domain = urlsplit(self.public_url).hostname or "marquee"
        environment = Environment(
            loader=FileSystemLoader(self.templates),
            undefined=StrictUndefined,
            autoescape=select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        # Whitespace inside {% trans %} is collapsed, so a msgid does not depend on how a
        # template is indented (babel.cfg extracts with the same setting).
        environment.policies["ext.i18n.trimmed"] = True
        environment.install_gettext_callables(  # type: ignore[attr-defined]
            _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext
        )
        environment.filters.update(
            event_time=_event_time,
            event_dates=_event_dates,
            moment=_moment,
            money=_money,
            venue=_venue,
        )
        self._environment = environment

    def render(
        self,
        kind: str,
        context: Mapping[str, Any],
        *,
        locale: str | None,
        unsubscribe_url: str | None = None,
    ) -> Rendered:
        if kind not in KINDS:
            raise TemplateProblem(f"unknown message kind {kind!r}")
        try:
            return self._render(kind, context, locale=locale, unsubscribe_url=unsubscribe_url)
        except TemplateProblem:
            raise
        except jinja2.TemplateNotFound as error:
            raise TemplateProblem(f"template not found: {error.name}") from error
        except Exception as error:
            raise TemplateProblem(self._describe(error)) from error

    def _render(
        self,
        kind: str,
        context: Mapping[str, Any],
        *,
        locale: str | None,
        unsubscribe_url: str | None,
    ) -> Rendered:
        if not isinstance(context, Mapping):
            raise TemplateProblem(f"the context should be an object, not {type(context).__name__}")
        _check_choices(kind, context)
        reader_language = reader_locale(locale)
        event = context.get("event")
        reader = _Reader(
            locale=reader_language,
            translations=translations_for(str(reader_language), self._locale_dir),
            zone=None if event is None else event_zone(event),
        )
        variables: dict[str, Any] = {
            **context,
            "public_url": self.public_url,
            "unsubscribe_url": unsubscribe_url,
            "locale": str(reader_language).replace("_", "-"),
            "_reader": reader,
        }
        subject = " ".join(self._template(kind, "subject.txt").render(variables).split())
        if not subject:
            raise TemplateProblem(f"{kind}/subject.txt renders to an empty subject")
        variables["subject"] = subject
        text = _tidy_text(self._template(kind, "body.txt").render(variables))
        html = self._template(kind, "body.html").render(variables)
        return Rendered(
            subject=subject,
            text=text,
            html=html,
            attachments=self._attachments(kind, context, locale=str(reader_language)),
        )

    def _template(self, kind: str, name: str) -> jinja2.Template:
        return self._environment.get_template(f"{kind}/{name}")

    def _attachments(
        self, kind: str, context: Mapping[str, Any], *, locale: str
    ) -> tuple[Attachment, ...]:
        if kind not in KINDS_WITH_TICKETS:
            return ()
        event = required_field(context, "event", "the context")
        event_id = required_field(event, "event_id", "the event")
        version = event.get("version")
        pdf = tickets_pdf(
            event=event, tickets=required_field(context, "tickets", "the context"), locale=locale
        )
        calendar = event_ics(
            event=event,
            # One entry per event, whichever message carried it: a later file updates it.
            uid=f"{event_id}@{self._calendar_domain}",
            url=f"{self.public_url}/events/{event_id}",
            sequence=version if isinstance(version, int) and version >= 0 else 0,
        )
        return (
            Attachment("tickets.pdf", "application/pdf", pdf),
            Attachment("event.ics", "text/calendar", calendar),
        )

    def _describe(self, error: Exception) -> str:
        """The error with the template line it happened on, for the admin who reads it."""
        if isinstance(error, KeyError):
            reason = f"the context has no {error.args[0]!r}" if error.args else "missing field"
        else:
            reason = str(error) or type(error).__name__
        templates = self.templates.resolve()
        lines = [
            (Path(frame.filename).resolve(), frame.lineno)
            for frame in traceback.extract_tb(error.__traceback__)
        ]
        if isinstance(error, jinja2.TemplateSyntaxError) and error.filename:
            lines.append((Path(error.filename).resolve(), error.lineno))
        in_templates = [(path, line) for path, line in lines if path.is_relative_to(templates)]
        if not in_templates:
            return reason
        path, line = in_templates[-1]
        return f"{path.relative_to(templates).as_posix()}, line {line}: {reason}"


def _check_choices(kind: str, context: Mapping[str, Any]) -> None:
    for field, allowed in _CHOICES.get(kind, {}).items():
        if field not in context:
            raise TemplateProblem(f"the context has no {field!r}")
        if context[field] not in allowed:
            raise TemplateProblem(
                f"{field} should be one of {', '.join(sorted(allowed))}, not {context[field]!r}"
            )
    if kind == "event-changed":
        for change in context.get("changes") or ():
            changed = change.get("field") if isinstance(change, Mapping) else None
            if changed not in _CHANGED_FIELDS:
                raise TemplateProblem(
                    f"a change's field should be one of {', '.join(sorted(_CHANGED_FIELDS))}, "
                    f"not {changed!r}"
                )


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


# --- what the templates call --------------------------------------------------------------


def _reader(context: Context) -> _Reader:
    reader = context.get("_reader")
    assert isinstance(reader, _Reader), "rendered without a reader"
    return reader


@pass_context
def _gettext(context: Context, message: str) -> str:
    return _reader(context).translations.gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, number: int) -> str:
    return _reader(context).translations.ngettext(singular, plural, number)


@pass_context
def _pgettext(context: Context, message_context: str, message: str) -> str:
    return _reader(context).translations.pgettext(message_context, message)


@pass_context
def _npgettext(
    context: Context, message_context: str, singular: str, plural: str, number: int
) -> str:
    return _reader(context).translations.npgettext(message_context, singular, plural, number)


def _defined(value: object) -> None:
    # A missing field reaches a filter as an Undefined: touching it raises the UndefinedError
    # that names the field, better than "not a date: Undefined".
    if isinstance(value, jinja2.Undefined):
        str(value)


@pass_context
def _event_time(context: Context, value: object) -> str:
    _defined(value)
    reader = _reader(context)
    if reader.zone is None:
        raise ValueError("event_time is for messages about an event, and there is none")
    return format_instant(value, zone=reader.zone, locale=reader.locale)


@pass_context
def _event_dates(context: Context, event: object) -> str:
    _defined(event)
    if not isinstance(event, Mapping):
        raise ValueError(f"event_dates needs an event, not {event!r}")
    return event_dates(event, locale=_reader(context).locale)


@pass_context
def _moment(context: Context, value: object) -> str:
    _defined(value)
    reader = _reader(context)
    return format_instant(value, zone=reader.zone or ZoneInfo("UTC"), locale=reader.locale)


@pass_context
def _money(context: Context, minor_units: object, currency: object) -> str:
    _defined(minor_units)
    _defined(currency)
    if not isinstance(currency, str) or not is_currency(currency):
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    if not isinstance(minor_units, int) or isinstance(minor_units, bool):
        raise ValueError(f"an amount should be whole minor units, not {minor_units!r}")
    amount = Decimal(minor_units).scaleb(-get_currency_precision(currency))
    return format_currency(amount, currency, locale=_reader(context).locale)


def _venue(venue: object) -> str:
    _defined(venue)
    return venue_line(venue)
