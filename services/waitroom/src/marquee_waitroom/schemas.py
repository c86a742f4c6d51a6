"""Request and response bodies of the waitroom API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OnSaleWrite(_Request):
    queue_opens_at: datetime = Field(description="When fans may start joining (the pre-queue)")
    sale_starts_at: datetime = Field(
        description="When the pre-queue is shuffled and admission starts (≥ queue_opens_at)"
    )
    max_active: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="At most this many admitted shoppers at once; required unless adaptive",
    )
    admission_window_seconds: int = Field(
        default=300, ge=30, le=3600, description="How long an admitted fan has to start holding"
    )
    grace_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description="A fan who closed the page keeps their place this long",
    )
    adaptive: bool = Field(
        default=True,
        description="Admit from live inventory: never more fans than places left to hold",
    )

    @model_validator(mode="after")
    def _consistent(self) -> OnSaleWrite:
        if self.queue_opens_at.tzinfo is None or self.sale_starts_at.tzinfo is None:
            raise ValueError("give queue_opens_at and sale_starts_at with a time zone offset")
        if self.sale_starts_at < self.queue_opens_at:
            raise ValueError("sale_starts_at must not be before queue_opens_at")
        if not self.adaptive and self.max_active is None:
            raise ValueError("without adaptive admission, max_active is required")
        return self


class QueueCounts(BaseModel):
    pre_queue: int = Field(description="Fans who joined before the start")
    waiting: int = Field(description="Fans numbered and still waiting")
    serving: int = Field(description="The number of the first fan in line (0: nobody waits)")
    admitted: int
    active: int = Field(description="Admitted fans occupying a shopper's slot now")
    rate_per_minute: float = Field(description="Admissions per minute, observed")


class OnSaleRead(BaseModel):
    event_id: uuid.UUID
    queue_opens_at: datetime
    sale_starts_at: datetime
    max_active: int | None
    admission_window_seconds: int
    grace_seconds: int
    adaptive: bool
    state: str = Field(
        description="scheduled (before the queue opens), pre-queue, starting, open or sold-out"
    )
    seed_commitment: str = Field(description="SHA-256 (hex) of the shuffle's seed")
    counts: QueueCounts | None = None


class QueuePlace(BaseModel):
    """Where you stand. ``status``: ``pre-queue`` (joined before the start: your number is
    drawn at the start), ``waiting``, ``admitted``, ``away`` (your turn came while you
    were gone longer than the grace period) or ``sold-out`` (nothing left; join the
    waitlist)."""

    event_id: uuid.UUID
    ticket: str = Field(description="Your queue ticket: bound to your account")
    status: str
    number: int | None = Field(default=None, description="Your number in the final order")
    ahead: int | None = Field(default=None, description="Fans still waiting before you")
    serving: int | None = Field(default=None, description="The number now being served")
    pre_queue: int | None = Field(default=None, description="Fans in the pre-queue so far")
    estimated_wait_seconds: int | None = Field(
        default=None, description="From the admission rate observed (null until there is one)"
    )
    sale_starts_at: datetime
    admission_token: str | None = Field(
        default=None, description="Once admitted: send it as Admission-Token when holding"
    )
    admission_expires_at: datetime | None = None
    stream: str = Field(description="Live updates: the gateway's stream of this event")


class Fairness(BaseModel):
    """Everything needed to recompute the pre-queue's order (docs/services/waitroom.md)."""

    event_id: uuid.UUID
    seed_commitment: str = Field(description="SHA-256 (hex) of the seed, published from the start")
    revealed: bool
    seed: str | None = Field(default=None, description="The seed in hex, once the sale started")
    pre_queue: list[str] | None = Field(
        default=None, description="Every pre-queue ticket, in arrival order"
    )
    order: list[str] | None = Field(
        default=None, description="The pre-queue tickets in admission order (number 1 first)"
    )
    algorithm: str = "sorted(pre_queue, key=lambda t: sha256(seed + b':' + t.encode()))"


class WaitlistJoin(_Request):
    ticket_type_id: uuid.UUID
    quantity: int = Field(ge=1, le=50, description="Places wanted together (one party)")


class WaitlistPlace(BaseModel):
    """Your place on a sold-out event's waitlist. ``state``: ``waiting``, ``offered`` (hold
    your places with ``admission_token`` before ``offer_expires_at``), ``bought``,
    ``expired`` (an offer not taken in time) or ``left``."""

    event_id: uuid.UUID
    entry_id: uuid.UUID
    ticket_type_id: uuid.UUID
    quantity: int
    state: str
    ahead: int | None = Field(default=None, description="Fans before you for this ticket type")
    joined_at: datetime
    admission_token: str | None = None
    offer_expires_at: datetime | None = None


class WaitlistLength(BaseModel):
    ticket_type_id: uuid.UUID
    waiting: int
    offered: int
    places_wanted: int


class WaitlistLengths(BaseModel):
    event_id: uuid.UUID
    ticket_types: list[WaitlistLength]
