"""Settings of the search service (environment prefix ``SEARCH_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from marquee_platform.settings import ServiceSettings


class SearchSettings(ServiceSettings):
    service_name: ClassVar[str] = "search"

    search_url: str | None = Field(
        default=None,
        description="Where the index lives: empty or postgresql://… keeps it in this "
        "service's own database (single node); http(s)://… is an OpenSearch or "
        "Elasticsearch cluster",
    )
    search_client: Literal["auto", "opensearch", "elasticsearch"] = Field(
        default="auto",
        description="Which client speaks to search_url; auto asks the cluster what it is",
    )
    search_index: str = Field(
        default="marquee-events",
        description="OpenSearch/Elasticsearch alias the service reads and writes; each "
        "build is an index named <alias>-<timestamp> behind it",
    )
    search_refresh: Literal["false", "wait_for"] = Field(
        default="false",
        description="refresh=wait_for on every write (tests); production relies on the "
        "engine's refresh interval",
    )
    events_url: str = Field(
        default="http://127.0.0.1:8002",
        description="The events service, for `marquee search reindex --source http`",
    )
