"""HTTP edge: the one-transaction-per-request route class and the session dependencies.

``TransactionalRoute`` opens the request's unit of work lazily (the first time a
endpoint asks for a :data:`WriteSessionDep`), commits it after the endpoint returned and
*before* the response leaves, and rolls it back on any error. Idempotent replay
(:mod:`marquee_platform.idempotency`) stores the response inside that same transaction.
Actions registered with :func:`marquee_platform.db.after_commit` run once the commit
succeeded, still before the response leaves (so a browser nudged by one never races
ahead of the answer to the request that caused it).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from marquee_platform.db import (
    Database,
    ReadSession,
    WriteSession,
    discard_after_commit,
    run_after_commit,
)


class UnitOfWork:
    """The request's one write transaction, opened on first use."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._session: WriteSession | None = None
        self.before_commit: list[Callable[[Response], Coroutine[Any, Any, None]]] = []

    async def session(self) -> WriteSession:
        if self._session is None:
            self._session = self._database.write_sessions()
            await self._session.begin()
        return self._session

    @property
    def started(self) -> bool:
        return self._session is not None

    async def commit(self, response: Response) -> None:
        if self._session is None:
            return
        for hook in self.before_commit:
            await hook(response)
        await self._session.commit()
        await run_after_commit(self._session)

    async def close(self) -> None:
        if self._session is not None:
            discard_after_commit(self._session)  # only left here if nothing committed
            await self._session.close()  # rolls back anything not committed
            self._session = None


def database_of(request: Request) -> Database:
    database: Database | None = getattr(request.app.state, "database", None)
    if database is None:
        raise RuntimeError("this service has no database; set it up in create_service_app")
    return database


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle_in_one_transaction(request: Request) -> Response:
            unit_of_work = UnitOfWork(database_of(request))
            request.state.unit_of_work = unit_of_work
            try:
                response = await handler(request)
                if response.status_code < 400:
                    await unit_of_work.commit(response)
                return response
            finally:
                await unit_of_work.close()

        return handle_in_one_transaction


def router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose endpoints run in one transaction each."""
    return APIRouter(route_class=TransactionalRoute, **kwargs)


async def _write_session(request: Request) -> WriteSession:
    unit_of_work: UnitOfWork | None = getattr(request.state, "unit_of_work", None)
    if unit_of_work is None:
        raise RuntimeError("WriteSession needs a route made by marquee_platform.http.router()")
    return await unit_of_work.session()


async def _read_session(request: Request) -> Any:
    async with database_of(request).reading() as session:
        yield session


WriteSessionDep = Annotated[WriteSession, Depends(_write_session)]
ReadSessionDep = Annotated[ReadSession, Depends(_read_session)]
