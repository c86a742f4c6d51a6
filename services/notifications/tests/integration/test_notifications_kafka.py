"""The notifications consumer over the Kafka-protocol broker: a registration and its
verification request, each published twice, become one mail at the SMTP server; a
message that can never be applied goes to the dead-letter topic and the partition moves
on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from marquee_contracts import REGISTRY
from marquee_contracts.auth import (
    EMAIL_VERIFICATION_REQUESTED,
    USER_REGISTERED,
    EmailVerificationRequested,
    UserRegistered,
)
from marquee_notifications.consumers import CONSUMED_TOPICS, build_consumer
from marquee_notifications.sender import Sender
from marquee_notifications.settings import NotificationsSettings
from marquee_notifications.sink import MemoryStore
from marquee_platform.db import Database
from marquee_platform.kafka import create_producer, ensure_topics, publish
from marquee_testing.waiting import wait_until

pytestmark = pytest.mark.integration


async def test_published_events_become_one_mail_each_through_the_broker(
    settings: NotificationsSettings,
    database: Database,
    senders: dict[str, Sender],
    mailbox: MemoryStore,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:
    names = {topic: f"test.{unique_name(topic.split('.')[1])}.v1" for topic in CONSUMED_TOPICS}
    await ensure_topics(kafka_bootstrap, {name: 2 for name in names.values()})
    runner = build_consumer(
        settings, database=database, group=unique_name("notifications"), topic_names=names
    )
    user_id = uuid.uuid4()
    address = f"kafka-{user_id.hex[:8]}@example.org"
    registered = REGISTRY.event(
        USER_REGISTERED.name,
        UserRegistered(user_id=user_id, email=address, registered_at=datetime.now(UTC)),
        source="/marquee/auth",
        subject=str(user_id),
    )
    requested = REGISTRY.event(
        EMAIL_VERIFICATION_REQUESTED.name,
        EmailVerificationRequested(
            user_id=user_id,
            email=address,
            token="tok_kafka",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        ),
        source="/marquee/auth",
        subject=str(user_id),
    )
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:
        for event in (registered, requested, requested):  # the second copy: a redelivery
            await publish(producer, names[event.type], event, key=str(user_id))
        # Not an event at all: parked on the dead-letter topic, the partition moves on.
        await producer.send_and_wait(
            names[USER_REGISTERED.name], b"{not json", key=str(user_id).encode()
        )

        async def mailed() -> bool:
            await senders["direct"].drain(max_seconds=1)
            return len(mailbox.to(address)) >= 1

        await wait_until(mailed, timeout=60, message="the verification mail")
        assert "tok_kafka" in mailbox.to(address)[0].raw.decode()
        await senders["direct"].drain()
        assert len(mailbox.to(address)) == 1
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=30)
        await producer.stop()
