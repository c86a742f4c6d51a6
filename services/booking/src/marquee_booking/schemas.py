"""Request and response bodies of the booking API (separate from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from marquee_booking.models import CheckIn, Order, OrderLine, PromoCode, Refund, Ticket


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- orders -------------------------------------------------------------------------------


class OrderCreate(_Body):
    event_id: uuid.UUID
    hold_id: str = Field(
        pattern=r"^hld_[A-Za-z0-9_-]{16,60}$", description="From inventory's hold (hld_…)"
    )
    promo_code: str | None = Field(default=None, min_length=1, max_length=64)


class OrderLineRead(BaseModel):
    line_id: uuid.UUID
    ticket_type_id: uuid.UUID
    ticket_type_name: str
    seat_id: str | None
    unit_price_minor: int
    discount_minor: int
    fee_minor: int
    total_minor: int
    refunded: bool

    @classmethod
    def of(cls, line: OrderLine) -> OrderLineRead:
        return cls(
            line_id=line.id,
            ticket_type_id=line.ticket_type_id,
            ticket_type_name=line.ticket_type_name,
            seat_id=line.seat_id,
            unit_price_minor=line.unit_price_minor,
            discount_minor=line.discount_minor,
            fee_minor=line.fee_minor,
            total_minor=line.total_minor,
            refunded=line.refunded,
        )


class OrderRead(BaseModel):
    order_id: uuid.UUID
    event_id: uuid.UUID
    user_id: str
    hold_id: str
    status: str = Field(
        description="pending_payment, confirming, paid, expired, cancelled, failed, "
        "refunding, refunded, partially_refunded"
    )
    currency: str
    subtotal_minor: int
    discount_minor: int
    fees_minor: int
    total_minor: int
    paid_minor: int
    refunded_minor: int
    promo_code: str | None
    expires_at: datetime = Field(description="An unpaid order lapses with its hold, then")
    closed_reason: str | None
    lines: list[OrderLineRead]
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, order: Order, lines: list[OrderLine]) -> OrderRead:
        return cls(
            order_id=order.id,
            event_id=order.event_id,
            user_id=order.user_id,
            hold_id=order.hold_id,
            status=order.status,
            currency=order.currency,
            subtotal_minor=order.subtotal_minor,
            discount_minor=order.discount_minor,
            fees_minor=order.fees_minor,
            total_minor=order.total_minor,
            paid_minor=order.paid_minor,
            refunded_minor=order.refunded_minor,
            promo_code=order.promo_code,
            expires_at=order.expires_at,
            closed_reason=order.closed_reason,
            lines=[OrderLineRead.of(line) for line in lines],
            created_at=order.created_at,
            paid_at=order.paid_at,
        )


class RefundCreate(_Body):
    ticket_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="The tickets to refund; omit to refund the whole order",
    )
    reason: str | None = Field(default=None, max_length=500)


class RefundRead(BaseModel):
    refund_id: uuid.UUID
    order_id: uuid.UUID
    amount_minor: int
    currency: str
    reason: str
    status: str = Field(description="requested, succeeded, failed")
    ticket_ids: list[uuid.UUID]
    requested_at: datetime
    settled_at: datetime | None

    @classmethod
    def of(cls, refund: Refund) -> RefundRead:
        return cls(
            refund_id=refund.id,
            order_id=refund.order_id,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            reason=refund.reason,
            status=refund.status,
            ticket_ids=[uuid.UUID(str(ticket_id)) for ticket_id in refund.ticket_ids],
            requested_at=refund.requested_at,
            settled_at=refund.settled_at,
        )


# ---- tickets ------------------------------------------------------------------------------


class TicketRead(BaseModel):
    ticket_id: uuid.UUID
    order_id: uuid.UUID
    event_id: uuid.UUID
    holder_id: str
    ticket_type_id: uuid.UUID
    seat_id: str | None
    status: str = Field(description="valid or revoked")
    revoked_reason: str | None
    barcode: str | None = Field(description="The signed barcode; null once revoked")
    issued_at: datetime

    @classmethod
    def of(cls, ticket: Ticket) -> TicketRead:
        return cls(
            ticket_id=ticket.id,
            order_id=ticket.order_id,
            event_id=ticket.event_id,
            holder_id=ticket.holder_id,
            ticket_type_id=ticket.ticket_type_id,
            seat_id=ticket.seat_id,
            status=ticket.status,
            revoked_reason=ticket.revoked_reason,
            barcode=ticket.barcode if ticket.status == "valid" else None,
            issued_at=ticket.issued_at,
        )


class TransferCreate(_Body):
    email: str = Field(
        min_length=3, max_length=320, description="The Marquee account to give the ticket to"
    )


# ---- check-in -----------------------------------------------------------------------------


class ScanCreate(_Body):
    barcode: str = Field(min_length=1, max_length=1000)
    gate: str | None = Field(default=None, max_length=100)


class ScanUpload(_Body):
    scan_id: str = Field(min_length=1, max_length=100, description="The device's own id")
    barcode: str = Field(min_length=1, max_length=1000)
    gate: str | None = Field(default=None, max_length=100)
    scanned_at: AwareDatetime = Field(description="When the device scanned it, with its offset")


class OfflineScans(_Body):
    device_id: str = Field(min_length=1, max_length=100)
    scans: list[ScanUpload] = Field(min_length=1, max_length=5000)


CheckInResult = Literal["valid", "already_used", "other_event", "revoked", "forged"]


class FirstScan(BaseModel):
    scanned_at: datetime
    gate: str | None
    device_id: str | None


class CheckInRead(BaseModel):
    result: CheckInResult
    ticket_id: uuid.UUID | None
    seat_id: str | None = None
    ticket_type_id: uuid.UUID | None = None
    detail: str
    first_scan: FirstScan | None = Field(
        default=None, description="already_used: when and where the ticket was let in"
    )
    scan_id: str | None = None

    @staticmethod
    def first_scan_of(checkin: CheckIn) -> FirstScan:
        return FirstScan(
            scanned_at=checkin.scanned_at, gate=checkin.gate, device_id=checkin.device_id
        )


class OfflineScansRead(BaseModel):
    results: list[CheckInRead]
    conflicts: int = Field(description="Scans of a ticket already let in (each is reported)")


class RevokedBarcode(BaseModel):
    ticket_id: uuid.UUID
    version: int
    reason: str | None


class ScannerKit(BaseModel):
    event_id: uuid.UUID
    key_id: str
    public_key: str = Field(description="The event's Ed25519 public key (verifies barcodes)")
    revoked: list[RevokedBarcode]
    generated_at: datetime


# ---- organizer settings -------------------------------------------------------------------


class SalesSettings(_Body):
    service_fee_minor: int = Field(ge=0, le=1_000_000, description="Added to every ticket")
    buyer_refund_hours: int | None = Field(
        default=None,
        ge=0,
        le=24 * 365,
        description="Buyers may refund until this many hours before the start; null: never",
    )


class StaffUpdate(_Body):
    user_ids: list[uuid.UUID] = Field(max_length=500)


class StaffRead(BaseModel):
    event_id: uuid.UUID
    user_ids: list[str]


class PromoCodeCreate(_Body):
    code: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    kind: Literal["percent", "amount"]
    value: int = Field(
        ge=1,
        le=100_000_000_000,
        description="percent: hundredths of a percent (1500 = 15 %, at most 10000); "
        "amount: minor units",
    )
    currency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="amount: the currency it is worth"
    )
    ticket_type_id: uuid.UUID | None = Field(
        default=None, description="Only this ticket type; omit for the whole order"
    )
    max_uses: int | None = Field(default=None, ge=1, le=2_147_483_647)
    max_uses_per_user: int | None = Field(default=None, ge=1, le=2_147_483_647)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PromoCodeCreate:
        if self.kind == "percent" and self.value > 10_000:
            raise ValueError("a percentage is at most 10000 (100 %)")
        if self.kind == "amount" and self.currency is None:
            raise ValueError("an amount needs its currency")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            raise ValueError("valid_until must be after valid_from")
        return self


class PromoCodeUpdate(_Body):
    active: bool | None = None
    max_uses: int | None = Field(default=None, ge=1, le=2_147_483_647)
    valid_until: AwareDatetime | None = None


class PromoCodeRead(BaseModel):
    promo_code_id: uuid.UUID
    event_id: uuid.UUID
    code: str
    kind: str
    value: int
    currency: str | None
    ticket_type_id: uuid.UUID | None
    max_uses: int | None
    max_uses_per_user: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    uses: int
    active: bool

    @classmethod
    def of(cls, promo: PromoCode) -> PromoCodeRead:
        return cls(
            promo_code_id=promo.id,
            event_id=promo.event_id,
            code=promo.code,
            kind=promo.kind,
            value=promo.value,
            currency=promo.currency,
            ticket_type_id=promo.ticket_type_id,
            max_uses=promo.max_uses,
            max_uses_per_user=promo.max_uses_per_user,
            valid_from=promo.valid_from,
            valid_until=promo.valid_until,
            uses=promo.uses,
            active=promo.active,
        )
