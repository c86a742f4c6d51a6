"""Ticket barcodes: the wire format, what a door scanner accepts, and that no scanned text
can make the reader fail with anything but a BarcodeError."""

from __future__ import annotations

import base64
import contextlib
import uuid

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from marquee_booking.barcodes import (
    BARCODE_PREFIX,
    BarcodeClaims,
    BarcodeError,
    BarcodeForOtherEvent,
    EventKeyPair,
    ForgedBarcode,
    MalformedBarcode,
    MalformedPublicKey,
    parse_public_key_text,
    public_key_text,
    read_barcode,
    sign_barcode,
    verify_barcode,
    verify_barcode_for_event,
)
from marquee_platform.errors import InvalidInput

# RFC 8032, section 7.1, test 1: a published key pair, so the wiring to Ed25519 is checked
# against numbers this code did not produce.
RFC_8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_8032_PUBLIC_KEY = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)
EVENT_KEYS = EventKeyPair.from_private_key(RFC_8032_SEED)
OTHER_EVENT_KEYS = EventKeyPair.generate()

CLAIMS = BarcodeClaims(
    ticket_id=uuid.UUID("0190a4c2-7b3e-7c1a-9f00-5d2e8b6a1c01"),
    event_id=uuid.UUID("0190a4c2-7b3e-7c1a-9f00-5d2e8b6a1c02"),
    holder_id=uuid.UUID("0190a4c2-7b3e-7c1a-9f00-5d2e8b6a1c03"),
    version=3,
)
# Printed tickets live for months: if this changes, every ticket already sold stops scanning.
CLAIMS_BARCODE = (
    "MQ:AEAZBJGCPM7HYGU7ABOS5C3KDQAQDEFEYJ5T47A2T4AF2LULNIOAEAMQUTBHWPT4DKPQAXJORNVBYAYAAODQSWGO"
    "UECUYOOF37GK66SOELHVJOEF7IC3KPZOBUR7XQFCCG34QCFKAVM2A35POEBZJCGVCU7SLQY6RVVKMAUVC3CKTUGEONHN"
    "5CAB"
)
BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def signed_bytes(barcode: str) -> bytes:
    return base64.b32decode(barcode.removeprefix(BARCODE_PREFIX))


def barcode_of(raw: bytes) -> str:
    return BARCODE_PREFIX + base64.b32encode(raw).decode().rstrip("=")


claims_strategy = st.builds(
    BarcodeClaims,
    ticket_id=st.uuids(),
    event_id=st.uuids(),
    holder_id=st.uuids(),
    version=st.integers(min_value=0, max_value=65535),
)


# ---- the format -----------------------------------------------------------------------------


def test_a_signed_barcode_verifies_to_its_claims() -> None:
    barcode = sign_barcode(CLAIMS, EVENT_KEYS.private_key)

    assert verify_barcode(barcode, EVENT_KEYS.public_key) == CLAIMS


def test_the_wire_format_is_pinned() -> None:
    assert sign_barcode(CLAIMS, EVENT_KEYS.private_key) == CLAIMS_BARCODE


def test_the_layout_is_the_one_the_decision_record_describes() -> None:
    raw = signed_bytes(CLAIMS_BARCODE)

    assert len(CLAIMS_BARCODE) == 187
    assert len(raw) == 115
    assert raw[0] == 1
    assert raw[1:17] == CLAIMS.ticket_id.bytes
    assert raw[17:33] == CLAIMS.event_id.bytes
    assert raw[33:49] == CLAIMS.holder_id.bytes
    assert raw[49:51] == (3).to_bytes(2, "big")
    # Raises if the signature is not over the domain-separated payload.
    Ed25519PublicKey.from_public_bytes(RFC_8032_PUBLIC_KEY).verify(
        raw[51:], b"marquee-ticket-v1" + raw[:51]
    )


def test_the_signature_is_not_over_the_bare_payload() -> None:
    raw = signed_bytes(CLAIMS_BARCODE)
    verifier = Ed25519PublicKey.from_public_bytes(RFC_8032_PUBLIC_KEY)

    with pytest.raises(InvalidSignature):
        verifier.verify(raw[51:], raw[:51])


def test_signing_again_gives_the_same_barcode_so_a_reprint_matches() -> None:
    assert sign_barcode(CLAIMS, EVENT_KEYS.private_key) == sign_barcode(
        CLAIMS, EVENT_KEYS.private_key
    )


def test_the_barcode_uses_only_qr_alphanumeric_characters() -> None:
    qr_alphanumeric = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

    assert set(CLAIMS_BARCODE) <= qr_alphanumeric


def test_read_barcode_gives_the_event_without_any_key() -> None:
    barcode = sign_barcode(CLAIMS, OTHER_EVENT_KEYS.private_key)

    assert read_barcode(barcode).event_id == CLAIMS.event_id
    assert read_barcode(barcode) == CLAIMS


def test_scanners_whitespace_and_lower_case_are_tolerated() -> None:
    scanned = f" \t{CLAIMS_BARCODE.lower()}\r\n"

    assert verify_barcode(scanned, EVENT_KEYS.public_key) == CLAIMS


@pytest.mark.parametrize("version", [0, 65535])
def test_the_extreme_ticket_versions_round_trip(version: int) -> None:
    claims = BarcodeClaims(
        ticket_id=CLAIMS.ticket_id,
        event_id=CLAIMS.event_id,
        holder_id=CLAIMS.holder_id,
        version=version,
    )

    barcode = sign_barcode(claims, EVENT_KEYS.private_key)

    assert verify_barcode(barcode, EVENT_KEYS.public_key).version == version


@pytest.mark.parametrize("version", [-1, 65536])
def test_a_ticket_version_that_does_not_fit_two_bytes_is_refused(version: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        BarcodeClaims(
            ticket_id=CLAIMS.ticket_id,
            event_id=CLAIMS.event_id,
            holder_id=CLAIMS.holder_id,
            version=version,
        )


# ---- tampering and forgery ------------------------------------------------------------------


def test_every_flipped_bit_is_refused() -> None:
    raw = signed_bytes(CLAIMS_BARCODE)
    accepted = []
    for index in range(len(raw)):
        for bit in range(8):
            tampered = bytearray(raw)
            tampered[index] ^= 1 << bit
            expected = MalformedBarcode if index == 0 else ForgedBarcode
            try:
                verify_barcode(barcode_of(bytes(tampered)), EVENT_KEYS.public_key)
            except expected:
                continue
            accepted.append((index, bit))
    assert accepted == []


def test_every_changed_character_is_refused() -> None:
    body = CLAIMS_BARCODE.removeprefix(BARCODE_PREFIX)
    accepted = []
    for index, character in enumerate(body):
        replacement = BASE32_ALPHABET[(BASE32_ALPHABET.index(character) + 1) % 32]
        tampered = BARCODE_PREFIX + body[:index] + replacement + body[index + 1 :]
        try:
            verify_barcode(tampered, EVENT_KEYS.public_key)
        except (ForgedBarcode, MalformedBarcode):
            continue
        accepted.append(index)
    assert accepted == []


def test_a_barcode_signed_with_another_events_key_is_forged() -> None:
    barcode = sign_barcode(CLAIMS, OTHER_EVENT_KEYS.private_key)

    with pytest.raises(ForgedBarcode) as refusal:
        verify_barcode(barcode, EVENT_KEYS.public_key)
    assert refusal.value.code == "forged"


def test_a_scanner_reports_another_events_ticket_without_that_events_key() -> None:
    this_event = uuid.uuid4()
    barcode = sign_barcode(CLAIMS, OTHER_EVENT_KEYS.private_key)

    with pytest.raises(BarcodeForOtherEvent) as refusal:
        verify_barcode_for_event(barcode, event_id=this_event, public_key=EVENT_KEYS.public_key)
    assert refusal.value.event_id == CLAIMS.event_id
    assert refusal.value.code == "other-event"


def test_a_scanner_refuses_a_forgery_naming_its_own_event() -> None:
    barcode = sign_barcode(CLAIMS, OTHER_EVENT_KEYS.private_key)

    with pytest.raises(ForgedBarcode):
        verify_barcode_for_event(
            barcode, event_id=CLAIMS.event_id, public_key=EVENT_KEYS.public_key
        )


def test_a_scanner_admits_a_genuine_ticket_for_its_event() -> None:
    claims = verify_barcode_for_event(
        CLAIMS_BARCODE, event_id=CLAIMS.event_id, public_key=EVENT_KEYS.public_key
    )

    assert claims == CLAIMS


# ---- malformed text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "should start with 'MQ:'"),
        ("https://example.com/ticket/1", "should start with 'MQ:'"),
        (CLAIMS_BARCODE.removeprefix(BARCODE_PREFIX), "should start with 'MQ:'"),
        ("MQ:", "nothing after 'MQ:'"),
        (CLAIMS_BARCODE[:-1], "184 characters after 'MQ:', this one has 183"),
        (CLAIMS_BARCODE[:-2], "184 characters after 'MQ:', this one has 182"),
        (CLAIMS_BARCODE[:-8], "184 characters after 'MQ:', this one has 176"),
        (CLAIMS_BARCODE + "AAAAAAAA", "this one has 192"),
        (CLAIMS_BARCODE.replace("A", "0", 1), "outside A-Z and 2-7: '0'"),
        (CLAIMS_BARCODE + "==", "outside A-Z and 2-7: '='"),
        (CLAIMS_BARCODE[:50] + " " + CLAIMS_BARCODE[50:], "outside A-Z and 2-7: ' '"),
        (barcode_of(b"\x02" + bytes(114)), "format version 2 is unknown"),
        (barcode_of(b"\x02" + bytes(200)), "format version 2 is unknown"),
    ],
)
def test_undecodable_text_is_malformed_and_says_why(text: str, message: str) -> None:
    with pytest.raises(MalformedBarcode, match=message) as refusal:
        verify_barcode(text, EVENT_KEYS.public_key)
    assert refusal.value.code == "malformed-barcode"
    with pytest.raises(MalformedBarcode, match=message):
        read_barcode(text)


def test_barcode_errors_are_domain_errors_so_the_api_answers_422() -> None:
    assert issubclass(BarcodeError, InvalidInput)


@given(st.text())
def test_no_text_makes_the_reader_fail_with_anything_but_a_barcode_error(text: str) -> None:
    for read in (
        read_barcode,
        lambda scanned: verify_barcode(scanned, EVENT_KEYS.public_key),
        lambda scanned: verify_barcode_for_event(
            scanned, event_id=CLAIMS.event_id, public_key=EVENT_KEYS.public_key
        ),
    ):
        with pytest.raises(BarcodeError):
            read(text)


@given(st.text(alphabet=BASE32_ALPHABET + "abcxyz0189=:- \n", min_size=0, max_size=200))
def test_no_text_near_the_format_is_accepted(body: str) -> None:
    with pytest.raises(BarcodeError):
        verify_barcode(BARCODE_PREFIX + body, EVENT_KEYS.public_key)


@given(st.binary(min_size=114, max_size=114))
def test_no_well_formed_barcode_is_accepted_without_the_events_signature(rest: bytes) -> None:
    with pytest.raises(ForgedBarcode):
        verify_barcode(barcode_of(b"\x01" + rest), EVENT_KEYS.public_key)


@given(claims_strategy)
def test_any_claims_round_trip(claims: BarcodeClaims) -> None:
    barcode = sign_barcode(claims, OTHER_EVENT_KEYS.private_key)

    assert len(barcode) == 187
    assert read_barcode(barcode) == claims
    assert verify_barcode(barcode, OTHER_EVENT_KEYS.public_key) == claims


# ---- keys -----------------------------------------------------------------------------------


def test_the_key_pair_is_derived_from_the_seed_as_rfc_8032_says() -> None:
    assert EVENT_KEYS.public_key == RFC_8032_PUBLIC_KEY


def test_the_key_id_is_stable_and_short() -> None:
    assert EVENT_KEYS.key_id == "21fe31dfa154a261"
    assert EventKeyPair.from_private_key(RFC_8032_SEED).key_id == EVENT_KEYS.key_id


def test_each_generated_key_pair_is_its_own() -> None:
    first, second = EventKeyPair.generate(), EventKeyPair.generate()

    assert first.key_id != second.key_id
    assert first.private_key != second.private_key
    assert len(first.private_key) == len(first.public_key) == 32


def test_a_key_pair_whose_halves_do_not_match_is_refused() -> None:
    with pytest.raises(ValueError, match="does not belong"):
        EventKeyPair(private_key=RFC_8032_SEED, public_key=OTHER_EVENT_KEYS.public_key)


def test_the_private_key_never_shows_in_a_repr() -> None:
    assert RFC_8032_SEED.hex() not in repr(EVENT_KEYS)
    assert repr(RFC_8032_SEED) not in repr(EVENT_KEYS)
    assert "private_key" not in repr(EVENT_KEYS)


def test_a_key_of_the_wrong_length_is_a_configuration_error_not_a_scan_error() -> None:
    with pytest.raises(ValueError, match="32 bytes, not 31"):
        verify_barcode(CLAIMS_BARCODE, RFC_8032_PUBLIC_KEY[:31])
    with pytest.raises(ValueError, match="32 bytes, not 33"):
        sign_barcode(CLAIMS, RFC_8032_SEED + b"\x00")


def test_the_public_key_text_round_trips() -> None:
    text = public_key_text(RFC_8032_PUBLIC_KEY)

    assert text == "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert parse_public_key_text(text) == RFC_8032_PUBLIC_KEY
    assert parse_public_key_text(f"  {text}=\n") == RFC_8032_PUBLIC_KEY


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR", "43 characters, this one has 42"),
        ("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo", "found '/'"),
        # Same bytes as the real key if the spare bits were ignored.
        ("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp", "last character"),
        ("", "43 characters, this one has 0"),
    ],
)
def test_unreadable_public_key_text_is_refused(text: str, message: str) -> None:
    with pytest.raises(MalformedPublicKey, match=message):
        parse_public_key_text(text)


@given(st.text())
def test_no_text_makes_the_key_parser_fail_with_anything_but_a_barcode_error(
    text: str,
) -> None:
    with contextlib.suppress(BarcodeError):
        parse_public_key_text(text)
