"""Optimistic concurrency: refuse a change made from a stale read of a venue or an event."""

from __future__ import annotations

from dataclasses import dataclass

from marquee_platform.errors import Conflict, PreconditionFailed


@dataclass(frozen=True, slots=True)
class ExpectedVersion:
    """The version a client last saw, from ``If-Match`` (``from_header``) or the body."""

    version: int
    from_header: bool = False


class VersionConflict(Conflict):
    """The thing changed since the client read it (``expected_version`` in the body)."""

    code = "version-conflict"
    title = "It changed since you read it"


class StaleIfMatch(VersionConflict, PreconditionFailed):
    """The same, asked for with ``If-Match``: a failed precondition (HTTP 412)."""

    code = "precondition-failed"
    title = "Precondition failed"


def check_version(current: int, expected: ExpectedVersion | None, *, what: str) -> None:
    """Refuse a change based on a stale read: someone else changed ``what`` meanwhile."""
    if expected is None or expected.version == current:
        return
    error = StaleIfMatch if expected.from_header else VersionConflict
    raise error(
        f"{what[0].upper()}{what[1:]} is at version {current}, not {expected.version}: it "
        "changed since you read it. Read it again, reapply your change and retry.",
        current_version=current,
        expected_version=expected.version,
    )
