"""Fixtures of the search tests (defined in marquee_search.testing)."""

from marquee_search.testing import (  # noqa: F401
    engine,
    opensearch_engine,
    postgres_engine,
    search_cluster_url,
)
