"""The pure rules: passwords, emails, profile fields, lockouts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marquee_auth.domain import (
    hash_token,
    lockout_seconds,
    new_secret_token,
    normalize_email,
    normalize_locale,
    normalize_phone,
    normalize_profile_changes,
    password_problems,
)
from marquee_platform.errors import InvalidInput

EMAIL = "ada.lovelace@example.com"


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("short", "Use at least 10 characters; this password has 5."),
        ("x" * 129 + "yz", "Use at most 128 characters"),
        (EMAIL, "Don't use your email address"),
        ("ADA.LOVELACE", "Don't use your email address"),
        ("ada.lovelace1990!", "Don't use your email address"),
        ("password123", "most common passwords"),
        ("Password2024!", "most common passwords"),
        ("qwertyuiop", "most common passwords"),
        ("zzzzzzzzzzzz", "repeated character or a simple sequence"),
        ("abababababab", "repeated character or a simple sequence"),
        ("lkjhgfdsa0", None),
        ("          ", "can't be only spaces"),
    ],
)
def test_password_rules_name_the_problem(password: str, expected: str | None) -> None:
    problems = password_problems(password, email=EMAIL)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "Lovelace & Babbage's engine",
        "tr0ub4dor&3-xyz",
        "ünïcödé pässwörd",
        "ada loves maths more than anything",
    ],
)
def test_good_passwords_pass(password: str) -> None:
    assert password_problems(password, email=EMAIL) == []


def test_every_broken_rule_is_reported_at_once() -> None:
    problems = password_problems("ada.lovelace", email=EMAIL)
    assert len(problems) == 1, "12 characters: only the email rule"
    problems = password_problems("qwerty", email=EMAIL)
    assert len(problems) == 2
    assert "at least 10" in problems[0]
    assert "common" in problems[1]
    problems = password_problems("1234", email=EMAIL)
    assert "at least 10" in problems[0]
    assert "simple sequence" in problems[1]


def test_passwords_are_compared_after_unicode_normalization() -> None:
    # Full-width letters NFKC-normalize to ASCII: the same password on another keyboard.
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in "password123")
    assert full_width != "password123"
    assert password_problems(full_width, email=None) == password_problems("password123", email=None)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        ("  ada+tickets@example.co.uk ", "ada+tickets@example.co.uk"),
        ("ada@bücher.de", "ada@bücher.de"),
    ],
)
def test_emails_are_trimmed_and_lower_cased(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "Enter an email address"),
        ("ada.example.com", "no '@'"),
        ("ada@example", "domain like example.com"),
        ("ada@-example.com", "domain like example.com"),
        ("ada..l@example.com", "characters or dots"),
        ("ada lovelace@example.com", "characters or dots"),
        ("ada@example.c", "real top-level domain"),
        ("a" * 250 + "@example.com", "at most 254"),
    ],
)
def test_invalid_emails_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_email(raw)
    assert reason in caught.value.detail
    assert caught.value.extensions["errors"][0]["field"] == "email"


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("en", "en"), ("EN_gb", "en-GB"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419")],
)
def test_locales_are_bcp47_in_canonical_case(raw: str, tag: str) -> None:
    assert normalize_locale(raw) == tag


@pytest.mark.parametrize("raw", ["english", "e", "en-GBR-x", "12", "en--GB"])
def test_invalid_locales_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="language tag"):
        normalize_locale(raw)


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("+49 151 1234 5678", "+4915112345678"),
        ("+1 (555) 010-9999", "+15550109999"),
        ("0044 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_become_e164(raw: str, number: str) -> None:
    assert normalize_phone(raw) == number


@pytest.mark.parametrize("raw", ["0151 1234567", "+0 123 456 789", "+49", "+1234567890123456"])
def test_invalid_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="international form"):
        normalize_phone(raw)


def test_profile_problems_are_reported_together() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_profile_changes({"locale": "nope nope", "phone": "123", "name": "Ada"})
    assert {error["field"] for error in caught.value.extensions["errors"]} == {"locale", "phone"}
    assert normalize_profile_changes({"name": None}) == {"name": None}


def test_lockouts_start_at_the_threshold_and_double() -> None:
    durations = [lockout_seconds(n, threshold=5, base=30, maximum=3600) for n in range(1, 12)]
    assert durations == [0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920]
    assert lockout_seconds(1000, threshold=5, base=30, maximum=3600) == 3600


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=10))
def test_lockouts_never_shrink_and_never_exceed_the_maximum(failures: int, threshold: int) -> None:
    now = lockout_seconds(failures, threshold=threshold, base=30, maximum=3600)
    later = lockout_seconds(failures + 1, threshold=threshold, base=30, maximum=3600)
    assert 0 <= now <= later <= 3600


def test_secret_tokens_are_random_and_stored_as_sha256() -> None:
    first, second = new_secret_token(), new_secret_token()
    assert first != second
    assert len(first) >= 43
    assert hash_token(first) == hash_token(first)
    assert len(hash_token(first)) == 64
    assert first not in hash_token(first)
