"""``Annotated`` dependency aliases of the events API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from marquee_events.domain import Actor, ExpectedVersion
from marquee_events.handlers import Clock, utc_now
from marquee_platform.errors import InvalidInput
from marquee_platform.security import CurrentUser, OptionalUser, Principal, Role


def actor_of(principal: Principal) -> Actor:
    return Actor(
        user_id=principal.user_id,
        is_organizer=principal.has_role(Role.ORGANIZER),
        is_admin=principal.is_admin,
    )


async def _current_actor(principal: CurrentUser) -> Actor:
    return actor_of(principal)


async def _optional_actor(principal: OptionalUser) -> Actor | None:
    return actor_of(principal) if principal is not None else None


def _clock(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", utc_now)
    return clock


def etag(version: int) -> str:
    """The ``ETag`` of a venue or event at ``version`` (send it back in ``If-Match``)."""
    return f'"{version}"'


def _bad_if_match(value: str) -> InvalidInput:
    return InvalidInput(
        f'If-Match must be one ETag this API handed out, such as "3"; got {value[:40]!r}.',
        code="invalid-if-match",
        errors=[
            {
                "location": "header If-Match",
                "field": "If-Match",
                "message": 'one ETag such as "3"',
                "kind": "if_match",
            }
        ],
    )


async def _expected_version(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The ETag you read (e.g. "3"): the change is refused with 412 if the '
            "thing changed since.",
        ),
    ] = None,
) -> ExpectedVersion | None:
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/")
    if "," in value:
        raise _bad_if_match(if_match)
    value = value.strip('"')
    if not value.isdigit() or len(value) > 12:
        raise _bad_if_match(if_match)
    return ExpectedVersion(int(value), from_header=True)


def expected_version(
    header: ExpectedVersion | None, body_version: int | None
) -> ExpectedVersion | None:
    """``If-Match`` wins over a body's ``expected_version``."""
    if header is not None:
        return header
    return ExpectedVersion(body_version) if body_version is not None else None


CurrentActor = Annotated[Actor, Depends(_current_actor)]
"""The signed-in caller (401 without a valid token)."""
OptionalActor = Annotated[Actor | None, Depends(_optional_actor)]
"""The caller if signed in, else None."""
ClockDep = Annotated[Clock, Depends(_clock)]
IfMatch = Annotated[ExpectedVersion | None, Depends(_expected_version)]
