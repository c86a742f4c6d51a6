"""Request and response bodies of the inventory API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from marquee_inventory.domain import Placement, SeatState
from marquee_inventory.store import Availability, HeldPlaces, Supply


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeatChoice(_Request):
    seat_id: str = Field(min_length=1, max_length=200, examples=["A-12"])
    ticket_type_id: uuid.UUID | None = Field(
        default=None,
        description="Which seated ticket type to buy it as; by default the one that sells "
        "the seat's price category",
    )


class QuantityChoice(_Request):
    ticket_type_id: uuid.UUID
    quantity: int = Field(ge=1, le=100)


class BestAvailable(_Request):
    count: int = Field(ge=1, le=100, description="How many seats, side by side if possible")
    price_category: str | None = Field(default=None, max_length=200)
    ticket_type_id: uuid.UUID | None = Field(
        default=None, description="A seated ticket type to buy them as (it sets the category)"
    )


class HoldCreate(_Request):
    """Exactly one of ``seats``, ``general_admission`` or ``best_available``."""

    seats: list[SeatChoice] | None = Field(default=None, min_length=1, max_length=100)
    general_admission: list[QuantityChoice] | None = Field(
        default=None, min_length=1, max_length=20
    )
    best_available: BestAvailable | None = None


class HeldSeatRead(BaseModel):
    seat_id: str
    ticket_type_id: uuid.UUID


class HeldQuantityRead(BaseModel):
    ticket_type_id: uuid.UUID
    quantity: int


class PlacementRead(BaseModel):
    rule: Literal["adjacent", "split", "explicit"]
    explanation: str


class HoldRead(BaseModel):
    hold_id: str = Field(description="Unguessable; only its holder (and admins) can use it")
    event_id: uuid.UUID
    user_id: str
    seats: list[HeldSeatRead]
    general_admission: list[HeldQuantityRead]
    expires_at: datetime = Field(description="The places are released at this moment")
    placement: PlacementRead | None = Field(
        default=None, description="How best-available chose the seats"
    )

    @classmethod
    def of(cls, held: HeldPlaces, placement: Placement | None = None) -> HoldRead:
        return cls(
            hold_id=held.hold_id,
            event_id=held.event_id,
            user_id=held.user_id,
            seats=[HeldSeatRead(seat_id=seat, ticket_type_id=tt) for seat, tt in held.seats],
            general_admission=[
                HeldQuantityRead(ticket_type_id=tt, quantity=quantity)
                for tt, quantity in held.general_admission
            ],
            expires_at=held.expires_at,
            placement=(
                PlacementRead(rule=placement.rule.value, explanation=placement.explain())
                if placement is not None
                else None
            ),
        )


class GeneralAdmissionAvailability(BaseModel):
    capacity: int
    held: int
    sold: int
    available: int


class AvailabilityRead(BaseModel):
    event_id: uuid.UUID
    version: int = Field(description="Grows with every change; also the ETag")
    selling: bool
    seats_available: int
    seats: dict[str, SeatState] = Field(description="Seat id → available, held or sold")
    general_admission: dict[str, GeneralAdmissionAvailability] = Field(
        description="Ticket type id → counts"
    )

    @classmethod
    def of(cls, event_id: uuid.UUID, availability: Availability) -> AvailabilityRead:
        return cls(
            event_id=event_id,
            version=availability.version,
            selling=availability.status == "selling",
            seats_available=availability.seats_available,
            seats=availability.seats,
            general_admission={
                tt: GeneralAdmissionAvailability(**counts)
                for tt, counts in availability.general_admission.items()
            },
        )


class SupplyRead(BaseModel):
    """What is left to sell and how much is in play, cheap enough to poll a few times a
    second (the waiting room paces admission by it)."""

    event_id: uuid.UUID
    version: int = Field(description="Grows with every change (the availability ETag)")
    selling: bool = Field(
        description="The event's status lets places be held (each ticket type's sale "
        "window still applies)"
    )
    available: int = Field(
        description="Free seats plus free general-admission places, over all ticket types"
    )
    live_holds: int = Field(description="Holds live now (a lapsed one until it is swept)")
    held_general_admission: int = Field(description="General-admission places held now")
    sold_general_admission: int = Field(description="General-admission places sold")
    ticket_types: dict[str, int] = Field(
        description="General-admission ticket type id → places free (the waitlist offers "
        "per ticket type)"
    )

    @classmethod
    def of(cls, event_id: uuid.UUID, supply: Supply) -> SupplyRead:
        return cls(
            event_id=event_id,
            version=supply.version,
            selling=supply.status == "selling",
            available=supply.available,
            live_holds=supply.live_holds,
            held_general_admission=supply.held_general_admission,
            sold_general_admission=supply.sold_general_admission,
            ticket_types={
                tt: counts["available"] for tt, counts in supply.general_admission.items()
            },
        )


class HoldSettings(_Request):
    hold_ttl_seconds: int = Field(
        ge=30, le=3600, description="How long a hold lasts (default 300: five minutes)"
    )


class HoldSettingsRead(BaseModel):
    event_id: uuid.UUID
    hold_ttl_seconds: int


class HoldRequestRead(BaseModel):
    """A queued hold request of a high-demand event and, once decided, its outcome."""

    request_id: str
    event_id: uuid.UUID
    status: Literal["pending", "held", "refused"]
    hold: HoldRead | None = Field(default=None, description="The hold, while it lives")
    problem: dict[str, object] | None = Field(
        default=None, description="Why it was refused: status, code, detail (as a 4xx would)"
    )
