"""Settings of the gateway (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from marquee_platform.settings import ServiceSettings

DEV_SERVICE_URLS = {
    "auth": "http://127.0.0.1:8001",
    "events": "http://127.0.0.1:8002",
    "search": "http://127.0.0.1:8003",
    "inventory": "http://127.0.0.1:8004",
    "booking": "http://127.0.0.1:8005",
    "payments": "http://127.0.0.1:8006",
    "notifications": "http://127.0.0.1:8007",
    "waitroom": "http://127.0.0.1:8008",
    "analytics": "http://127.0.0.1:8009",
}


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    service_urls: dict[str, str] = Field(
        default_factory=lambda: dict(DEV_SERVICE_URLS),
        description="Where each service answers; /api/v1/<name>/... is routed there",
    )
    upstream_timeout_seconds: float = Field(
        default=15.0, description="A service slower than this gets the client a 504"
    )
    upstream_connect_timeout_seconds: float = 2.0
    max_body_bytes: int = Field(default=1_048_576, description="Larger request bodies get 413")
    upstream_pool_size: int = 200
