"""The one interface both search engines implement, and the choice between them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_platform.db import Database
from marquee_search.domain import IndexEntry, SearchQuery, SearchResult, Suggestion
from marquee_search.settings import SearchSettings

Progress = Callable[[int], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a reindex did: entries loaded from the source, entries carried over from the
    index it replaced (written there while the build ran, or newer than the source)."""

    index: str
    loaded: int
    carried_over: int


class SearchEngine(Protocol):
    """Keeps one document per event and answers searches over them.

    Writes are conditional on the event version: an entry is applied only if its version
    is greater than the stored one, so replays and late messages are harmless.
    """

    name: str

    async def apply(
        self, entries: Sequence[IndexEntry], *, session: AsyncSession | None = None
    ) -> list[bool]:
        """Store each entry unless a newer or equal version is stored; True where applied.

        ``session``: the consumer's transaction, which an engine in the same database
        joins (the PostgreSQL engine); a remote engine ignores it.
        """
        ...

    async def search(self, query: SearchQuery) -> SearchResult: ...

    async def suggest(self, prefix: str, *, limit: int) -> list[Suggestion]: ...

    async def rebuild(
        self, batches: AsyncIterator[Sequence[IndexEntry]], *, progress: Progress | None = None
    ) -> RebuildReport:
        """Build a fresh index from ``batches`` and swap it in atomically; queries keep
        working throughout and changes applied meanwhile are carried over."""
        ...

    async def refresh(self) -> None:
        """Make every acknowledged write visible to searches (tests, tooling)."""
        ...

    async def ping(self) -> None:
        """Raise if the engine does not answer (readiness)."""
        ...

    async def close(self) -> None: ...


def uses_postgres(settings: SearchSettings) -> bool:
    url = (settings.search_url or "").strip()
    return not url or url.startswith(("postgresql", "postgres:"))


def create_engine(settings: SearchSettings, *, database: Database | None = None) -> SearchEngine:
    """The engine ``search_url`` names: PostgreSQL (the default) or a search cluster.

    A ``postgresql://`` search_url other than the service's database is used as given;
    empty means the service's own database (``database`` if passed, else a new one).
    """
    if uses_postgres(settings):
        from marquee_search.postgres_engine import PostgresSearchEngine

        url = (settings.search_url or "").strip()
        if url and make_url(url).database != make_url(settings.database_url).database:
            return PostgresSearchEngine(Database(url), owns_database=True)
        if database is None:
            return PostgresSearchEngine(
                Database(settings.database_url, pool_size=settings.database_pool_size),
                owns_database=True,
            )
        return PostgresSearchEngine(database, owns_database=False)
    from marquee_search.remote_engine import RemoteSearchEngine

    assert settings.search_url is not None
    return RemoteSearchEngine.from_url(
        settings.search_url,
        alias=settings.search_index,
        client=settings.search_client,
        refresh=settings.search_refresh,
    )
