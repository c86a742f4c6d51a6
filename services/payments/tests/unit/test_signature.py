"""Stripe's webhook signature scheme: ours agrees with stripe's own library both ways, and
every bad header is refused with a reason, never with a crash."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from marquee_payments.providers.base import InvalidWebhook
from marquee_payments.providers.signature import sign_payload, verify_signature

SECRET = "whsec_current_secret"
OLD_SECRET = "whsec_secret_being_rolled"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
BODY = json.dumps(
    {"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}, indent=2
).encode()


def test_a_payload_signed_with_the_secret_is_accepted() -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW)

    verify_signature(BODY, header, [SECRET], now=NOW)


def test_the_header_has_stripes_form() -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW)

    timestamp, signature = header.split(",")
    assert timestamp == f"t={NOW}"
    assert signature.startswith("v1=")
    assert len(signature.removeprefix("v1=")) == 64  # hex SHA-256


def test_a_tampered_payload_is_refused() -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW)

    with pytest.raises(InvalidWebhook, match="no v1 signature") as refused:
        verify_signature(BODY.replace(b"succeeded", b"failed"), header, [SECRET], now=NOW)

    assert "raw bytes" in refused.value.reason


def test_a_payload_signed_with_another_secret_is_refused() -> None:
    header = sign_payload(BODY, "whsec_someone_else", timestamp=NOW)

    with pytest.raises(InvalidWebhook, match="signing secret"):
        verify_signature(BODY, header, [SECRET], now=NOW)


def test_a_forged_timestamp_breaks_the_signature() -> None:
    """The timestamp is signed: moving it forward to beat the replay check fails."""
    signature = sign_payload(BODY, SECRET, timestamp=NOW - 3600).split(",")[1]

    with pytest.raises(InvalidWebhook, match="no v1 signature"):
        verify_signature(BODY, f"t={NOW},{signature}", [SECRET], now=NOW)


def test_while_a_secret_is_rolled_either_signature_is_enough() -> None:
    """Stripe signs with both the old and the new secret during a roll."""
    old = sign_payload(BODY, OLD_SECRET, timestamp=NOW).split(",")[1]
    new = sign_payload(BODY, SECRET, timestamp=NOW).split(",")[1]
    both = f"t={NOW},{old},{new}"

    verify_signature(BODY, both, [SECRET], now=NOW)
    verify_signature(BODY, both, [OLD_SECRET], now=NOW)
    verify_signature(BODY, f"t={NOW},{old}", [SECRET, OLD_SECRET], now=NOW)
    with pytest.raises(InvalidWebhook):
        verify_signature(BODY, f"t={NOW},{old}", [SECRET], now=NOW)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_refused(header: str | None) -> None:
    with pytest.raises(InvalidWebhook, match="header is missing"):
        verify_signature(BODY, header, [SECRET], now=NOW)


def test_a_header_without_v1_is_refused_naming_what_it_had() -> None:
    v0 = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    with pytest.raises(InvalidWebhook, match=r"no v1 signature \(found: v0\)"):
        verify_signature(BODY, f"t={NOW},v0={v0}", [SECRET], now=NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("v1=abc", "no timestamp"),
        (f"t=soon,v1={'0' * 64}", "not a Unix time"),
        (f"t=-5,v1={'0' * 64}", "not a Unix time"),
        (f"t={'9' * 5000},v1={'0' * 64}", "not a Unix time"),
        (f"t={NOW},t={NOW + 1},v1={'0' * 64}", "2 different timestamps"),
        ("garbage", "no timestamp"),
    ],
)
def test_a_malformed_header_is_refused_with_its_reason(header: str, reason: str) -> None:
    with pytest.raises(InvalidWebhook, match=reason):
        verify_signature(BODY, header, [SECRET], now=NOW)


def test_a_replay_outside_the_tolerance_is_refused() -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW - 301)

    with pytest.raises(InvalidWebhook, match="301 seconds old, beyond the 300-second") as refused:
        verify_signature(BODY, header, [SECRET], now=NOW)

    assert "replayed" in refused.value.reason


def test_the_tolerance_edge_is_still_accepted_and_is_configurable() -> None:
    verify_signature(BODY, sign_payload(BODY, SECRET, timestamp=NOW - 300), [SECRET], now=NOW)
    verify_signature(
        BODY,
        sign_payload(BODY, SECRET, timestamp=NOW - 3000),
        [SECRET],
        tolerance_seconds=3600,
        now=NOW,
    )


def test_a_timestamp_far_in_the_future_is_refused() -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW + 3600)

    with pytest.raises(InvalidWebhook, match="3600 seconds in the future"):
        verify_signature(BODY, header, [SECRET], now=NOW)


def test_the_clock_is_read_when_no_now_is_given() -> None:
    with pytest.raises(InvalidWebhook, match="seconds old"):
        verify_signature(BODY, sign_payload(BODY, SECRET, timestamp=NOW - 86400 * 30), [SECRET])


@pytest.mark.parametrize("secrets", [[], [""]])
def test_no_configured_secret_is_our_mistake_not_an_invalid_webhook(secrets: list[str]) -> None:
    with pytest.raises(ValueError, match="no webhook signing secret"):
        verify_signature(BODY, sign_payload(BODY, SECRET, timestamp=NOW), secrets, now=NOW)


# ---- agreement with stripe's own library ----------------------------------------------------


def test_stripe_accepts_what_we_sign() -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW)

    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=None)
    event = stripe.Webhook.construct_event(BODY, header, SECRET, tolerance=0)
    assert event.id == "evt_1"
    assert event.type == "payment_intent.succeeded"


def test_stripe_refuses_what_we_refuse() -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW)

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY + b" ", header, SECRET, tolerance=None)


def test_we_accept_what_stripe_signs() -> None:
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET, timestamp=NOW)

    verify_signature(BODY, header, [SECRET], now=NOW)


def test_we_accept_a_header_built_the_way_stripes_docs_describe() -> None:
    """https://docs.stripe.com/webhooks#verify-manually: HMAC-SHA256 with the endpoint's
    secret over "{t}.{payload}", hex, in ``t=…,v1=…``; test mode adds a v0 entry."""
    signed_payload = f"{NOW}.{BODY.decode()}"
    expected = hmac.new(SECRET.encode(), signed_payload.encode(), hashlib.sha256).hexdigest()
    test_mode_v0 = "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    header = f"t={NOW},v1={expected},v0={test_mode_v0}"

    verify_signature(BODY, header, [SECRET], now=NOW)


@given(body=st.binary(max_size=2000), secret=st.text(min_size=1, max_size=60))
def test_stripe_and_we_agree_on_any_body_and_secret(body: bytes, secret: str) -> None:
    header = sign_payload(body, secret, timestamp=NOW)
    verify_signature(body, header, [secret], now=NOW)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return  # stripe's library only verifies text bodies
    assert header == stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=NOW)


# ---- any header at all ----------------------------------------------------------------------

header_parts = st.one_of(
    st.text(max_size=80),
    st.builds(lambda value: f"t={value}", st.one_of(st.integers(), st.text(max_size=20))),
    st.builds(lambda value: f"v1={value}", st.text(max_size=70)),
    st.just(f"t={NOW}"),
    st.just(sign_payload(BODY, SECRET, timestamp=NOW).split(",")[1]),
)


@given(header=st.one_of(st.none(), st.text(), st.lists(header_parts, max_size=6).map(",".join)))
def test_any_header_is_accepted_or_refused_as_invalid_never_a_crash(header: str | None) -> None:
    reason: str | None = None
    try:
        verify_signature(BODY, header, [SECRET, OLD_SECRET], now=NOW)
    except InvalidWebhook as refused:
        reason = refused.reason
    if reason is None:
        # Accepting means the header really holds our signature and the right time.
        assert header is not None
        assert f"t={NOW}" in header
    else:
        assert reason.strip()


@given(body=st.binary(max_size=500))
def test_only_the_signed_body_is_accepted(body: bytes) -> None:
    header = sign_payload(BODY, SECRET, timestamp=NOW)

    if body == BODY:
        verify_signature(body, header, [SECRET], now=NOW)
    else:
        with pytest.raises(InvalidWebhook):
            verify_signature(body, header, [SECRET], now=NOW)
