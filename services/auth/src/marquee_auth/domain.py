"""The auth domain: commands, the rules a password, an email, a locale and a phone number
must follow, single-use secrets, and the arithmetic of lockouts. Pure: no I/O, no web
framework, no database.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from marquee_platform.errors import InvalidInput
from marquee_platform.security.principal import Role

# ---- roles and token purposes ----------------------------------------------------------


GRANTABLE_ROLES = frozenset({Role.ORGANIZER})
"""Roles an admin may grant or revoke through the API. Admins are made by an operator
(``marquee auth create-admin``), so a stolen admin token cannot mint more admins."""


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    RESET_PASSWORD = "reset-password"  # noqa: S105 - a purpose, not a password


class RevocationReason(StrEnum):
    """Why a refresh-token family (one sign-in on one device) ended."""

    LOGOUT = "logout"
    LOGOUT_EVERYWHERE = "logout-everywhere"
    REUSE_DETECTED = "reuse-detected"
    PASSWORD_CHANGED = "password-changed"  # noqa: S105 - a reason, not a password
    PASSWORD_RESET = "password-reset"  # noqa: S105
    ACCOUNT_DELETED = "account-deleted"


# ---- policy -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The numbers the handlers work with (from ``AuthSettings.policy()``)."""

    issuer: str
    audience: str
    access_token_ttl: timedelta
    refresh_token_ttl: timedelta
    email_verification_ttl: timedelta
    password_reset_ttl: timedelta
    password_reset_cooldown: timedelta
    key_rotation_age: timedelta | None
    """Rotate the active signing key when it is this old; None: only by command."""
    key_publish_ahead: timedelta
    retired_key_kept_for: timedelta
    """How long a retired key stays published: until every token it signed has expired."""


# ---- commands -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterUser:
    email: str
    password: str
    name: str | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class SignIn:
    email: str
    password: str
    client_address: str


@dataclass(frozen=True, slots=True)
class UpdateProfile:
    """Only the fields in ``changes`` change; a None value clears the field."""

    changes: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class ChangeEmail:
    new_email: str
    password: str


@dataclass(frozen=True, slots=True)
class ChangePassword:
    current_password: str
    new_password: str


@dataclass(frozen=True, slots=True)
class ResetPassword:
    token: str
    new_password: str


# ---- field errors ----------------------------------------------------------------------


def field_error(
    field: str, messages: Sequence[str], *, code: str = "invalid-input"
) -> InvalidInput:
    """An :class:`InvalidInput` naming ``field``, shaped like request-validation errors."""
    return InvalidInput(
        " ".join(messages),
        code=code,
        errors=[
            {"location": f"body {field}", "field": field, "message": message, "kind": code}
            for message in messages
        ],
    )


# ---- email ----------------------------------------------------------------------------

MAX_EMAIL_LENGTH = 254
_LOCAL_PART = re.compile(r"^[^\s@\"(),:;<>\[\]\\]{1,64}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")


def normalize_email(raw: str) -> str:
    """The address as we store it (trimmed, lower-case), or :class:`InvalidInput` saying why.

    Deliberately pragmatic rather than RFC 5322-complete: quoted local parts and IP-literal
    domains are refused, international (Unicode) domains are accepted. Whether the address
    works is proven by the verification email, not by a pattern.
    """
    email = canonical_email(raw)
    problem = _email_problem(email)
    if problem:
        raise field_error("email", [problem], code="invalid-email")
    return email


def canonical_email(raw: str) -> str:
    """The form an address is stored and looked up in, without judging it (sign-in uses
    this: a malformed address simply matches no account)."""
    return unicodedata.normalize("NFKC", raw).strip().lower()


def _email_problem(email: str) -> str | None:
    if not email:
        return "Enter an email address."
    if len(email) > MAX_EMAIL_LENGTH:
        return f"An email address has at most {MAX_EMAIL_LENGTH} characters."
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "An email address looks like name@example.com; this one has no '@' or no name."
    if (
        not _LOCAL_PART.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        return "The part before the '@' has characters or dots an email address can't have."
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        return "The part after the '@' must be a domain like example.com."
    if labels[-1].isdigit() or len(labels[-1]) < 2:
        return "The domain must end in a real top-level domain like .com or .de."
    return None


# ---- passwords ---------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128

_COMMON_PASSWORDS_TEXT = """
    password passw0rd p@ssword p@ssw0rd passwort motdepasse contrasena wachtwoord salasana
    123456 1234567 12345678 123456789 1234567890 0123456789 0987654321 987654321 9876543210
    1111111111 0000000000 1212121212 1234512345 1122334455 1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx3edc
    qwerty qwertyui qwertyuiop qwertz qwertzuiop azerty azertyuiop asdfgh asdfghjkl zxcvbnm
    qazwsx qazwsxedc zaq12wsx abc123 abcd1234 abcdefghij aa123456 a1b2c3d4e5 asdf1234
    iloveyou letmein welcome welcome1 admin administrator root toor master monkey dragon
    football baseball basketball soccer hockey superman batman spiderman starwars pokemon
    sunshine princess shadow michael jennifer jordan hunter ranger buster thomas charlie
    trustno1 whatever freedom secret changeme default guest test tester testing login
    computer internet samsung google facebook linkedin youtube twitter instagram
    marquee tickets ticket concert festival
    fuckyou fuckoff biteme blahblah mustang access killer liverpool chelsea arsenal
    summer winter autumn spring january february march april june july august september
    october november december monday friday sunday hello hello123 helloworld
    loveyou lovely flower flowers butterfly chocolate cookie cheese pepper ginger
"""
COMMON_PASSWORDS = frozenset(_COMMON_PASSWORDS_TEXT.split())
"""A small list of the passwords (and bases like 'password' in 'Password2024!') attackers
try first. Not a breach corpus: enough to refuse the obvious without shipping megabytes."""

_KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "qwertzuiop", "azertyuiop")


def password_problems(password: str, *, email: str | None) -> list[str]:
    """Every rule ``password`` breaks, each as a sentence saying what to do (empty: fine).

    The rules follow NIST SP 800-63B: length and a blocklist, no composition rules
    ("one digit, one symbol"), which only make passwords harder to remember.
    """
    problems: list[str] = []
    normalized = normalize_password(password)
    length = len(normalized)
    if length < MIN_PASSWORD_LENGTH:
        problems.append(
            f"Use at least {MIN_PASSWORD_LENGTH} characters; this password has {length}."
        )
    if length > MAX_PASSWORD_LENGTH:
        problems.append(
            f"Use at most {MAX_PASSWORD_LENGTH} characters; this password has {length}."
        )
    folded = normalized.casefold()
    if folded.strip() == "":
        if length:
            problems.append("A password can't be only spaces.")
        return problems
    if email and _resembles_email(folded, email.casefold()):
        problems.append("Don't use your email address, or the part before its '@', as a password.")
    if _is_common(folded):
        problems.append(
            "This is one of the most common passwords, the first ones attackers try; "
            "choose something less predictable (a few unrelated words work well)."
        )
    elif _is_repetitive(folded):
        problems.append(
            "Avoid a repeated character or a simple sequence such as 'aaaaaaaaaa', "
            "'1234567890' or 'qwertyuiop'."
        )
    return problems


def check_password(password: str, *, email: str | None, field: str = "password") -> None:
    """Raise :class:`InvalidInput` naming every broken rule, or return."""
    problems = password_problems(password, email=email)
    if problems:
        raise field_error(field, problems, code="weak-password")


def normalize_password(password: str) -> str:
    """NFKC, as NIST asks, so the same password typed on two keyboards hashes the same."""
    return unicodedata.normalize("NFKC", password)


def _resembles_email(folded: str, email: str) -> bool:
    local = email.partition("@")[0]
    if folded in (email, local):
        return True
    stripped = folded.strip("0123456789!@#$%^&*()-_=+.,;:?~ ")
    return len(local) >= 4 and (local in folded and len(stripped) <= len(local) + 2)


def _is_common(folded: str) -> bool:
    compact = folded.replace(" ", "")
    base = compact.strip("0123456789!@#$%^&*()-_=+.,;:?~")
    return compact in COMMON_PASSWORDS or (len(base) >= 4 and base in COMMON_PASSWORDS)


def _is_repetitive(folded: str) -> bool:
    compact = folded.replace(" ", "")
    if len(set(compact)) <= 2:
        return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(compact)}
    if steps <= {1} or steps <= {-1}:
        return True
    return any(compact in row or compact in row[::-1] for row in _KEYBOARD_ROWS)


# ---- profile fields ------------------------------------------------------------------------

_LOCALE = re.compile(r"^([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|[0-9]{3}))?$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_PHONE_SEPARATORS = str.maketrans("", "", " -.()/\u00a0")
MAX_NAME_LENGTH = 200


def normalize_locale(raw: str) -> str:
    """A BCP 47 language tag (language, optional script and region) in canonical case:
    ``en``, ``en-GB``, ``zh-Hant-TW``, ``es-419``. ``en_gb`` becomes ``en-GB``."""
    match = _LOCALE.match(raw.strip().replace("_", "-").lower())
    if not match:
        raise field_error(
            "locale",
            [
                "Use a language tag such as 'en', 'en-GB', 'pt-BR' or 'zh-Hant-TW' "
                "(language, then optionally script and region)."
            ],
            code="invalid-locale",
        )
    language, script, region = match.groups()
    parts = [language]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def normalize_phone(raw: str) -> str:
    """An E.164 number (``+4915112345678``); spaces, dashes, dots and brackets are dropped."""
    phone = raw.strip().translate(_PHONE_SEPARATORS)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not _E164.match(phone):
        raise field_error(
            "phone",
            [
                "Give the number in international form: '+', the country code and the "
                "number, 8 to 15 digits in all, e.g. +4915112345678."
            ],
            code="invalid-phone",
        )
    return phone


def normalize_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name or len(name) > MAX_NAME_LENGTH:
        raise field_error(
            "name", [f"A name has 1 to {MAX_NAME_LENGTH} characters."], code="invalid-name"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise field_error("name", ["A name can't contain control characters."])
    return name


def normalize_profile_changes(changes: dict[str, Any]) -> dict[str, str | None]:
    """Validate every field in ``changes`` at once, reporting all problems together."""
    normalizers = {"name": normalize_name, "locale": normalize_locale, "phone": normalize_phone}
    result: dict[str, str | None] = {}
    errors: list[dict[str, Any]] = []
    for field, value in changes.items():
        if value is None:
            result[field] = None
            continue
        try:
            result[field] = normalizers[field](value)
        except InvalidInput as error:
            errors.extend(error.extensions.get("errors", []))
    if errors:
        raise InvalidInput(
            " ".join(error["message"] for error in errors), code="invalid-profile", errors=errors
        )
    return result


# ---- single-use secrets ----------------------------------------------------------------------


def new_secret_token() -> str:
    """256 random bits, URL-safe: refresh tokens and emailed single-use tokens."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What we store instead of a token. SHA-256 suffices (no salt, no slow hash) because the
    tokens are 256-bit random values: there is nothing to guess or look up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---- brute-force arithmetic ------------------------------------------------------------------


def lockout_seconds(failures: int, *, threshold: int, base: int, maximum: int) -> int:
    """How long an account is locked after its ``failures``-th counted failure in the
    window: nothing below ``threshold``, then ``base``, doubling with each further one.
    Failures while the account is locked are not counted, so past the threshold each
    counted failure is one more lockout period."""
    if failures < threshold:
        return 0
    doublings = min(failures - threshold, 32)
    return int(min(maximum, base * 2**doublings))
