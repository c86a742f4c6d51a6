"""The indexer: applies ``events.event-changed.v1`` to the search index.

The ConsumerRunner (group ``search``) records each message's event id in ``inbox`` and
calls :func:`on_event_changed` in the same transaction. The engine's version check makes
the write idempotent on its own as well, so a redelivery, a replay from the beginning of
the topic, or an older snapshot arriving late never overwrites newer data.
"""

from __future__ import annotations

import logging

from marquee_platform.consumer import ConsumerRunner, Delivery, Handler
from marquee_platform.db import Database, WriteSession
from marquee_search.changes import EVENT_CHANGED, change_registry, entry_from_message_data
from marquee_search.engines import SearchEngine, create_engine
from marquee_search.settings import SearchSettings

logger = logging.getLogger(__name__)

GROUP = "search"


def event_changed_handler(engine: SearchEngine) -> Handler:
    async def on_event_changed(delivery: Delivery, session: WriteSession) -> None:
        entry = entry_from_message_data(delivery.data)
        [applied] = await engine.apply([entry], session=session)
        if not applied:
            logger.info(
                "kept the stored document of event %s: version %d is not newer",
                entry.event_id,
                entry.version,
            )

    return on_event_changed


def create_runner(
    *,
    engine: SearchEngine,
    database: Database,
    bootstrap: str,
    group: str = GROUP,
    topic: str = EVENT_CHANGED,
) -> ConsumerRunner:
    """The indexer's runner. Tests pass their own ``topic`` and ``group`` names (messages
    still carry the ``events.event-changed.v1`` type, which is what the registry parses)."""
    return ConsumerRunner(
        group=group,
        bootstrap=bootstrap,
        database=database,
        handlers={topic: event_changed_handler(engine)},
        registry=change_registry(),
    )


def create_consumer() -> ConsumerRunner:
    """``marquee consume --service search`` (the ServiceSpec's consumer_factory)."""
    settings = SearchSettings()
    database = Database(settings.database_url, pool_size=settings.database_pool_size)
    engine = create_engine(settings, database=database)
    return create_runner(engine=engine, database=database, bootstrap=settings.kafka_bootstrap)
