"""The registry of topics: one versioned topic per event type, one schema per topic.

A topic's name is ``<owning service>.<event in the past tense>.v<N>`` and is also the
CloudEvent ``type``. A breaking change to a schema is a new topic (``.v2``) that the
producer writes beside the old one until every consumer has moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from marquee_contracts.envelope import CloudEvent

_TOPIC_NAME = re.compile(r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*\.v[0-9]+$")


class UnknownEventType(LookupError):
    """A message carries an event type that no topic in the registry declares."""


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    schema: type[BaseModel]
    owner: str
    description: str
    partitions: int = 6

    def __post_init__(self) -> None:
        if not _TOPIC_NAME.match(self.name):
            raise ValueError(
                f"topic name {self.name!r} must look like '<service>.<event-name>.v<N>'"
            )
        if not self.name.startswith(f"{self.owner}."):
            raise ValueError(f"topic {self.name!r} must start with its owner {self.owner!r}")

    @property
    def event_type(self) -> str:
        return self.name


class TopicRegistry:
    """Every topic Marquee knows, looked up by name (= CloudEvent type)."""

    def __init__(self) -> None:
        self._topics: dict[str, Topic] = {}

    def register(self, topic: Topic) -> Topic:
        existing = self._topics.get(topic.name)
        if existing is not None and existing != topic:
            raise ValueError(f"topic {topic.name!r} is already registered with another schema")
        self._topics[topic.name] = topic
        return topic

    def get(self, name: str) -> Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownEventType(f"no topic is registered for event type {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def __iter__(self) -> Any:
        return iter(sorted(self._topics.values(), key=lambda topic: topic.name))

    def owned_by(self, service: str) -> list[Topic]:
        return [topic for topic in self if topic.owner == service]

    def event(
        self, topic_name: str, data: BaseModel, *, source: str, subject: str | None
    ) -> CloudEvent:
        """Build the envelope for ``data``, checking it is the topic's own schema."""
        topic = self.get(topic_name)
        if not isinstance(data, topic.schema):
            raise TypeError(
                f"{topic_name} carries {topic.schema.__name__}, not {type(data).__name__}"
            )
        return CloudEvent(
            source=source,
            type=topic.event_type,
            subject=subject,
            data=data.model_dump(mode="json"),
        )

    def parse_data(self, event: CloudEvent) -> BaseModel:
        return self.get(event.type).schema.model_validate(event.data)


def dead_letter_topic(consumer_group: str) -> str:
    """Where a consumer group parks a message it could not apply after its retries."""
    return f"{consumer_group}.dead-letter.v1"


REGISTRY = TopicRegistry()
