"""Stripe's webhook signatures, exactly as Stripe makes and checks them.

Stripe sends ``Stripe-Signature: t=<unix seconds>,v1=<hex>`` where the hex is
HMAC-SHA256, keyed with the endpoint's signing secret (``whsec_…``), of
``f"{t}.{raw body}"``. While a secret is being rolled Stripe signs with both the old and
the new one, so a header can carry several ``v1`` entries; test mode also adds a ``v0``
entry, which is not a signature we check. The timestamp is signed too, which is what lets
us refuse a replayed webhook: a captured request is only good for the tolerance window.

The simulated provider signs with :func:`sign_payload`, so ``make dev`` exercises the same
verification as production.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from marquee_payments.providers.base import InvalidWebhook

SIGNATURE_HEADER = "Stripe-Signature"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
"""Stripe's own libraries default to five minutes."""

_TIMESTAMP_DIGITS_MAX = 12
"""Unix seconds have 10 digits until the year 2286; a longer "number" is not a time (and
a huge one would make ``int()`` itself refuse the conversion)."""


def compute_signature(payload: bytes, secret: str, *, timestamp: int) -> str:
    """The hex ``v1`` signature of ``payload`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode("ascii") + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, *, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value Stripe would send for ``payload``."""
    signature = compute_signature(payload, secret, timestamp=timestamp)
    return f"t={timestamp},{SIGNATURE_SCHEME}={signature}"


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: int | None = None,
) -> None:
    """Accept ``payload`` only if one ``v1`` signature in ``header`` matches one of
    ``secrets`` and the signed timestamp is within ``tolerance_seconds`` of ``now``.

    ``payload`` must be the raw body as received: a body parsed and re-serialized has
    different bytes and will not match. Several secrets are accepted so an endpoint keeps
    working while its secret is rolled. Raises :class:`InvalidWebhook` naming what is
    wrong; raises ValueError when no secret is configured (our mistake, not the sender's).
    """
    if not secrets or any(not secret for secret in secrets):
        raise ValueError("no webhook signing secret is configured (whsec_… from Stripe)")
    if header is None or not header.strip():
        raise InvalidWebhook(
            f"the {SIGNATURE_HEADER} header is missing: the request did not come from "
            "Stripe, or a proxy in between dropped the header"
        )
    timestamp, signatures = _parse_header(header)
    expected = [
        compute_signature(payload, secret, timestamp=timestamp).encode("ascii")
        for secret in secrets
    ]
    matched = False
    for candidate in signatures:
        for signature in expected:
            # Every pair is compared, in constant time, so timing tells nothing about
            # how close a forged signature came.
            matched |= hmac.compare_digest(signature, candidate)
    if not matched:
        raise InvalidWebhook(
            f"no {SIGNATURE_SCHEME} signature in the {SIGNATURE_HEADER} header matches the "
            "body with any configured webhook secret: check that the endpoint's signing "
            "secret is the one configured, and that the body is verified as the raw bytes "
            "received (before any JSON parsing)"
        )
    current = int(time.time()) if now is None else now
    age = current - timestamp
    if abs(age) > tolerance_seconds:
        when = f"{age} seconds old" if age > 0 else f"{-age} seconds in the future"
        raise InvalidWebhook(
            f"the signature's timestamp t={timestamp} is {when}, beyond the "
            f"{tolerance_seconds}-second tolerance: a replayed webhook, or a clock out of "
            "sync (Stripe signs every delivery attempt afresh, so its retries carry a "
            "current timestamp)"
        )


def _parse_header(header: str) -> tuple[int, list[bytes]]:
    """The signed timestamp and the ``v1`` signatures (ASCII bytes) of a header."""
    timestamps: list[str] = []
    signatures: list[bytes] = []
    schemes: list[str] = []
    for item in header.split(","):
        key, separator, value = item.strip().partition("=")
        if not separator:
            continue
        if key == "t":
            timestamps.append(value)
        elif key == SIGNATURE_SCHEME:
            # A signature is lower-case hex; anything else cannot match, and comparing
            # bytes keeps compare_digest from refusing non-ASCII text.
            if value.isascii():
                signatures.append(value.encode("ascii"))
        else:
            schemes.append(key[:20])
    if not timestamps:
        raise InvalidWebhook(
            f"the {SIGNATURE_HEADER} header has no timestamp (t=…): it is not a header Stripe sent"
        )
    if len(set(timestamps)) > 1:
        raise InvalidWebhook(
            f"the {SIGNATURE_HEADER} header has {len(set(timestamps))} different timestamps; "
            "Stripe sends exactly one"
        )
    text = timestamps[0]
    if not (text.isascii() and text.isdigit() and len(text) <= _TIMESTAMP_DIGITS_MAX):
        raise InvalidWebhook(
            f"the {SIGNATURE_HEADER} timestamp {text[:40]!r} is not a Unix time in seconds"
        )
    if not signatures:
        found = f" (found: {', '.join(sorted(set(schemes))[:5])})" if schemes else ""
        raise InvalidWebhook(
            f"the {SIGNATURE_HEADER} header has no {SIGNATURE_SCHEME} signature{found}: only "
            f"{SIGNATURE_SCHEME} (HMAC-SHA256) signatures are accepted"
        )
    return int(text), signatures
