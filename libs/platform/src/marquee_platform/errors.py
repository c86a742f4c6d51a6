"""Domain errors: what went wrong in words a person can act on, nothing about HTTP.

Services raise these (or subclasses) from handlers; :mod:`marquee_platform.problems` maps
each kind to an RFC 9457 problem+json response in one place.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every expected failure. ``code`` is a stable, machine-readable slug."""

    code = "domain-error"
    title = "The request could not be completed"

    def __init__(self, detail: str, *, code: str | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extensions = extensions


class InvalidInput(DomainError):
    code = "invalid-input"
    title = "The request is not valid"


class BadRequest(InvalidInput):
    """The request cannot be taken at all, whatever its fields say: a webhook whose
    signature does not verify (400, as Stripe expects), a body that is not what the
    endpoint reads."""

    code = "bad-request"
    title = "Bad request"


class NotFound(DomainError):
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    """The request clashes with the current state (sold out, already paid, duplicate)."""

    code = "conflict"
    title = "Conflict with the current state"


class PreconditionFailed(Conflict):
    """A conditional request (``If-Match``) named a version that is no longer current."""

    code = "precondition-failed"
    title = "Precondition failed"


class Gone(DomainError):
    """The thing existed but no longer can be used (an expired hold)."""

    code = "gone"
    title = "No longer available"


class PayloadTooLarge(InvalidInput):
    code = "payload-too-large"
    title = "Request body too large"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(DomainError):
    code = "forbidden"
    title = "Not allowed"


class RateLimited(DomainError):
    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_seconds: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(DomainError):
    """A dependency we need right now is down; the client may retry."""

    code = "unavailable"
    title = "Temporarily unavailable"
