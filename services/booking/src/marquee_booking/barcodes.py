"""Ticket barcodes: a signed token that a door scanner checks offline with the event's
public key.

A barcode is ``MQ:`` followed by RFC 4648 base32 (upper case, no padding) of 115 bytes: a
fixed layout of the claims (format version, ticket, event, holder, ticket version) and an
Ed25519 signature over them. Base32 keeps the text in the QR alphanumeric mode, which
packs 5.5 bits into a character where byte mode spends 8, and survives scanners that
change letter case. Docs: ``docs/decisions/0009-ticket-barcodes.md``.

The barcode says nothing about whether the ticket is still good: revocation bumps the
ticket's version and publishes it on the event's revocation list, which the caller checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import uuid
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from marquee_platform.errors import InvalidInput

BARCODE_PREFIX = "MQ:"
"""Tells a Marquee ticket from any other QR code (a URL, another vendor's ticket) before
anything is decoded, so the scanner can say "not one of ours" rather than "forged"."""

FORMAT_VERSION = 1
"""First byte of the payload; a new layout takes a new number and readers keep the old."""

SIGNATURE_CONTEXT = b"marquee-ticket-v1"
"""Prepended to what is signed (and never sent), so an event key's signature over a
barcode can never be passed off as a signature over anything else, nor the reverse."""

MAX_TICKET_VERSION = 0xFFFF
"""The version is two bytes: 65,535 transfers or reissues of one ticket is plenty, and each
byte costs 1.6 characters in every QR code."""

PUBLIC_KEY_LENGTH = 32
PRIVATE_KEY_LENGTH = 32

_CLAIMS_LAYOUT = struct.Struct(">B16s16s16sH")
"""Format version, ticket id, event id, holder id (UUIDs in RFC 9562 byte order), ticket
version; big-endian, no padding: 51 bytes."""

_SIGNATURE_LENGTH = 64
_SIGNED_LENGTH = _CLAIMS_LAYOUT.size + _SIGNATURE_LENGTH

# 115 bytes are exactly 184 base32 characters: no padding and no spare bits, so every
# character carries signed data and no two texts decode to the same barcode.
assert _SIGNED_LENGTH * 8 % 5 == 0
BARCODE_BODY_LENGTH = _SIGNED_LENGTH * 8 // 5
BARCODE_LENGTH = len(BARCODE_PREFIX) + BARCODE_BODY_LENGTH

_BASE32_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_BASE32_READABLE = _BASE32_ALPHABET | frozenset("abcdefghijklmnopqrstuvwxyz")
_BASE64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_PUBLIC_KEY_TEXT_LENGTH = 43
_SHOWN_BAD_CHARACTERS = 8


# ---- claims and keys ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BarcodeClaims:
    """What a barcode asserts, signed by the event's key."""

    ticket_id: uuid.UUID
    event_id: uuid.UUID
    holder_id: uuid.UUID
    """The holder's auth user id: opaque, so a barcode carries no personal data."""
    version: int
    """0..65535; bumped on every transfer or reissue so older barcodes can be revoked."""

    def __post_init__(self) -> None:
        if not 0 <= self.version <= MAX_TICKET_VERSION:
            raise ValueError(
                f"a ticket version is 0..{MAX_TICKET_VERSION}, not {self.version}: "
                "the barcode has two bytes for it"
            )


def public_key_id(public_key: bytes) -> str:
    """First 8 bytes of the key's SHA-256 in hex: short enough for logs and scanner
    screens, long enough that two events' keys never share one by accident."""
    return hashlib.sha256(public_key).digest()[:8].hex()


@dataclass(frozen=True, slots=True)
class EventKeyPair:
    """One event's Ed25519 key pair: a stolen key forges tickets for that event only."""

    private_key: bytes = field(repr=False)
    """The 32-byte Ed25519 seed. Kept out of ``repr`` so it never lands in a log."""
    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.private_key) != PRIVATE_KEY_LENGTH:
            raise ValueError(f"an Ed25519 private key is 32 bytes, not {len(self.private_key)}")
        derived = Ed25519PrivateKey.from_private_bytes(self.private_key).public_key()
        # A pair that does not match would sign barcodes that no scanner accepts.
        if derived.public_bytes_raw() != self.public_key:
            raise ValueError("the public key does not belong to the private key")

    @property
    def key_id(self) -> str:
        return public_key_id(self.public_key)

    @classmethod
    def generate(cls) -> EventKeyPair:
        return cls.from_private_key(Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_private_key(cls, private_key: bytes) -> EventKeyPair:
        """Rebuild the pair from the stored seed, the only part that needs storing."""
        if len(private_key) != PRIVATE_KEY_LENGTH:
            raise ValueError(f"an Ed25519 private key is 32 bytes, not {len(private_key)}")
        public_key = Ed25519PrivateKey.from_private_bytes(private_key).public_key()
        return cls(private_key=private_key, public_key=public_key.public_bytes_raw())


# ---- errors ---------------------------------------------------------------------------------


class BarcodeError(InvalidInput):
    """Base of every refusal of a scanned barcode or a downloaded key; ``code`` says which."""

    code = "barcode-error"
    title = "The ticket barcode cannot be accepted"


class MalformedBarcode(BarcodeError):
    """Not decodable as a Marquee barcode at all: a misread, a truncated scan, another
    vendor's code, or a format this reader does not know."""

    code = "malformed-barcode"
    title = "Not a readable ticket barcode"


class ForgedBarcode(BarcodeError):
    """Decodes, but the event's key did not sign it: altered, invented, or signed with
    another event's key."""

    code = "forged"
    title = "The ticket barcode is not genuine"


class BarcodeForOtherEvent(BarcodeError):
    """A well-formed barcode naming another event. Decided before the signature, because
    the scanner has only this event's key; whether it is genuine does not matter, the
    holder is turned away either way."""

    code = "other-event"
    title = "The ticket is for another event"

    def __init__(self, detail: str, *, event_id: uuid.UUID) -> None:
        super().__init__(detail, event_id=str(event_id))
        self.event_id = event_id


class MalformedPublicKey(BarcodeError):
    code = "malformed-public-key"
    title = "Not a readable event public key"


# ---- barcodes -------------------------------------------------------------------------------


def sign_barcode(claims: BarcodeClaims, private_key: bytes) -> str:
    """The barcode text for ``claims``. Ed25519 is deterministic, so signing the same claims
    again (a reprint, a resent email) gives the same text."""
    if len(private_key) != PRIVATE_KEY_LENGTH:
        raise ValueError(f"an Ed25519 private key is 32 bytes, not {len(private_key)}")
    payload = _CLAIMS_LAYOUT.pack(
        FORMAT_VERSION,
        claims.ticket_id.bytes,
        claims.event_id.bytes,
        claims.holder_id.bytes,
        claims.version,
    )
    signature = Ed25519PrivateKey.from_private_bytes(private_key).sign(SIGNATURE_CONTEXT + payload)
    return BARCODE_PREFIX + base64.b32encode(payload + signature).decode("ascii")


def read_barcode(text: str) -> BarcodeClaims:
    """The claims of a barcode WITHOUT checking its signature: only for deciding which key
    to check it with, or that it belongs to another event. Never admit on this alone."""
    payload, _signature = _decode_barcode(text)
    return _claims_from_payload(payload)


def verify_barcode(text: str, public_key: bytes) -> BarcodeClaims:
    """The claims of a barcode whose signature ``public_key`` verifies.

    Raises MalformedBarcode or ForgedBarcode for any text; ValueError only if the key itself
    is not 32 bytes (the device's configuration, not the scan, is wrong).
    """
    verifier = _load_public_key(public_key)
    payload, signature = _decode_barcode(text)
    try:
        verifier.verify(signature, SIGNATURE_CONTEXT + payload)
    except InvalidSignature:
        raise ForgedBarcode(
            "the signature does not match this event's key: the barcode was altered, "
            "invented, or signed for another event"
        ) from None
    return _claims_from_payload(payload)


def verify_barcode_for_event(text: str, *, event_id: uuid.UUID, public_key: bytes) -> BarcodeClaims:
    """What a door scanner at ``event_id`` does: malformed, then other event (from the
    unverified payload, since only this event's key is at hand), then forged. Revocation
    and re-entry are the caller's, from the claims returned."""
    verifier = _load_public_key(public_key)
    payload, signature = _decode_barcode(text)
    claims = _claims_from_payload(payload)
    if claims.event_id != event_id:
        raise BarcodeForOtherEvent(
            f"this ticket is for event {claims.event_id}, not {event_id}",
            event_id=claims.event_id,
        )
    try:
        verifier.verify(signature, SIGNATURE_CONTEXT + payload)
    except InvalidSignature:
        raise ForgedBarcode(
            "the signature does not match this event's key: the barcode was altered or invented"
        ) from None
    return claims


def _decode_barcode(text: str) -> tuple[bytes, bytes]:
    """Payload and signature, or MalformedBarcode saying what is wrong. Tolerates what
    scanners do to text: surrounding whitespace and lower case."""
    candidate = text.strip()
    if candidate[: len(BARCODE_PREFIX)].upper() != BARCODE_PREFIX:
        raise MalformedBarcode(
            f"not a Marquee ticket barcode: it should start with {BARCODE_PREFIX!r}"
        )
    body = candidate[len(BARCODE_PREFIX) :]
    if not body:
        raise MalformedBarcode(f"the barcode has nothing after {BARCODE_PREFIX!r}")
    unreadable = sorted(set(body) - _BASE32_READABLE)
    if unreadable:
        shown = "".join(unreadable[:_SHOWN_BAD_CHARACTERS])
        raise MalformedBarcode(
            f"the barcode contains characters outside A-Z and 2-7: {shown!r}"
            + (" and more" if len(unreadable) > _SHOWN_BAD_CHARACTERS else "")
        )
    # Decode whatever length came, so a barcode of a later format (maybe longer) is
    # reported by its version rather than as the wrong length.
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except binascii.Error:
        raise MalformedBarcode(_wrong_length(body)) from None
    if raw[0] != FORMAT_VERSION:
        raise MalformedBarcode(
            f"barcode format version {raw[0]} is unknown; this reader knows version "
            f"{FORMAT_VERSION}"
        )
    if len(raw) != _SIGNED_LENGTH:
        raise MalformedBarcode(_wrong_length(body))
    return raw[: _CLAIMS_LAYOUT.size], raw[_CLAIMS_LAYOUT.size :]


def _wrong_length(body: str) -> str:
    return (
        f"a ticket barcode has {BARCODE_BODY_LENGTH} characters after {BARCODE_PREFIX!r}, "
        f"this one has {len(body)}: was the scan cut short?"
    )


def _claims_from_payload(payload: bytes) -> BarcodeClaims:
    _format, ticket_id, event_id, holder_id, version = _CLAIMS_LAYOUT.unpack(payload)
    return BarcodeClaims(
        ticket_id=uuid.UUID(bytes=ticket_id),
        event_id=uuid.UUID(bytes=event_id),
        holder_id=uuid.UUID(bytes=holder_id),
        version=version,
    )


def _load_public_key(public_key: bytes) -> Ed25519PublicKey:
    if len(public_key) != PUBLIC_KEY_LENGTH:
        raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    return Ed25519PublicKey.from_public_bytes(public_key)


# ---- public keys as text --------------------------------------------------------------------


def public_key_text(public_key: bytes) -> str:
    """The key as a scanner downloads it: unpadded base64url, 43 characters, safe in JSON,
    URLs and file names."""
    if len(public_key) != PUBLIC_KEY_LENGTH:
        raise ValueError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    return base64.urlsafe_b64encode(public_key).decode("ascii").rstrip("=")


def parse_public_key_text(text: str) -> bytes:
    """The 32 key bytes from :func:`public_key_text`'s form (padding and surrounding
    whitespace tolerated), or MalformedPublicKey saying what is wrong."""
    candidate = text.strip().removesuffix("=")
    unreadable = sorted(set(candidate) - _BASE64URL_ALPHABET)
    if unreadable:
        shown = "".join(unreadable[:_SHOWN_BAD_CHARACTERS])
        raise MalformedPublicKey(
            f"an event public key is base64url (A-Z, a-z, 0-9, '-', '_'); found {shown!r}"
        )
    if len(candidate) != _PUBLIC_KEY_TEXT_LENGTH:
        raise MalformedPublicKey(
            f"an event public key has {_PUBLIC_KEY_TEXT_LENGTH} characters, "
            f"this one has {len(candidate)}"
        )
    public_key = base64.urlsafe_b64decode(candidate + "=")
    # 43 characters hold 258 bits; the two spare bits must be zero, or two texts would
    # name one key and a typo in the last character would go unnoticed.
    if public_key_text(public_key) != candidate:
        raise MalformedPublicKey("the last character of the event public key is not valid")
    return public_key
