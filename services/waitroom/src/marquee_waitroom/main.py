"""The waitroom service: app factory and its description for ``marquee``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from fastapi import FastAPI

from marquee_platform.app import create_service_app
from marquee_platform.clock import utc_now
from marquee_platform.kafka import create_producer
from marquee_platform.periodic import PeriodicTask
from marquee_platform.service import ServiceSpec
from marquee_waitroom import api, tasks
from marquee_waitroom.admission import AdmissionEngine, InventorySupply
from marquee_waitroom.keys import AdmissionKeys
from marquee_waitroom.queue import QueueStore
from marquee_waitroom.settings import WaitroomSettings
from marquee_waitroom.waitlist import WaitlistOffers


def create_app(settings: WaitroomSettings | None = None) -> FastAPI:
    settings = settings or WaitroomSettings()

    def clock_of(app: FastAPI):  # type: ignore[no-untyped-def]
        return getattr(app.state, "clock", utc_now)

    async def start_waitroom(app: FastAPI, stack: AsyncExitStack) -> None:
        store = QueueStore(app.state.redis, index_prefix=settings.redis_index_prefix)
        app.state.queue_store = store
        keys = AdmissionKeys(app.state.database)
        app.state.admission_keys = keys
        client = httpx.AsyncClient()
        stack.push_async_callback(client.aclose)
        app.state.admission_engine = AdmissionEngine(
            store=store,
            redis=app.state.redis,
            seeds=lambda event_id: tasks.seed_reader(app.state.database, event_id),
            signing_key=keys.current,
            supply=InventorySupply(settings.inventory_url, client),
            clock=lambda: clock_of(app)(),
            rate_window_s=settings.rate_window_seconds,
            progress_interval_s=settings.progress_interval_seconds,
        )
        app.state.waitlist_offers = WaitlistOffers(
            database=app.state.database,
            store=store,
            redis=app.state.redis,
            supply=app.state.admission_engine.supply,
            signing_key=keys.current,
            clock=lambda: clock_of(app)(),
            offer_seconds=settings.waitlist_offer_seconds,
        )
        producer = create_producer(settings.kafka_bootstrap, client_id="marquee-waitroom-log")
        await producer.start()
        stack.push_async_callback(producer.stop)
        app.state.log_producer = producer

    return create_service_app(
        settings,
        title="Marquee waitroom",
        description="The fair virtual waiting room: a pre-queue shuffled with a committed "
        "seed anyone can check, live positions, admission tokens (EdDSA) that inventory "
        "checks before a hold, and adaptive admission from live inventory.",
        routers=[api.waitroom],
        uses_redis=True,
        on_startup=[start_waitroom],
        periodic_tasks=[
            lambda app: PeriodicTask(
                "waitroom-admit",
                every_seconds=settings.admission_interval_seconds,
                run=app.state.admission_engine.run_round,
                single_runner=app.state.database,
                run_at_start=True,
            ),
            lambda app: PeriodicTask(
                "waitroom-waitlist-offers",
                every_seconds=settings.waitlist_interval_seconds,
                run=app.state.waitlist_offers.run_round,
                single_runner=app.state.database,
            ),
            lambda app: PeriodicTask(
                "waitroom-forward-logs",
                every_seconds=settings.forward_interval_seconds,
                run=lambda: tasks.forward_logs(app.state.queue_store, app.state.log_producer),
                single_runner=app.state.database,
            ),
            lambda app: PeriodicTask(
                "waitroom-reconcile",
                every_seconds=30.0,
                run=lambda: tasks.reconcile(
                    app.state.database, app.state.queue_store, clock=clock_of(app)
                ),
                single_runner=app.state.database,
                run_at_start=True,
            ),
        ],
    )


SERVICE = ServiceSpec(
    name="waitroom",
    settings_class=WaitroomSettings,
    app_factory="marquee_waitroom.main:create_app",
    dev_port=8008,
    migrations=Path(__file__).parent / "migrations",
    consumer_factory="marquee_waitroom.consumers:create_consumer",
)
