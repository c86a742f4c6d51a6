"""Events the waitroom service publishes (owner: ``waitroom``), and its admission token.

Every message is keyed by the event id. ``onsale-configured`` and ``waitlist-offered`` go
through the waitroom's PostgreSQL outbox with the change they announce;
``admission-granted`` is written by the admission's own Redis script into a per-event
stream and forwarded to Kafka at least once (like inventory's hold lifecycle). See
docs/services/waitroom.md.

**The admission token** is a JWT signed with EdDSA (Ed25519) by the waitroom, whose public
keys are a JWKS at ``/api/v1/waitroom/.well-known/jwks.json``. A fan sends it to inventory
in the ``Admission-Token`` header of a hold request. Its claims:

- ``iss`` = :data:`ADMISSION_ISSUER`, ``aud`` = :data:`ADMISSION_AUDIENCE`;
- ``sub`` = the fan's user id (the token is bound to the account);
- ``evt`` = the event id (the token is bound to the event);
- ``jti`` = the admission id (one per admitted place in the queue);
- ``iat`` and ``exp``: it is short-lived (the on-sale's ``admission_window_seconds``).

A verifier checks the signature against the JWKS, ``iss``, ``aud``, ``exp``, and that
``sub`` and ``evt`` are the caller and the event of the request.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from marquee_contracts.topics import REGISTRY, Topic

ADMISSION_ISSUER = "marquee-waitroom"
ADMISSION_AUDIENCE = "marquee-inventory"
ADMISSION_HEADER = "Admission-Token"
ADMISSION_ALGORITHM = "EdDSA"
EVENT_CLAIM = "evt"


class OnSaleConfigured(BaseModel):
    """An event's on-sale through the waiting room was set up, changed or removed."""

    event_id: UUID
    queue_opens_at: datetime = Field(description="When fans may join the pre-queue")
    sale_starts_at: datetime = Field(
        description="When the pre-queue is shuffled and admission starts"
    )
    admission_required: bool = Field(
        description="True while holds for this event need an admission token; false once the "
        "on-sale is removed"
    )
    configured_at: datetime


class AdmissionGranted(BaseModel):
    """A fan's turn came: they may hold places until ``expires_at``."""

    event_id: UUID
    user_id: str
    admission_id: str
    number: int = Field(description="The fan's number in the queue's final order (1 = first)")
    admitted_at: datetime
    expires_at: datetime


class WaitlistOffered(BaseModel):
    """Places came back for a sold-out event: this fan on its waitlist may buy them."""

    event_id: UUID
    user_id: str
    entry_id: UUID
    ticket_type_id: UUID
    quantity: int
    offered_at: datetime
    expires_at: datetime = Field(description="Untaken by then, the offer passes to the next fan")


ONSALE_CONFIGURED = REGISTRY.register(
    Topic(
        "waitroom.onsale-configured.v1",
        OnSaleConfigured,
        owner="waitroom",
        description="An event's waiting-room on-sale: when it opens and starts, and whether "
        "holds need an admission token. Keyed by event id.",
    )
)
ADMISSION_GRANTED = REGISTRY.register(
    Topic(
        "waitroom.admission-granted.v1",
        AdmissionGranted,
        owner="waitroom",
        description="A fan was admitted from the waiting room and may hold places until a "
        "deadline. Keyed by event id.",
    )
)
WAITLIST_OFFERED = REGISTRY.register(
    Topic(
        "waitroom.waitlist-offered.v1",
        WaitlistOffered,
        owner="waitroom",
        description="A fan on a sold-out event's waitlist is offered places that came back, "
        "until a deadline. Keyed by event id.",
    )
)
