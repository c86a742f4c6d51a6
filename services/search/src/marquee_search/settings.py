"""Settings of the search service (environment prefix ``SEARCH_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class SearchSettings(ServiceSettings):
    service_name: ClassVar[str] = "search"
