"""The platform's ``Annotated`` dependencies for endpoints.

- :data:`ClockDep` — the app's clock (``app.state.clock`` when a test set one, else UTC now);
- :data:`OutboxDep` — an :class:`~marquee_platform.outbox.Outbox` on the request's write
  session, its CloudEvents ``source`` taken from the service's name (``/marquee/<name>``);
- :data:`DatabaseDep` — the service's :class:`~marquee_platform.db.Database`.

The sessions are in :mod:`marquee_platform.http` (``WriteSessionDep``, ``ReadSessionDep``)
and the caller in :mod:`marquee_platform.security` (``CurrentUser``, ``OptionalUser``).
A service's own ``deps.py`` builds on these: its repositories as aliases
(:func:`on_write_session`, :func:`on_read_session`), a :class:`HandlerDependencies`
subclass that hands each handler what it names, and loaders that load a thing, 404 if it
is missing and authorize the caller (see ``marquee_events.deps``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from functools import cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_platform.clock import Clock, utc_now
from marquee_platform.db import Database, ReadSession, WriteSession
from marquee_platform.http import ReadSessionDep, WriteSessionDep, database_of
from marquee_platform.outbox import Outbox

Repository = TypeVar("Repository")
Result = TypeVar("Result")


def outbox_source(service_name: str) -> str:
    """The CloudEvents ``source`` of everything a service publishes."""
    return f"/marquee/{service_name}"


async def _clock(request: Request) -> Clock:
    clock: Clock = getattr(request.app.state, "clock", utc_now)
    return clock


async def _outbox(request: Request, session: WriteSessionDep) -> Outbox:
    return Outbox(session, source=outbox_source(request.app.state.settings.service_name))


# Dependencies are ``async def``: FastAPI runs a plain ``def`` one in its thread pool,
# a hop that costs more than these do.
ClockDep = Annotated[Clock, Depends(_clock)]
OutboxDep = Annotated[Outbox, Depends(_outbox)]
"""The outbox in the request's transaction: what you add commits with your change."""


async def _database(request: Request) -> Database:
    return database_of(request)


DatabaseDep = Annotated[Database, Depends(_database)]


def on_write_session(
    repository: Callable[[AsyncSession], Repository],
) -> Callable[[WriteSession], Awaitable[Repository]]:
    """A dependency: ``repository`` on the request's write session (its one transaction)::

    EventsDep = Annotated[EventRepository, Depends(on_write_session(EventRepository))]
    """

    async def repository_on_write_session(session: WriteSessionDep) -> Repository:
        return repository(session)

    return repository_on_write_session


def on_read_session(
    repository: Callable[[AsyncSession], Repository],
) -> Callable[[ReadSession], Awaitable[Repository]]:
    """A dependency: ``repository`` on the request's read session (the replica)."""

    async def repository_on_read_session(session: ReadSessionDep) -> Repository:
        return repository(session)

    return repository_on_read_session


@dataclass(frozen=True, slots=True)
class HandlerDependencies:
    """Everything a service's handlers take as keyword arguments, for one request.

    A service subclasses it with its repositories (and ``outbox``, ``clock`` …) as fields
    and offers it as ``RunHandler``; calling it runs a handler with the ones its signature
    names as keyword-only parameters (the way a cosmicpython bootstrap injects them)::

        user = await run(handlers.register, command)  # users=, outbox=, clock= filled in

    so an endpoint passes only what is particular to the call, and a handler that needs
    one more dependency changes no endpoint. Arguments given explicitly win.
    """

    async def __call__(
        self, handler: Callable[..., Awaitable[Result]], /, *args: Any, **kwargs: Any
    ) -> Result:
        wanted = _dependencies_of(type(self).__qualname__, tuple(_field_names(self)), handler)
        wanted -= kwargs.keys()
        return await handler(*args, **{name: getattr(self, name) for name in wanted}, **kwargs)


def _field_names(dependencies: HandlerDependencies) -> list[str]:
    return [field.name for field in fields(dependencies)]


@cache
def _dependencies_of(
    owner: str, provided: tuple[str, ...], handler: Callable[..., Any]
) -> frozenset[str]:
    """The keyword-only parameters of ``handler`` that ``owner`` provides (cached)."""
    return frozenset(
        name
        for name, parameter in inspect.signature(handler).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name in provided
    )
