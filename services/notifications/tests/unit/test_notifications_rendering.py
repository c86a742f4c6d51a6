"""Messages from templates: every kind renders, a bad context is a TemplateProblem that says
what is wrong, HTML is escaped, dates are in the event's zone and the reader's language,
amounts in the currency's own decimals, and translations come from the catalog."""

from __future__ import annotations

import base64
import copy
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from icalendar import Calendar

from marquee_notifications.rendering import (
    KINDS,
    TEMPLATES_DIR,
    Renderer,
    TemplateProblem,
)

PUBLIC_URL = "https://tickets.example.org"
RENDERER = Renderer(public_url=PUBLIC_URL + "/")
UNSUBSCRIBE_URL = f"{PUBLIC_URL}/unsubscribe?token=c2lnbmVkLXVuc3Vic2NyaWJl"

EVENT_ID = "0b8f6f3e-6a53-4a4f-9d7e-2c1f0e9a5b17"
EVENT: dict[str, Any] = {
    "event_id": EVENT_ID,
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
# A ticket barcode as booking issues it: "MQ:" and 115 bytes in base32 (docs/decisions/0009).
BARCODE = "MQ:" + base64.b32encode(random.Random(9).randbytes(115)).decode().rstrip("=")
TICKETS = [
    {
        "ticket_id": "5d2c9a7e-1f4b-4c3a-8e6d-9b0a7f1e2c33",
        "barcode": BARCODE,
        "label": "Stalls, row C, seat 12",
        "ticket_type": "Adult",
    },
    {
        "ticket_id": "a7e3b1c9-2d4f-4e6a-9c8b-1f0e2d3c4b55",
        "barcode": None,
        "label": "General admission",
        "ticket_type": "Standing",
    },
]
READER = "camille.martin@example.com"
APOSTROPHE = "\N{RIGHT SINGLE QUOTATION MARK}"  # French typography, and CLDR's

CONTEXTS: dict[str, dict[str, Any]] = {
    "verify-email": {
        "recipient_email": READER,
        "link": f"{PUBLIC_URL}/verify-email?token=vT9xQm2LkP4r&source=mail",
        "expires_at": "2026-03-02T10:00:00+00:00",
        "reason": "registration",
    },
    "password-reset": {
        "recipient_email": READER,
        "link": f"{PUBLIC_URL}/reset-password?token=Zr8KqW3nYt6M",
        "expires_at": "2026-03-01T12:00:00+01:00",
    },
    "password-changed": {
        "recipient_email": READER,
        "changed_at": "2026-03-01T09:15:00+00:00",
        "reason": "changed",
    },
    "email-changed": {
        "recipient_email": READER,
        "new_email": "camille@example.net",
        "changed_at": "2026-03-01T09:15:00+00:00",
    },
    "account-deleted": {"recipient_email": READER, "deleted_at": "2026-03-01T09:15:00+00:00"},
    "order-confirmation": {
        "recipient_email": READER,
        "order_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "event": EVENT,
        "total_minor": 12345,
        "currency": "EUR",
        "tickets": TICKETS,
        "orders_url": f"{PUBLIC_URL}/me/orders",
    },
    "ticket-received": {
        "recipient_email": READER,
        "from_name_or_email": "jules@example.com",
        "event": EVENT,
        "tickets": TICKETS[:1],
    },
    "ticket-transferred": {
        "recipient_email": READER,
        "to_email": "jules@example.com",
        "event": EVENT,
        "ticket_label": "Stalls, row C, seat 12",
    },
    "payment-failed": {
        "recipient_email": READER,
        "order_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "event": EVENT,
        "reason": "The card was declined.",
    },
    "order-expired": {
        "recipient_email": READER,
        "order_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "event": EVENT,
    },
    "refund-issued": {
        "recipient_email": READER,
        "order_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "event": EVENT,
        "amount_minor": 4500,
        "currency": "EUR",
    },
    "event-changed": {
        "recipient_email": READER,
        "event": EVENT,
        "changes": [
            {
                "field": "starts_at",
                "before": "2026-03-13T19:00:00+00:00",
                "after": "2026-03-14T19:00:00+00:00",
            },
            {
                "field": "venue",
                "before": {
                    "id": "v-1",
                    "name": "L'Olympia",
                    "address": "28 boulevard des Capucines",
                    "city": "Paris",
                },
                "after": {
                    "id": "v-2",
                    "name": "Le Zénith",
                    "address": "211 avenue Jean Jaurès",
                    "city": "Paris",
                },
            },
        ],
    },
    "event-cancelled": {
        "recipient_email": READER,
        "event": EVENT,
        "reason": "The artist is ill.",
        "refund": "automatic",
    },
    "event-reminder": {
        "recipient_email": READER,
        "event": EVENT,
        "ticket_count": 2,
        "tickets_url": f"{PUBLIC_URL}/me/tickets",
    },
    "waitroom-turn": {
        "recipient_email": READER,
        "event": EVENT,
        "expires_at": "2026-02-01T09:10:00+00:00",
        "link": f"{PUBLIC_URL}/events/{EVENT_ID}",
    },
    "waitlist-offer": {
        "recipient_email": READER,
        "event": EVENT,
        "quantity": 2,
        "ticket_type": "Adult",
        "expires_at": "2026-02-03T09:00:00+00:00",
        "link": f"{PUBLIC_URL}/events/{EVENT_ID}",
    },
}
KINDS_WITH_TICKETS = {"order-confirmation", "ticket-received"}


def context_of(kind: str, **changes: Any) -> dict[str, Any]:
    context = copy.deepcopy(CONTEXTS[kind])
    context.update(changes)
    return context


def event_with(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(EVENT), **changes}


def test_every_kind_has_a_context_here() -> None:
    assert set(CONTEXTS) == KINDS


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders(kind: str) -> None:
    rendered = RENDERER.render(kind, CONTEXTS[kind], locale="en")
    assert rendered.subject.strip()
    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject
    assert rendered.text.strip()
    assert rendered.text.endswith("\n")
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in rendered.html
    assert READER in rendered.text
    if kind in KINDS_WITH_TICKETS:
        assert [(a.filename, a.content_type) for a in rendered.attachments] == [
            ("tickets.pdf", "application/pdf"),
            ("event.ics", "text/calendar"),
        ]
    else:
        assert rendered.attachments == ()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_subject_stays_one_line_whatever_the_event_name(kind: str) -> None:
    context = context_of(kind)
    if "event" in context:
        context["event"] = event_with(name="Nils Frahm\nMusic for Paris\r\n")
    assert "\n" not in RENDERER.render(kind, context, locale="en").subject


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, field) for kind in sorted(KINDS) for field in sorted(CONTEXTS[kind])],
)
def test_a_missing_field_is_a_template_problem_naming_it(kind: str, field: str) -> None:
    context = context_of(kind)
    del context[field]
    with pytest.raises(TemplateProblem, match=f"'{field}'"):
        RENDERER.render(kind, context, locale="en")


@pytest.mark.parametrize("field", ["name", "starts_at", "time_zone", "venue"])
def test_a_missing_event_field_is_a_template_problem_naming_it(field: str) -> None:
    event = event_with()
    del event[field]
    with pytest.raises(TemplateProblem, match=f"'{field}'"):
        RENDERER.render("event-reminder", context_of("event-reminder", event=event), locale="en")


def test_a_missing_ticket_field_is_a_template_problem() -> None:
    tickets = copy.deepcopy(TICKETS)
    del tickets[0]["barcode"]
    with pytest.raises(TemplateProblem, match="'barcode'"):
        RENDERER.render(
            "order-confirmation", context_of("order-confirmation", tickets=tickets), locale="en"
        )


def test_the_problem_says_where_in_which_template() -> None:
    context = context_of("password-reset")
    del context["link"]
    with pytest.raises(TemplateProblem) as error:
        RENDERER.render("password-reset", context, locale="en")
    assert str(error.value).startswith("password-reset/body.txt, line ")
    assert error.value.__cause__ is not None


@pytest.mark.parametrize("kind", ["order-shipped", "", "../verify-email", "_layout"])
def test_an_unknown_kind_is_a_template_problem(kind: str) -> None:
    with pytest.raises(TemplateProblem, match="unknown message kind"):
        RENDERER.render(kind, {"recipient_email": READER}, locale="en")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("tomorrow at noon", "not an ISO 8601 date"),
        ("2026-03-01T12:00:00", "no UTC offset"),
        ("2026-02-30T12:00:00+00:00", "not an ISO 8601 date"),
        (1772366400, "should be an ISO 8601 date and time, not int"),
        (None, "should be an ISO 8601 date and time, not NoneType"),
    ],
)
def test_a_malformed_date_is_a_template_problem(value: object, reason: str) -> None:
    with pytest.raises(TemplateProblem, match=reason):
        RENDERER.render(
            "password-reset", context_of("password-reset", expires_at=value), locale="en"
        )


def test_a_malformed_event_date_is_a_template_problem() -> None:
    context = context_of("event-reminder", event=event_with(starts_at="14/03/2026 20:00"))
    with pytest.raises(TemplateProblem, match="not an ISO 8601 date"):
        RENDERER.render("event-reminder", context, locale="en")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe", "", None])
def test_an_unknown_time_zone_is_a_template_problem(zone: object) -> None:
    context = context_of("event-reminder", event=event_with(time_zone=zone))
    with pytest.raises(TemplateProblem, match="time zone"):
        RENDERER.render("event-reminder", context, locale="en")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"currency": "EURO"}, "not an ISO 4217 currency"),
        ({"currency": None}, "not an ISO 4217 currency"),
        ({"total_minor": "123.45"}, "whole minor units"),
        ({"total_minor": 123.45}, "whole minor units"),
    ],
)
def test_a_malformed_amount_is_a_template_problem(changes: dict[str, Any], reason: str) -> None:
    context = context_of("order-confirmation", **changes)
    with pytest.raises(TemplateProblem, match=reason):
        RENDERER.render("order-confirmation", context, locale="en")


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("verify-email", {"reason": "password-change"}),
        ("password-changed", {"reason": None}),
        ("event-cancelled", {"refund": "manual"}),
        ("event-changed", {"changes": [{"field": "price", "before": 1, "after": 2}]}),
    ],
)
def test_a_value_no_wording_is_for_is_a_template_problem(
    kind: str, changes: dict[str, Any]
) -> None:
    with pytest.raises(TemplateProblem, match="should be one of"):
        RENDERER.render(kind, context_of(kind, **changes), locale="en")


@pytest.mark.parametrize(
    ("kind", "context"),
    [
        ("verify-email", None),
        ("verify-email", ["recipient_email"]),
        ("event-reminder", context_of("event-reminder", event="Nils Frahm")),
        ("event-reminder", context_of("event-reminder", event={**EVENT, "venue": "Paris"})),
        ("order-confirmation", context_of("order-confirmation", tickets=["a ticket"])),
        ("order-confirmation", context_of("order-confirmation", tickets=[])),
        ("event-changed", context_of("event-changed", changes=[{"field": "venue"}])),
    ],
)
def test_anything_malformed_is_a_template_problem(kind: str, context: Any) -> None:
    with pytest.raises(TemplateProblem):
        RENDERER.render(kind, context, locale="en")


def test_html_is_escaped_and_text_is_not() -> None:
    name = "<script>alert(1)</script>"
    context = context_of("order-confirmation", event=event_with(name=name))
    rendered = RENDERER.render("order-confirmation", context, locale="en")
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert name in rendered.text
    assert name in rendered.subject


def test_values_inside_translated_sentences_are_escaped_too() -> None:
    context = context_of("ticket-received", from_name_or_email='<img src=x onerror="alert(1)">')
    html = RENDERER.render("ticket-received", context, locale="en").html
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


def test_links_are_anchors_in_html_and_lines_of_their_own_in_text() -> None:
    context = CONTEXTS["verify-email"]
    rendered = RENDERER.render("verify-email", context, locale="en")
    assert context["link"] in rendered.text.splitlines()
    assert f'<a href="{context["link"].replace("&", "&amp;")}"' in rendered.html


def test_the_password_changed_message_says_where_to_reset() -> None:
    rendered = RENDERER.render("password-changed", CONTEXTS["password-changed"], locale="en")
    assert f"{PUBLIC_URL}/reset-password" in rendered.text.splitlines()
    assert f'<a href="{PUBLIC_URL}/reset-password"' in rendered.html


def test_event_dates_are_in_the_events_zone() -> None:
    paris = RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale="en_GB")
    assert "Saturday, 14 March 2026, 20:00 \N{EN DASH} 23:30 CET" in paris.text
    new_york = context_of("event-reminder", event=event_with(time_zone="America/New_York"))
    text = RENDERER.render("event-reminder", new_york, locale="en_GB").text
    assert "Saturday, 14 March 2026, 15:00 \N{EN DASH} 18:30 Eastern Daylight Time" in text


def test_event_dates_follow_the_readers_language() -> None:
    english = RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale="en").text
    # CLDR puts a narrow no-break space before AM and PM, so they never wrap apart.
    assert (
        "Saturday, March 14, 2026, 8:00\N{NARROW NO-BREAK SPACE}PM \N{EN DASH} "
        "11:30\N{NARROW NO-BREAK SPACE}PM Central European Standard Time"
    ) in english
    french = RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale="fr").html
    assert (
        f"samedi 14 mars 2026, 20:00 \N{EN DASH} 23:30 heure normale d{APOSTROPHE}Europe centrale"
        in french
    )
    assert '<html lang="fr">' in french
    german = RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale="de-DE").text
    assert "Samstag, 14. März 2026, 20:00 \N{EN DASH} 23:30 MEZ" in german


def test_an_event_over_midnight_shows_both_dates() -> None:
    context = context_of("event-reminder", event=event_with(ends_at="2026-03-15T01:30:00Z"))
    text = RENDERER.render("event-reminder", context, locale="en_GB").text
    assert "Saturday, 14 March 2026, 20:00 CET \N{EN DASH} Sunday, 15 March 2026, 02:30 CET" in text


@pytest.mark.parametrize("locale", ["xx", "not a locale", "", None, "zz-ZZ", 42])
def test_an_unknown_locale_falls_back_to_english(locale: Any) -> None:
    english = RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale="en")
    assert RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale=locale) == english


@pytest.mark.parametrize("locale", ["fr-ZZ", "fr_CA", "FR"])
def test_a_known_language_keeps_the_language(locale: str) -> None:
    text = RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale=locale).text
    assert "samedi 14 mars 2026" in text


def test_a_date_not_about_an_event_is_in_utc() -> None:
    text = RENDERER.render("password-reset", CONTEXTS["password-reset"], locale="en_GB").text
    assert "until Sunday, 1 March 2026, 11:00 UTC." in text


def test_a_deadline_in_a_message_about_an_event_is_in_the_events_zone() -> None:
    text = RENDERER.render("waitroom-turn", CONTEXTS["waitroom-turn"], locale="en_GB").text
    assert "until Sunday, 1 February 2026, 10:10 CET:" in text


def test_a_changed_event_says_what_changed_old_then_new_in_its_zone() -> None:
    text = RENDERER.render("event-changed", CONTEXTS["event-changed"], locale="en_GB").text
    assert (
        "Start:\n  Friday, 13 March 2026, 20:00 CET\n  → Saturday, 14 March 2026, 20:00 CET\n"
    ) in text
    assert (
        "Venue:\n"
        "  L'Olympia, 28 boulevard des Capucines, Paris\n"
        "  → Le Zénith, 211 avenue Jean Jaurès, Paris\n"
    ) in text
    html = RENDERER.render("event-changed", CONTEXTS["event-changed"], locale="en_GB").html
    assert "L&#39;Olympia, 28 boulevard des Capucines, Paris" in html


def test_a_cancelled_event_says_the_refund_is_automatic() -> None:
    rendered = RENDERER.render("event-cancelled", CONTEXTS["event-cancelled"], locale="en")
    for body in (rendered.text, rendered.html):
        assert "refunded automatically, to the payment method you paid with" in body
        assert "nothing you need to do" in body
        assert "The artist is ill." in body
    no_reason = context_of("event-cancelled", reason=None)
    assert "reason" not in RENDERER.render("event-cancelled", no_reason, locale="en").text


def test_a_cancelled_event_that_notifications_never_saw_still_renders() -> None:
    # What the handlers send when the catalog snapshot is missing: UTC and an empty venue.
    event = event_with(
        time_zone="UTC", venue={"name": "", "address": "", "city": "", "country": ""}
    )
    context = context_of("event-cancelled", event=event, reason=None)
    text = RENDERER.render("event-cancelled", context, locale="en_GB").text
    assert "Saturday, 14 March 2026, 19:00 \N{EN DASH} 22:30 UTC" in text
    assert ", ," not in text


def test_money_uses_the_currencys_own_decimals() -> None:
    order = RENDERER.render("order-confirmation", CONTEXTS["order-confirmation"], locale="en")
    assert "Total paid: €123.45" in order.text
    yen = context_of("refund-issued", amount_minor=1000, currency="JPY")
    assert "¥1,000" in RENDERER.render("refund-issued", yen, locale="en").text
    dinar = context_of("refund-issued", amount_minor=12345, currency="KWD")
    assert "12.345" in RENDERER.render("refund-issued", dinar, locale="en").text
    french = RENDERER.render("order-confirmation", CONTEXTS["order-confirmation"], locale="fr")
    assert "123,45\N{NO-BREAK SPACE}€" in french.text


def test_a_refund_of_an_unknown_event_names_the_order() -> None:
    context = context_of("refund-issued", event=None)
    rendered = RENDERER.render("refund-issued", context, locale="en")
    assert rendered.subject == f"Your refund for order {context['order_id']}"
    assert "€45.00" in rendered.text


def test_a_transfer_to_someone_unknown_does_not_name_them() -> None:
    rendered = RENDERER.render(
        "ticket-transferred", context_of("ticket-transferred", to_email=None), locale="en"
    )
    assert "the person you transferred it to" in rendered.text
    assert "None" not in rendered.text


def test_plurals_follow_the_count() -> None:
    one = RENDERER.render("waitlist-offer", context_of("waitlist-offer", quantity=1), locale="en")
    assert "a ticket for Nils Frahm: Music for Paris (Adult) is held for you" in one.text
    two = RENDERER.render("waitlist-offer", CONTEXTS["waitlist-offer"], locale="en")
    assert "2 tickets for Nils Frahm: Music for Paris (Adult) are held for you" in two.text


def test_the_unsubscribe_link_appears_only_when_given() -> None:
    with_link = RENDERER.render(
        "event-reminder", CONTEXTS["event-reminder"], locale="en", unsubscribe_url=UNSUBSCRIBE_URL
    )
    assert UNSUBSCRIBE_URL in with_link.text.splitlines()
    assert f'<a href="{UNSUBSCRIBE_URL}"' in with_link.html
    without = RENDERER.render("event-reminder", CONTEXTS["event-reminder"], locale="en")
    for body in (without.text, without.html):
        assert "unsubscribe" not in body.lower()


def test_the_calendar_file_is_one_entry_per_event_at_its_page() -> None:
    rendered = RENDERER.render("order-confirmation", CONTEXTS["order-confirmation"], locale="en")
    data = {a.filename: a for a in rendered.attachments}["event.ics"].data
    (entry,) = Calendar.from_ical(data).events
    assert entry["UID"] == f"{EVENT_ID}@tickets.example.org"
    assert entry["URL"] == f"{PUBLIC_URL}/events/{EVENT_ID}"


def copy_templates(tmp_path: Path) -> Path:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    return templates


def test_a_loaded_template_is_kept(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    renderer = Renderer(public_url=PUBLIC_URL, templates=templates)
    first = renderer.render("password-reset", CONTEXTS["password-reset"], locale="en")
    (templates / "password-reset" / "subject.txt").write_text("Changed on disk\n")
    again = renderer.render("password-reset", CONTEXTS["password-reset"], locale="en")
    assert again.subject == first.subject


def test_a_broken_template_is_a_template_problem_naming_it(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / "password-reset" / "body.html").write_text("<p>{% if link %}unclosed</p>\n")
    renderer = Renderer(public_url=PUBLIC_URL, templates=templates)
    with pytest.raises(TemplateProblem, match=r"password-reset/body\.html, line 1"):
        renderer.render("password-reset", CONTEXTS["password-reset"], locale="en")


def test_a_missing_template_is_a_template_problem(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / "password-reset" / "body.txt").unlink()
    renderer = Renderer(public_url=PUBLIC_URL, templates=templates)
    with pytest.raises(TemplateProblem, match=r"password-reset/body\.txt"):
        renderer.render("password-reset", CONTEXTS["password-reset"], locale="en")


def test_translations_come_from_the_catalog_next_to_the_templates(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    catalog = Catalog(locale="fr")
    catalog.add("Reset your Marquee password", "Réinitialisez votre mot de passe Marquee")
    catalog.add(
        "The link works once, until %(when)s.",
        "Le lien fonctionne une fois, jusqu\N{RIGHT SINGLE QUOTATION MARK}au %(when)s.",
    )
    folder = tmp_path / "locale" / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.mo").open("wb") as catalog_file:
        write_mo(catalog_file, catalog)
    renderer = Renderer(public_url=PUBLIC_URL, templates=templates)

    french = renderer.render("password-reset", CONTEXTS["password-reset"], locale="fr-FR")
    assert french.subject == "Réinitialisez votre mot de passe Marquee"
    # UTC is "TU" (temps universel) in French.
    assert (
        f"Le lien fonctionne une fois, jusqu{APOSTROPHE}au dimanche 1 mars 2026, 11:00 TU."
        in french.text
    )
    assert "Someone, hopefully you" in french.text  # not translated yet: English
    english = renderer.render("password-reset", CONTEXTS["password-reset"], locale="en")
    assert english.subject == "Reset your Marquee password"
