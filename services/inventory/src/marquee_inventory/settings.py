"""Settings of the inventory service (environment prefix ``INVENTORY_``)."""

from __future__ import annotations

from typing import ClassVar

from marquee_platform.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: ClassVar[str] = "inventory"

    sweep_interval_seconds: float = 0.25
    """How often lapsed holds are released: a hold frees its seats this soon after its
    deadline (plus the sweep itself)."""
    forward_interval_seconds: float = 0.2
    """How often the Redis hold logs are forwarded to Kafka."""
    reconcile_interval_seconds: float = 10.0
    """How often each loaded event's Redis state is checked against PostgreSQL's catalog
    version (and reloaded when missing or behind)."""
    hold_requests_topic: str = "inventory.hold-requested.v1"
    """Where high-demand hold requests queue (tests rename it to stay apart)."""
    redis_index_prefix: str = "inventory"
    """Names the two cross-event Redis keys (the deadline index and the log index)."""
    realtime_interval_seconds: float = 0.25
    """Availability updates to browsers are coalesced to one per event per interval."""
    waitroom_jwks_url: str = "http://127.0.0.1:8008/api/v1/waitroom/.well-known/jwks.json"
    """The waiting room's public keys: what admission tokens are checked against."""
