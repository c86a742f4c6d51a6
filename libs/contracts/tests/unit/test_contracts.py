from __future__ import annotations

import pytest
from pydantic import BaseModel

from marquee_contracts import CloudEvent, Topic, TopicRegistry, UnknownEventType
from marquee_contracts.topics import dead_letter_topic


class OrderPaid(BaseModel):
    order_id: str
    amount_minor: int
    currency: str


def test_envelope_round_trips_as_cloudevents_json() -> None:
    event = CloudEvent(source="/marquee/booking", type="booking.order-paid.v1", data={"a": 1})
    raw = event.to_json_bytes()
    again = CloudEvent.from_json_bytes(raw)
    assert again == event
    assert b'"specversion":"1.0"' in raw
    assert b'"subject"' not in raw, "absent optional attributes are omitted"


def test_registry_builds_typed_events_and_parses_them_back() -> None:
    registry = TopicRegistry()
    registry.register(Topic("booking.order-paid.v1", OrderPaid, "booking", "an order was paid"))
    data = OrderPaid(order_id="o1", amount_minor=4200, currency="EUR")
    event = registry.event("booking.order-paid.v1", data, source="/marquee/booking", subject="o1")
    assert event.type == "booking.order-paid.v1"
    assert registry.parse_data(event) == data


def test_registry_refuses_the_wrong_schema_and_unknown_types() -> None:
    registry = TopicRegistry()
    registry.register(Topic("booking.order-paid.v1", OrderPaid, "booking", "an order was paid"))

    class Other(BaseModel):
        x: int

    with pytest.raises(TypeError, match="carries OrderPaid"):
        registry.event("booking.order-paid.v1", Other(x=1), source="/s", subject=None)
    with pytest.raises(UnknownEventType):
        registry.get("booking.order-lost.v1")


@pytest.mark.parametrize(
    "name", ["booking.OrderPaid.v1", "booking.order-paid", "order-paid.v1", "x.order-paid.v1"]
)
def test_topic_names_are_versioned_and_owned(name: str) -> None:
    with pytest.raises(ValueError, match="must"):
        Topic(name, OrderPaid, "booking", "bad name")


def test_dead_letter_topic_is_per_consumer_group() -> None:
    assert dead_letter_topic("search") == "search.dead-letter.v1"
