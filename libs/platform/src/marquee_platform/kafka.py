"""aiokafka producer and admin helpers with Marquee's defaults.

At-least-once is the contract (design.md): acks from all in-sync replicas, no idempotent
producer or transactions (the tansu dev broker can't do them), consumers deduplicate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from marquee_contracts import CloudEvent
from marquee_platform.tracing import kafka_headers


def create_producer(bootstrap: str, *, client_id: str = "marquee") -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
    )


async def publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent, *, key: str) -> None:
    """Send one envelope now and wait for the broker's ack.

    Only for messages that are not the result of a database change (dead letters,
    tooling); business events go through the outbox.
    """
    await producer.send_and_wait(
        topic,
        event.to_json_bytes(),
        key=key.encode(),
        headers=kafka_headers({"ce_id": event.id, "ce_type": event.type}),
    )


async def ensure_topics(
    bootstrap: str, partitions_by_topic: Mapping[str, int], *, replication: int = 1
) -> None:
    """Create missing topics with their partition counts.

    Consumers call this before subscribing: a consumer subscribed to a topic that does not
    exist yet only notices it at its next metadata refresh (minutes), and brokers with
    auto-creation off never create it at all.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication)
            for name, partitions in partitions_by_topic.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(missing)
    finally:
        await admin.close()
