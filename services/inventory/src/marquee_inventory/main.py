"""The inventory service: app factory and its description for ``marquee``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from fastapi import FastAPI

from marquee_inventory import api, tasks
from marquee_inventory.admission import AdmissionVerifier
from marquee_inventory.handlers import SeatMaps
from marquee_inventory.settings import InventorySettings
from marquee_inventory.store import HoldStore
from marquee_platform.app import create_service_app
from marquee_platform.clock import utc_now
from marquee_platform.kafka import create_producer
from marquee_platform.periodic import PeriodicTask
from marquee_platform.security import JwksCache, SigningKeys
from marquee_platform.service import ServiceSpec


def create_app(
    settings: InventorySettings | None = None, *, admission_keys: SigningKeys | None = None
) -> FastAPI:
    """``admission_keys``: where admission tokens' keys come from; by default the waiting
    room's JWKS (``waitroom_jwks_url``), fetched when a gated hold first needs it."""
    settings = settings or InventorySettings()

    async def start_inventory(app: FastAPI, stack: AsyncExitStack) -> None:
        store = HoldStore(app.state.redis, index_prefix=settings.redis_index_prefix)
        nudges = tasks.AvailabilityNudges(store, interval=settings.realtime_interval_seconds)
        store.on_change = lambda event_id, seats: nudges.changed(event_id, seats)
        nudges.start()
        stack.push_async_callback(nudges.stop)
        app.state.hold_store = store
        app.state.nudges = nudges
        app.state.seat_maps = SeatMaps(app.state.database)
        producer = create_producer(settings.kafka_bootstrap, client_id="marquee-inventory-log")
        await producer.start()
        stack.push_async_callback(producer.stop)
        app.state.log_producer = producer
        keys = admission_keys
        if keys is None:
            jwks_client = httpx.AsyncClient()
            stack.push_async_callback(jwks_client.aclose)
            keys = JwksCache(settings.waitroom_jwks_url, jwks_client)
        app.state.admission_verifier = AdmissionVerifier(keys)

    def clock_of(app: FastAPI):  # type: ignore[no-untyped-def]
        return getattr(app.state, "clock", utc_now)

    return create_service_app(
        settings,
        title="Marquee inventory",
        description="Seats and general-admission places: holds in Redis (all or nothing, "
        "a few minutes), sold places in PostgreSQL, availability for seat maps.",
        routers=[api.inventory],
        uses_redis=True,
        on_startup=[start_inventory],
        periodic_tasks=[
            lambda app: PeriodicTask(
                "inventory-expire-holds",
                every_seconds=settings.sweep_interval_seconds,
                run=lambda: tasks.expire_holds(
                    app.state.hold_store,
                    clock=clock_of(app),
                    on_change=lambda event_id: None,  # the store tells the nudges itself
                ),
                single_runner=app.state.database,
                run_at_start=True,
            ),
            lambda app: PeriodicTask(
                "inventory-forward-logs",
                every_seconds=settings.forward_interval_seconds,
                run=lambda: tasks.forward_logs(app.state.hold_store, app.state.log_producer),
                single_runner=app.state.database,
            ),
            lambda app: PeriodicTask(
                "inventory-reconcile",
                every_seconds=settings.reconcile_interval_seconds,
                run=lambda: tasks.reconcile(app.state.database, app.state.hold_store),
                single_runner=app.state.database,
                run_at_start=True,
            ),
        ],
    )


SERVICE = ServiceSpec(
    name="inventory",
    settings_class=InventorySettings,
    app_factory="marquee_inventory.main:create_app",
    dev_port=8004,
    migrations=Path(__file__).parent / "migrations",
    consumer_factory="marquee_inventory.consumers:create_consumer",
)
