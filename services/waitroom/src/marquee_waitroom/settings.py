"""Settings of the waitroom service (environment prefix ``WAITROOM_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from marquee_platform.forwarding import parse_networks
from marquee_platform.settings import ServiceSettings


class WaitroomSettings(ServiceSettings):
    service_name: ClassVar[str] = "waitroom"

    redis_index_prefix: str = "waitroom"
    """Names the cross-event Redis key (the set of on-sales); tests give each its own."""
    inventory_url: str = "http://127.0.0.1:8004"
    """Where adaptive admission reads each event's live supply (``…/supply``)."""
    admission_interval_seconds: float = Field(default=0.25, gt=0)
    """How often each on-sale admits the next fans and tells the queue where it stands."""
    progress_interval_seconds: float = Field(default=1.0, gt=0)
    """Queue progress goes to the event's real-time channel at least this often (and at
    once when it changes), so a position shown is never more than about 2 s stale."""
    forward_interval_seconds: float = Field(default=0.2, gt=0)
    """How often admission-granted entries are forwarded from Redis to Kafka."""
    waitlist_interval_seconds: float = Field(default=1.0, gt=0)
    """How often places that came back are offered to the waitlist."""
    waitlist_offer_seconds: int = Field(default=600, ge=60, le=3600)
    """How long a waitlist offer lasts before it passes to the next fan."""
    rate_window_seconds: int = Field(default=60, ge=5)
    """The observed admission rate (for waiting-time estimates) is over this window."""
    joins_per_minute_per_account: int = Field(default=10, ge=1)
    joins_per_minute_per_ip: int = Field(default=120, ge=1)
    polls_per_minute_per_account: int = Field(default=30, ge=1)
    """``GET …/queue/me`` faster than this is answered 429 with Retry-After (the stream is
    the live view; polling faster never moves anyone up)."""
    trusted_proxies: list[str] = Field(
        default=["127.0.0.1/32"],
        description="Networks whose X-Forwarded-For is believed (the gateway, load balancers)",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value
