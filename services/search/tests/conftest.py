"""Fixtures of the search tests (defined in marquee_testing.search)."""

from marquee_testing.search import (  # noqa: F401
    engine,
    opensearch_engine,
    postgres_engine,
    search_cluster_url,
)
