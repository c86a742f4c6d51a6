"""The one interface both search engines implement, and the types they share.

It imports neither engine; the choice between them is :mod:`marquee_search.engines`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from marquee_search.domain import IndexEntry, SearchQuery, SearchResult, Suggestion

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
