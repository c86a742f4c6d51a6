"""Settings of the gateway (environment prefix ``GATEWAY_``).

Nested values can be set one field at a time, e.g.
``GATEWAY_RATE_LIMIT_AUTH__PER_IP__REQUESTS=40``, or whole as JSON.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

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

DEV_SPA_ORIGINS = ["http://127.0.0.1:5173", "http://localhost:5173"]


def _one_or_more_urls(value: object) -> object:
    """One replica may be written as a bare URL: ``"http://auth:8000"``."""
    return [value] if isinstance(value, str) else value


def _distinct_urls(urls: list[str]) -> list[str]:
    repeated = sorted({url for url in urls if urls.count(url) > 1})
    if repeated:
        raise ValueError(f"each replica is listed once; repeated: {', '.join(repeated)}")
    return urls


ReplicaUrls = Annotated[
    list[str],
    BeforeValidator(_one_or_more_urls),
    Field(min_length=1),
    AfterValidator(_distinct_urls),
]
"""The base URLs of a service's replicas, one URL or a list of them (always a list once
read)."""


class RateLimitRule(BaseModel):
    """At most ``requests`` per ``per_seconds``, all of which may come at once (burst)."""

    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


class RateLimitClass(BaseModel):
    """Budgets of one class: signed-in callers count per user, anonymous ones per address."""

    per_user: RateLimitRule
    per_ip: RateLimitRule


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    service_urls: dict[str, ReplicaUrls] = Field(
        default_factory=lambda: {name: [url] for name, url in DEV_SERVICE_URLS.items()},
        description="Where each service answers, by name: one base URL, or a list of its "
        "replicas' that requests are balanced across (marquee_gateway.balancer). "
        "/api/v1/<name>/... is routed there, and the public paths marquee_gateway.routes "
        "gives it",
    )
    expected_consumer_groups: list[str] | None = Field(
        default=None,
        description="Consumer groups /readyz reports (from the workers' reports in Redis); "
        "default: those of the routed services that consume",
    )
    expected_relays: list[str] | None = Field(
        default=None,
        description="Outbox relays (by name) /readyz reports; default: one per routed "
        "service with a database, named after it",
    )
    upstream_timeout_seconds: float = Field(
        default=15.0, description="A service slower than this gets the client a 504"
    )
    upstream_connect_timeout_seconds: float = 2.0
    max_body_bytes: int = Field(default=1_048_576, description="Larger request bodies get 413")
    upstream_pool_size: int = 200
    upstream_ejection_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How long a replica that refused a connection is left out at first; "
        "each further failure in a row doubles it",
    )
    upstream_max_ejection_seconds: float = Field(
        default=30.0, gt=0, description="The longest a failing replica is left out at a time"
    )

    redis_pool_size: int = Field(
        default=200, description="Redis connections for rate limits, revocation and replay"
    )

    # --- who is calling -------------------------------------------------------------------
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="Networks of the load balancers in front of the gateway. Only a peer in "
        "one of them is believed about X-Forwarded-For; by default nobody is and the "
        "socket peer is the client.",
    )

    # --- rate limits (Redis, GCRA) ---------------------------------------------------------
    rate_limits_enabled: bool = True
    rate_limit_auth: RateLimitClass = Field(
        default=RateLimitClass(
            per_user=RateLimitRule(requests=10, per_seconds=60),
            per_ip=RateLimitRule(requests=20, per_seconds=60),
        ),
        description="POST/PUT/PATCH/DELETE under /api/v1/auth/ (sign-in, register, reset)",
    )
    rate_limit_write: RateLimitClass = Field(
        default=RateLimitClass(
            per_user=RateLimitRule(requests=60, per_seconds=60),
            per_ip=RateLimitRule(requests=60, per_seconds=60),
        ),
        description="Every other POST/PUT/PATCH/DELETE",
    )
    rate_limit_read: RateLimitClass = Field(
        default=RateLimitClass(
            per_user=RateLimitRule(requests=300, per_seconds=60),
            per_ip=RateLimitRule(requests=600, per_seconds=60),
        ),
        description="GET, HEAD and OPTIONS (opening a real-time stream counts once)",
    )
    rate_limit_redis_timeout_seconds: float = Field(
        default=0.5,
        description="A rate-limit check slower than this lets the request through (fail open)",
    )

    # --- CORS for the web SPA ------------------------------------------------------------
    cors_origins: list[str] = Field(
        default_factory=lambda: list(DEV_SPA_ORIGINS),
        description="Origins of the web SPA allowed to call the API from a browser",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description="Let browsers send cookies cross-origin (only if auth uses cookies)",
    )
    cors_max_age_seconds: int = 600

    # --- aggregated OpenAPI --------------------------------------------------------------
    openapi_cache_seconds: float = Field(
        default=30.0, description="How long the merged /api/openapi.json is reused"
    )
    openapi_fetch_timeout_seconds: float = 3.0

    # --- real-time streams (SSE) ---------------------------------------------------------
    stream_heartbeat_seconds: float = Field(
        default=15.0, description="A ': ping' comment this often keeps idle streams open"
    )
    stream_retry_milliseconds: int = Field(
        default=3000, description="The 'retry:' hint: how long a browser waits to reconnect"
    )
    stream_max_events: int = Field(default=20, description="Event channels per stream")
    stream_queue_size: int = Field(
        default=256,
        description="Messages waiting for a slow client before it is disconnected (overflow)",
    )
    stream_send_timeout_seconds: float = Field(
        default=30.0, description="A client that takes longer to accept data is dropped"
    )
    stream_replay_limit: int = Field(
        default=1000, description="Messages replayed per channel on Last-Event-ID"
    )
    stream_subscribe_timeout_seconds: float = 5.0
    stream_max_connections: int = Field(
        default=20_000, description="Open streams per process; more get 503"
    )
