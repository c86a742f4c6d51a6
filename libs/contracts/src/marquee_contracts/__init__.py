"""Marquee event contracts.

One CloudEvents 1.0 envelope, one Pydantic schema per event type and one registry of
versioned topics. Producers and consumers of every service import their contracts from
here and nowhere else, so a schema change is one reviewed diff.
"""

from marquee_contracts.envelope import CloudEvent, new_event_id
from marquee_contracts.topics import REGISTRY, Topic, TopicRegistry, UnknownEventType

# Each owner's module registers its topics in REGISTRY when imported.
from marquee_contracts import auth, booking, catalog, inventory, payments, waitroom  # noqa: F401  isort: skip

__all__ = [
    "REGISTRY",
    "CloudEvent",
    "Topic",
    "TopicRegistry",
    "UnknownEventType",
    "new_event_id",
]
