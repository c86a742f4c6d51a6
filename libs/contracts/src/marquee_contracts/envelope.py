"""The CloudEvents 1.0 envelope every Marquee message travels in (JSON structured mode)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_event_id() -> str:
    """A globally unique event id; consumers deduplicate on it."""
    return str(uuid.uuid4())


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope in structured JSON mode.

    ``data`` holds the payload as validated by the event type's schema; use
    :meth:`marquee_contracts.TopicRegistry.parse_data` to get it back as its model.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=new_event_id, min_length=1)
    source: str = Field(min_length=1, examples=["/marquee/booking"])
    type: str = Field(min_length=1, examples=["booking.order-paid.v1"])
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = Field(default=None, description="The aggregate id the event is about")
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> CloudEvent:
        return cls.model_validate_json(raw)
