"""The search engines and the choice between them, by ``search_url``.

- :mod:`~marquee_search.engines.base`: the :class:`SearchEngine` interface and its types;
- :mod:`~marquee_search.engines.postgres`: the index in the service's PostgreSQL (default);
- :mod:`~marquee_search.engines.remote`: an OpenSearch or Elasticsearch cluster.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from marquee_platform.db import Database
from marquee_search.engines.base import Progress, RebuildReport, SearchEngine
from marquee_search.engines.postgres import PostgresSearchEngine
from marquee_search.engines.remote import RemoteSearchEngine
from marquee_search.settings import SearchSettings

__all__ = [
    "PostgresSearchEngine",
    "Progress",
    "RebuildReport",
    "RemoteSearchEngine",
    "SearchEngine",
    "create_engine",
    "uses_postgres",
]


def uses_postgres(settings: SearchSettings) -> bool:
    url = (settings.search_url or "").strip()
    return not url or url.startswith(("postgresql", "postgres:"))


def create_engine(settings: SearchSettings, *, database: Database | None = None) -> SearchEngine:
    """The engine ``search_url`` names: PostgreSQL (the default) or a search cluster.

    A ``postgresql://`` search_url other than the service's database is used as given;
    empty means the service's own database (``database`` if passed, else a new one).
    """
    if uses_postgres(settings):
        url = (settings.search_url or "").strip()
        if url and make_url(url).database != make_url(settings.database_url).database:
            return PostgresSearchEngine(Database(url), owns_database=True)
        if database is None:
            return PostgresSearchEngine(
                Database(settings.database_url, pool_size=settings.database_pool_size),
                owns_database=True,
            )
        return PostgresSearchEngine(database, owns_database=False)
    assert settings.search_url is not None
    return RemoteSearchEngine.from_url(
        settings.search_url,
        alias=settings.search_index,
        client=settings.search_client,
        refresh=settings.search_refresh,
    )
