"""The booking domain: pricing an order from a hold, promo codes, the order's states and
the errors a person can act on. No FastAPI, no SQLAlchemy: these run in microseconds.

Money is integer minor units. A percentage discount is rounded down per line (the buyer
never pays a fraction of a cent more than the sum of the lines), an amount discount on a
whole order is spread over its lines in order so the lines always add up to the order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from marquee_platform.errors import Conflict, Gone, InvalidInput, NotFound


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    """Waiting for the buyer to pay, until the hold lapses."""
    CONFIRMING = "confirming"
    """Paid; inventory is turning the hold into sold places."""
    PAID = "paid"
    """Sold, tickets issued."""
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"
    REFUNDING = "refunding"
    """Paid, then refused by inventory (the places were taken) or cancelled: a full refund
    is on its way."""
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


UNPAID_CLOSED = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.FAILED})
"""An order that ended without money: a payment arriving now is honoured or refunded."""

CLOSE_REASONS = {
    "expired": OrderStatus.EXPIRED,
    "cancelled": OrderStatus.CANCELLED,
    "payment-failed": OrderStatus.FAILED,
    "event-cancelled": OrderStatus.CANCELLED,
}


class PromoKind(StrEnum):
    PERCENT = "percent"
    AMOUNT = "amount"


# ---- errors a person can act on -------------------------------------------------------------


class HoldNotFound(NotFound):
    def __init__(self, hold_id: str) -> None:
        super().__init__(
            f"There is no live hold {hold_id} of yours: it may have expired or been "
            "released. Hold the places again, then order.",
            code="hold-not-found",
        )


class HoldAlreadyOrdered(Conflict):
    def __init__(self, order_id: uuid.UUID) -> None:
        super().__init__(
            f"This hold is already ordered as {order_id}: pay that order, or cancel it "
            "and hold again.",
            code="hold-already-ordered",
            order_id=str(order_id),
        )


class HoldEndingTooSoon(Gone):
    def __init__(self, hold_id: str) -> None:
        super().__init__(
            f"Hold {hold_id} lapses in a moment, too soon to pay for it: hold the places "
            "again, then order.",
            code="hold-ending",
        )


class EventNotOnSale(Conflict):
    def __init__(self, detail: str, *, code: str = "event-not-on-sale") -> None:
        super().__init__(detail, code=code)


class PromoCodeRefused(InvalidInput):
    """An unknown, expired, exhausted or inapplicable promo code (the detail says which)."""

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail, code=code)


class OrderNotFound(NotFound):
    def __init__(self, order_id: uuid.UUID | str) -> None:
        super().__init__(f"There is no order {order_id} of yours.", code="order-not-found")


class TicketNotFound(NotFound):
    def __init__(self, ticket_id: uuid.UUID | str) -> None:
        super().__init__(f"There is no ticket {ticket_id} of yours.", code="ticket-not-found")


class OrderNotCancellable(Conflict):
    def __init__(self, status: str) -> None:
        super().__init__(
            f"Only an order waiting for payment can be cancelled; this one is {status}. "
            "A paid order is refunded instead.",
            code="order-not-cancellable",
        )


class RefundRefused(Conflict):
    def __init__(self, detail: str, *, code: str = "refund-not-allowed") -> None:
        super().__init__(detail, code=code)


class TransferRefused(Conflict):
    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail, code=code)


# ---- pricing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """One held place: a seat, or one general-admission place of a ticket type."""

    ticket_type_id: uuid.UUID
    seat_id: str | None


@dataclass(frozen=True, slots=True)
class Price:
    ticket_type_id: uuid.UUID
    name: str
    price_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Promo:
    """A promo code as the pricing sees it (the caller checked it may be used now)."""

    code: str
    kind: PromoKind
    value: int
    """Percent: hundredths of a percent (1500 = 15 %); amount: minor units."""
    ticket_type_id: uuid.UUID | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class PricedLine:
    position: int
    ticket_type_id: uuid.UUID
    ticket_type_name: str
    seat_id: str | None
    unit_price_minor: int
    discount_minor: int
    fee_minor: int

    @property
    def total_minor(self) -> int:
        return self.unit_price_minor - self.discount_minor + self.fee_minor


@dataclass(frozen=True, slots=True)
class PricedOrder:
    lines: tuple[PricedLine, ...]
    currency: str

    @property
    def subtotal_minor(self) -> int:
        return sum(line.unit_price_minor for line in self.lines)

    @property
    def discount_minor(self) -> int:
        return sum(line.discount_minor for line in self.lines)

    @property
    def fees_minor(self) -> int:
        return sum(line.fee_minor for line in self.lines)

    @property
    def total_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)


class PricingError(InvalidInput):
    pass


def price_order(
    places: Sequence[Place],
    prices: dict[uuid.UUID, Price],
    *,
    service_fee_minor: int,
    promo: Promo | None,
) -> PricedOrder:
    """Price each place from the catalog; the fee is per ticket and never discounted.

    Raises :class:`PricingError` for a place whose ticket type has no price here, and
    :class:`PromoCodeRefused` for a promo code that discounts nothing in this order.
    """
    if not places:
        raise PricingError("The hold has no places to order.", code="empty-hold")
    currencies = set()
    for place in places:
        if place.ticket_type_id not in prices:
            raise PricingError(
                f"Ticket type {place.ticket_type_id} is not on sale any more.",
                code="unknown-ticket-type",
            )
        currencies.add(prices[place.ticket_type_id].currency)
    if len(currencies) != 1:
        raise PricingError(
            "The places of one order must be priced in one currency; order each currency's "
            "places separately.",
            code="mixed-currencies",
        )
    currency = currencies.pop()
    discounts = _discounts(places, prices, promo, currency)
    lines = tuple(
        PricedLine(
            position=position,
            ticket_type_id=place.ticket_type_id,
            ticket_type_name=prices[place.ticket_type_id].name,
            seat_id=place.seat_id,
            unit_price_minor=prices[place.ticket_type_id].price_minor,
            discount_minor=discounts[position],
            fee_minor=service_fee_minor,
        )
        for position, place in enumerate(places)
    )
    return PricedOrder(lines=lines, currency=currency)


def _discounts(
    places: Sequence[Place], prices: dict[uuid.UUID, Price], promo: Promo | None, currency: str
) -> list[int]:
    discounts = [0] * len(places)
    if promo is None:
        return discounts
    eligible = [
        position
        for position, place in enumerate(places)
        if promo.ticket_type_id is None or place.ticket_type_id == promo.ticket_type_id
    ]
    if not eligible:
        raise PromoCodeRefused(
            f"Promo code {promo.code} applies to another ticket type than the ones held.",
            code="promo-code-not-applicable",
        )
    if promo.kind is PromoKind.PERCENT:
        for position in eligible:
            price = prices[places[position].ticket_type_id].price_minor
            discounts[position] = price * promo.value // 10_000
        return discounts
    if promo.currency is not None and promo.currency != currency:
        raise PromoCodeRefused(
            f"Promo code {promo.code} is worth {promo.currency}, this order is in {currency}.",
            code="promo-code-not-applicable",
        )
    if promo.ticket_type_id is not None:
        # An amount off each ticket of that type, never below free.
        for position in eligible:
            price = prices[places[position].ticket_type_id].price_minor
            discounts[position] = min(promo.value, price)
        return discounts
    # An amount off the whole order, spread over its lines in order.
    left = promo.value
    for position in eligible:
        price = prices[places[position].ticket_type_id].price_minor
        discounts[position] = min(left, price)
        left -= discounts[position]
    return discounts


def check_promo_window(
    code: str, *, valid_from: datetime | None, valid_until: datetime | None, now: datetime
) -> None:
    if valid_from is not None and now < valid_from:
        raise PromoCodeRefused(
            f"Promo code {code} is valid from {valid_from.isoformat()}.",
            code="promo-code-not-yet-valid",
        )
    if valid_until is not None and now >= valid_until:
        raise PromoCodeRefused(
            f"Promo code {code} expired at {valid_until.isoformat()}.",
            code="promo-code-expired",
        )


def normalize_promo_code(code: str) -> str:
    return code.strip().upper()


# ---- the order's states -------------------------------------------------------------------


def accepts_payment(status: OrderStatus) -> bool:
    """A payment for the order goes to inventory now: pending, or closed unpaid (a late
    payment, honoured if the places are still free, refunded otherwise)."""
    return status is OrderStatus.PENDING_PAYMENT or status in UNPAID_CLOSED
