"""What booking does: one async function per command or consumed event, its
dependencies keyword-only. None commits: the caller's transaction (the request's, or the
consumed message's with its inbox row) does, with the outbox events written here.

The saga, from booking's side (docs/services/booking.md has the diagram):

- ``place_order``: a live hold of the caller → ``pending_payment`` + ``order-created``;
- ``payments.payment-succeeded`` → ``confirming`` + ``booking.order-paid`` (inventory sells
  the places, even after the hold lapsed if they are still free);
- ``inventory.sale-confirmed`` → ``paid``, tickets issued (``ticket-issued`` each,
  ``order-confirmed``);
- ``inventory.sale-rejected`` → ``refunding`` + ``refund-requested`` (full);
- ``inventory.hold-expired`` / ``hold-released``, ``payments.payment-failed``, the buyer's
  cancel → ``expired`` / ``cancelled`` / ``failed`` + ``order-closed`` (inventory releases
  the hold, payments cancels its PaymentIntent);
- ``payments.refund-succeeded`` → ``refunded`` or ``partially_refunded``.

Every transition is guarded by the order's current status under a row lock, so a
redelivered or late message changes nothing the second time.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from marquee_booking import barcodes
from marquee_booking.domain import (
    CLOSE_REASONS,
    UNPAID_CLOSED,
    EventNotOnSale,
    HoldAlreadyOrdered,
    HoldEndingTooSoon,
    HoldNotFound,
    OrderNotCancellable,
    OrderStatus,
    Price,
    Promo,
    PromoCodeRefused,
    PromoKind,
    RefundRefused,
    accepts_payment,
    check_promo_window,
    normalize_promo_code,
    price_order,
)
from marquee_booking.inventory_client import InventoryClient
from marquee_booking.models import (
    BookingEvent,
    BookingTicketType,
    Order,
    OrderLine,
    PromoCode,
    Refund,
    Ticket,
)
from marquee_booking.repository import (
    EventRepository,
    OrderRepository,
    PeopleRepository,
    PromoRepository,
    RefundRepository,
    TicketRepository,
)
from marquee_contracts.booking import (
    ORDER_CLOSED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_PAID,
    REFUND_REQUESTED,
    TICKET_CANCELLED,
    TICKET_ISSUED,
    OrderClosed,
    OrderConfirmed,
    OrderCreated,
    OrderPaid,
    RefundRequested,
    TicketCancelled,
    TicketIssued,
)
from marquee_contracts.booking import OrderLine as OrderLineMessage
from marquee_contracts.catalog import EventCancelled, EventChanged, EventPublished
from marquee_contracts.inventory import (
    HeldQuantity,
    HeldSeat,
    HoldEnded,
    SaleConfirmed,
    SaleRejected,
)
from marquee_contracts.payments import (
    PaymentFailed,
    PaymentSucceeded,
    RefundFailed,
    RefundSucceeded,
)
from marquee_platform.clock import Clock
from marquee_platform.faults import crash_point
from marquee_platform.outbox import Outbox

log = logging.getLogger("marquee.booking")

SELLING_STATUSES = frozenset({"published", "on_sale", "sold_out"})
"""Catalog statuses in which an order may be placed: inventory decides the sale windows
(and "sold out" still sells a place someone gave back)."""


# ---- the catalog copy ---------------------------------------------------------------------


async def apply_event_snapshot(
    snapshot: EventPublished | EventChanged, *, events: EventRepository, clock: Clock
) -> bool:
    """Keep the newest snapshot's prices and details; False for an older one (ignored).

    The event's barcode key pair is made the first time booking hears of it and never
    changes: barcodes already issued must keep verifying."""
    event = await events.get(snapshot.event_id, for_update=True)
    if event is not None and event.version >= snapshot.version:
        return False
    status = snapshot.status if isinstance(snapshot, EventChanged) else "on_sale"
    venue_name = snapshot.venue.name if isinstance(snapshot, EventChanged) else ""
    if event is None:
        keys = barcodes.EventKeyPair.generate()
        event = BookingEvent(
            event_id=snapshot.event_id,
            version=snapshot.version,
            status=status,
            organizer_id=snapshot.organizer_id,
            name=snapshot.name,
            starts_at=snapshot.starts_at,
            ends_at=snapshot.ends_at,
            time_zone=snapshot.time_zone,
            venue_name=venue_name,
            service_fee_minor=0,
            buyer_refund_hours=None,
            signing_key=keys.private_key,
            public_key=keys.public_key,
            updated_at=clock(),
        )
        events.add(event)
    else:
        event.version = snapshot.version
        event.organizer_id = snapshot.organizer_id
        event.name = snapshot.name
        event.starts_at = snapshot.starts_at
        event.ends_at = snapshot.ends_at
        event.time_zone = snapshot.time_zone
        if isinstance(snapshot, EventChanged):
            event.status = snapshot.status
            event.venue_name = venue_name
        elif event.status not in ("cancelled", "completed"):
            event.status = status
        event.updated_at = clock()
    await events.session.flush()
    known = {
        ticket_type.ticket_type_id: ticket_type
        for ticket_type in await events.ticket_types(snapshot.event_id)
    }
    listed = set()
    for offered in snapshot.ticket_types:
        listed.add(offered.ticket_type_id)
        ticket_type = known.get(offered.ticket_type_id)
        if ticket_type is None:
            events.add_ticket_type(
                BookingTicketType(
                    ticket_type_id=offered.ticket_type_id,
                    event_id=snapshot.event_id,
                    name=offered.name,
                    kind=offered.kind,
                    price_minor=offered.price_minor,
                    currency=offered.currency.upper(),
                    active=True,
                )
            )
        else:
            ticket_type.name = offered.name
            ticket_type.kind = offered.kind
            ticket_type.price_minor = offered.price_minor
            ticket_type.currency = offered.currency.upper()
            ticket_type.active = True
    for ticket_type_id, ticket_type in known.items():
        if ticket_type_id not in listed:
            ticket_type.active = False
    return True


async def apply_event_cancelled(
    cancelled: EventCancelled,
    *,
    events: EventRepository,
    orders: OrderRepository,
    tickets: TicketRepository,
    refunds: RefundRepository,
    promos: PromoRepository,
    outbox: Outbox,
    clock: Clock,
) -> int:
    """The event is off: every paid order is refunded in full and its tickets revoked,
    every unpaid one closed (its hold released, its payment cancelled); an order being
    confirmed is refunded when its sale confirmation arrives. Answers how many orders
    were refunded (0 when the cancellation was handled before)."""
    event = await events.get(cancelled.event_id, for_update=True)
    if event is None or event.cancellation_handled:
        return 0
    event.status = "cancelled"
    event.version = max(event.version, cancelled.version)
    event.cancellation_handled = True
    for unpaid in await orders.pending_of_event(cancelled.event_id):
        await _close(unpaid, "event-cancelled", promos=promos, outbox=outbox, clock=clock)
    count = 0
    for order in await orders.paid_of_event(cancelled.event_id):
        await _refund(
            order,
            ticket_ids=None,
            reason="event-cancelled",
            requested_by="system",
            orders=orders,
            tickets=tickets,
            refunds=refunds,
            outbox=outbox,
            clock=clock,
        )
        count += 1
    return count


async def remember_person(user_id: str, email: str, *, people: PeopleRepository) -> None:
    await people.upsert(user_id, email.strip().lower())


async def forget_person(user_id: str, *, people: PeopleRepository) -> None:
    await people.forget(user_id)


# ---- orders -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    event_id: uuid.UUID
    hold_id: str
    user_id: str
    authorization: str
    """The buyer's own ``Authorization`` header: inventory reads the hold as them."""
    promo_code: str | None = None


async def place_order(
    command: PlaceOrder,
    *,
    events: EventRepository,
    orders: OrderRepository,
    promos: PromoRepository,
    inventory: InventoryClient,
    outbox: Outbox,
    clock: Clock,
    hold_margin: timedelta = timedelta(seconds=10),
) -> Order:
    existing = await orders.by_hold(command.hold_id)
    if existing is not None:
        if existing.user_id != command.user_id:
            raise HoldNotFound(command.hold_id)
        raise HoldAlreadyOrdered(existing.id)
    hold = await inventory.hold(
        command.event_id, command.hold_id, authorization=command.authorization
    )
    if hold.user_id != command.user_id or hold.event_id != command.event_id:
        raise HoldNotFound(command.hold_id)
    now = clock()
    if hold.expires_at - now < hold_margin:
        raise HoldEndingTooSoon(command.hold_id)
    event = await events.get(command.event_id)
    if event is None:
        raise EventNotOnSale(
            "This event's prices have not reached booking yet; try again in a moment.",
            code="event-not-known-yet",
        )
    if event.status not in SELLING_STATUSES:
        raise EventNotOnSale(f"{event.name} is {event.status}: it sells no tickets.")
    prices = {
        ticket_type.ticket_type_id: Price(
            ticket_type_id=ticket_type.ticket_type_id,
            name=ticket_type.name,
            price_minor=ticket_type.price_minor,
            currency=ticket_type.currency,
        )
        for ticket_type in await events.ticket_types(command.event_id)
        if ticket_type.active
    }
    promo_row = await _usable_promo(command, promos=promos, now=now)
    promo = None
    if promo_row is not None:
        promo = Promo(
            code=promo_row.code,
            kind=PromoKind(promo_row.kind),
            value=promo_row.value,
            ticket_type_id=promo_row.ticket_type_id,
            currency=promo_row.currency,
        )
    priced = price_order(
        hold.places, prices, service_fee_minor=event.service_fee_minor, promo=promo
    )
    taken = promo_row is not None and priced.discount_minor > 0
    if promo_row is not None and taken and not await promos.take_use(promo_row.id):
        raise PromoCodeRefused(
            f"Promo code {promo_row.code} has been used as often as it may be.",
            code="promo-code-exhausted",
        )
    order_id = uuid.uuid4()
    order = Order(
        id=order_id,
        user_id=command.user_id,
        event_id=command.event_id,
        hold_id=command.hold_id,
        status=OrderStatus.PENDING_PAYMENT.value,
        currency=priced.currency,
        subtotal_minor=priced.subtotal_minor,
        discount_minor=priced.discount_minor,
        fees_minor=priced.fees_minor,
        total_minor=priced.total_minor,
        refunded_minor=0,
        paid_minor=0,
        promo_code_id=promo_row.id if promo_row is not None else None,
        promo_code=promo_row.code if promo_row is not None else None,
        promo_use_held=promo_row is not None and priced.discount_minor > 0,
        expires_at=hold.expires_at,
        created_at=now,
        updated_at=now,
    )
    lines = [
        OrderLine(
            id=uuid.uuid4(),
            order_id=order_id,
            position=line.position,
            ticket_type_id=line.ticket_type_id,
            ticket_type_name=line.ticket_type_name,
            seat_id=line.seat_id,
            unit_price_minor=line.unit_price_minor,
            discount_minor=line.discount_minor,
            fee_minor=line.fee_minor,
            total_minor=line.total_minor,
            refunded=False,
        )
        for line in priced.lines
    ]
    try:
        async with orders.session.begin_nested():
            orders.add(order, lines)
            await orders.session.flush()
    except IntegrityError:
        # Another order for this hold committed first (two requests, two keys, one hold).
        raise HoldAlreadyOrdered(await _order_of_hold(orders, command.hold_id)) from None
    await outbox.add(
        ORDER_CREATED.name,
        OrderCreated(
            order_id=order_id,
            hold_id=command.hold_id,
            event_id=command.event_id,
            user_id=command.user_id,
            lines=[_line_message(line) for line in lines],
            subtotal_minor=order.subtotal_minor,
            discount_minor=order.discount_minor,
            fees_minor=order.fees_minor,
            total_minor=order.total_minor,
            currency=order.currency,
            promo_code=order.promo_code,
            expires_at=order.expires_at,
            created_at=now,
        ),
        key=order_id,
    )
    if order.total_minor == 0:
        # Nothing to pay (a 100 % promo code, free tickets): sold straight away.
        order.status = OrderStatus.CONFIRMING.value
        order.paid_at = now
        await _sell(order, lines, outbox=outbox)
    return order


async def _order_of_hold(orders: OrderRepository, hold_id: str) -> uuid.UUID:
    existing = await orders.by_hold(hold_id)
    assert existing is not None, "the unique hold id was taken by an order"
    return existing.id


async def _usable_promo(
    command: PlaceOrder, *, promos: PromoRepository, now: datetime
) -> PromoCode | None:
    if command.promo_code is None:
        return None
    code = normalize_promo_code(command.promo_code)
    # Locked: concurrent orders by one person must count each other's uses.
    promo = await promos.by_code(command.event_id, code, for_update=True)
    if promo is None or not promo.active:
        raise PromoCodeRefused(
            f"There is no promo code {code!r} for this event: check its spelling.",
            code="unknown-promo-code",
        )
    check_promo_window(
        promo.code, valid_from=promo.valid_from, valid_until=promo.valid_until, now=now
    )
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        raise PromoCodeRefused(
            f"Promo code {promo.code} has been used as often as it may be.",
            code="promo-code-exhausted",
        )
    if (
        promo.max_uses_per_user is not None
        and await promos.uses_by(promo.id, command.user_id) >= promo.max_uses_per_user
    ):
        raise PromoCodeRefused(
            f"You have used promo code {promo.code} as often as one person may.",
            code="promo-code-used-up-by-you",
        )
    return promo


def _line_message(line: OrderLine) -> OrderLineMessage:
    return OrderLineMessage(
        line_id=line.id,
        ticket_type_id=line.ticket_type_id,
        seat_id=line.seat_id,
        unit_price_minor=line.unit_price_minor,
        discount_minor=line.discount_minor,
        fee_minor=line.fee_minor,
        total_minor=line.total_minor,
    )


async def cancel_order(
    order: Order,
    *,
    orders: OrderRepository,
    promos: PromoRepository,
    outbox: Outbox,
    clock: Clock,
) -> Order:
    """The buyer lets an unpaid order go: its hold is released."""
    if order.status != OrderStatus.PENDING_PAYMENT:
        if order.status == OrderStatus.CANCELLED:
            return order
        raise OrderNotCancellable(order.status)
    await _close(order, "cancelled", promos=promos, outbox=outbox, clock=clock)
    return order


async def _close(
    order: Order, reason: str, *, promos: PromoRepository, outbox: Outbox, clock: Clock
) -> None:
    now = clock()
    order.status = CLOSE_REASONS[reason].value
    order.closed_reason = reason
    order.updated_at = now
    if order.promo_use_held and order.promo_code_id is not None:
        await promos.give_back_use(order.promo_code_id)
        order.promo_use_held = False
    await outbox.add(
        ORDER_CLOSED.name,
        OrderClosed(
            order_id=order.id,
            hold_id=order.hold_id,
            event_id=order.event_id,
            user_id=order.user_id,
            reason=reason,
            closed_at=now,
        ),
        key=order.event_id,
    )


async def on_hold_ended(
    ended: HoldEnded,
    *,
    expired: bool,
    orders: OrderRepository,
    promos: PromoRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    """The order's hold lapsed (or its holder released it): an unpaid order closes."""
    order = await orders.by_hold(ended.hold_id, for_update=True)
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        return
    await _close(
        order, "expired" if expired else "cancelled", promos=promos, outbox=outbox, clock=clock
    )


async def on_payment_failed(
    failed: PaymentFailed,
    *,
    orders: OrderRepository,
    promos: PromoRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    order = await orders.get(failed.order_id, for_update=True)
    if order is None or order.status != OrderStatus.PENDING_PAYMENT:
        return
    await _close(order, "payment-failed", promos=promos, outbox=outbox, clock=clock)


async def on_payment_succeeded(
    paid: PaymentSucceeded,
    *,
    orders: OrderRepository,
    promos: PromoRepository,
    refunds: RefundRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    """Money arrived: inventory is asked to sell the places (``order-paid``).

    A payment for an order closed unpaid (expired, cancelled, failed) is sent on too:
    inventory sells the places if they are still free and rejects the sale otherwise,
    which refunds it. A second payment for an order already paid is refunded at once."""
    order = await orders.get(paid.order_id, for_update=True)
    if order is None:
        log.error("payment %s for unknown order %s", paid.payment_id, paid.order_id)
        return
    if order.payment_id == paid.payment_id:
        return  # this payment was applied before
    status = OrderStatus(order.status)
    if order.payment_id is not None or not accepts_payment(status):
        await _refund_duplicate_payment(order, paid, refunds=refunds, outbox=outbox, clock=clock)
        return
    now = clock()
    if status in UNPAID_CLOSED and not order.promo_use_held and order.promo_code_id is not None:
        # The order gave its promo use back when it closed; a late payment takes it again,
        # even over the limit: the buyer was charged the discounted price.
        await promos.take_use(order.promo_code_id)
        order.promo_use_held = True
    order.status = OrderStatus.CONFIRMING.value
    order.payment_id = paid.payment_id
    order.paid_minor = paid.amount_minor
    order.paid_at = paid.succeeded_at
    order.updated_at = now
    if paid.amount_minor != order.total_minor or paid.currency != order.currency:
        log.error(
            "order %s was paid %s %s but costs %s %s",
            order.id,
            paid.amount_minor,
            paid.currency,
            order.total_minor,
            order.currency,
        )
    await _sell(order, await orders.lines(order.id), outbox=outbox)
    crash_point("booking.payment-applied")  # changed, not committed (the consumer commits)


async def _sell(order: Order, lines: Sequence[OrderLine], *, outbox: Outbox) -> None:
    """Ask inventory to sell the order's places (``order-paid``): it answers
    ``sale-confirmed`` (tickets follow) or ``sale-rejected`` (a refund follows)."""
    assert order.paid_at is not None
    general_admission = Counter(line.ticket_type_id for line in lines if line.seat_id is None)
    await outbox.add(
        ORDER_PAID.name,
        OrderPaid(
            order_id=order.id,
            hold_id=order.hold_id,
            event_id=order.event_id,
            user_id=order.user_id,
            seats=[
                HeldSeat(seat_id=line.seat_id, ticket_type_id=line.ticket_type_id)
                for line in lines
                if line.seat_id is not None
            ],
            general_admission=[
                HeldQuantity(ticket_type_id=ticket_type_id, quantity=quantity)
                for ticket_type_id, quantity in general_admission.items()
            ],
            amount_minor=order.paid_minor,
            currency=order.currency,
            paid_at=order.paid_at,
        ),
        key=order.event_id,
    )


async def _refund_duplicate_payment(
    order: Order,
    paid: PaymentSucceeded,
    *,
    refunds: RefundRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    log.warning("order %s paid twice (payment %s): refunding it", order.id, paid.payment_id)
    now = clock()
    refund = Refund(
        id=uuid.uuid5(paid.payment_id, "duplicate-payment"),
        order_id=order.id,
        amount_minor=paid.amount_minor,
        currency=paid.currency,
        reason="duplicate-payment",
        status="requested",
        ticket_ids=[],
        requested_by="system",
        requested_at=now,
    )
    if await refunds.get(refund.id) is not None:
        return
    refunds.add(refund)
    await outbox.add(
        REFUND_REQUESTED.name,
        RefundRequested(
            refund_id=refund.id,
            order_id=order.id,
            event_id=order.event_id,
            user_id=order.user_id,
            amount_minor=paid.amount_minor,
            currency=paid.currency,
            reason="duplicate-payment",
            ticket_ids=[],
            requested_at=now,
        ),
        key=order.id,
    )


async def on_sale_confirmed(
    confirmed: SaleConfirmed,
    *,
    events: EventRepository,
    orders: OrderRepository,
    tickets: TicketRepository,
    refunds: RefundRepository,
    outbox: Outbox,
    clock: Clock,
) -> list[Ticket]:
    """The places are sold: the order is paid and one ticket per line is issued."""
    order = await orders.get(confirmed.order_id, for_update=True)
    if order is None or order.status != OrderStatus.CONFIRMING:
        return []
    event = await events.get(order.event_id)
    assert event is not None, "an order's event is in booking's catalog"
    if event.status == "cancelled":
        # Sold while the cancellation was on its way: no tickets for a cancelled event.
        await _refund(
            order,
            ticket_ids=None,
            reason="event-cancelled",
            requested_by="system",
            orders=orders,
            tickets=tickets,
            refunds=refunds,
            outbox=outbox,
            clock=clock,
        )
        return []
    now = clock()
    issued = []
    for line in await orders.lines(order.id):
        ticket = new_ticket(order, line, holder_id=order.user_id, version=0, event=event, now=now)
        tickets.add(ticket)
        issued.append(ticket)
    order.status = OrderStatus.PAID.value
    order.updated_at = now
    await orders.session.flush()
    for ticket in issued:
        await outbox.add(TICKET_ISSUED.name, _issued_message(ticket), key=order.id)
    await outbox.add(
        ORDER_CONFIRMED.name,
        OrderConfirmed(
            order_id=order.id,
            event_id=order.event_id,
            user_id=order.user_id,
            ticket_ids=[ticket.id for ticket in issued],
            total_minor=order.total_minor,
            currency=order.currency,
            confirmed_at=now,
        ),
        key=order.id,
    )
    crash_point("booking.tickets-issued")  # issued, not committed (the consumer commits)
    return issued


def new_ticket(
    order: Order,
    line: OrderLine,
    *,
    holder_id: str,
    version: int,
    event: BookingEvent,
    now: datetime,
    replaces: uuid.UUID | None = None,
) -> Ticket:
    ticket_id = uuid.uuid4()
    claims = barcodes.BarcodeClaims(
        ticket_id=ticket_id,
        event_id=order.event_id,
        holder_id=holder_uuid(holder_id),
        version=version,
    )
    return Ticket(
        id=ticket_id,
        order_id=order.id,
        order_line_id=line.id,
        event_id=order.event_id,
        holder_id=holder_id,
        ticket_type_id=line.ticket_type_id,
        seat_id=line.seat_id,
        version=version,
        barcode=barcodes.sign_barcode(claims, event.signing_key),
        status="valid",
        issued_at=now,
        replaces_ticket_id=replaces,
    )


def holder_uuid(user_id: str) -> uuid.UUID:
    """The holder as the barcode's 16 bytes: auth's user ids are UUIDs; any other id (an
    account of another identity provider) is mapped to one, stably."""
    try:
        return uuid.UUID(user_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"marquee:user:{user_id}")


def _issued_message(ticket: Ticket) -> TicketIssued:
    return TicketIssued(
        ticket_id=ticket.id,
        order_id=ticket.order_id,
        event_id=ticket.event_id,
        user_id=ticket.holder_id,
        issued_at=ticket.issued_at,
        seat_id=ticket.seat_id,
        ticket_type_id=ticket.ticket_type_id,
        version=ticket.version,
        replaces_ticket_id=ticket.replaces_ticket_id,
        barcode=ticket.barcode,
    )


async def on_sale_rejected(
    rejected: SaleRejected,
    *,
    orders: OrderRepository,
    tickets: TicketRepository,
    refunds: RefundRepository,
    outbox: Outbox,
    clock: Clock,
) -> None:
    """Inventory could not sell the places (taken after the hold lapsed): refund in full."""
    order = await orders.get(rejected.order_id, for_update=True)
    if order is None or order.status != OrderStatus.CONFIRMING:
        return
    log.info("order %s: sale rejected (%s), refunding", order.id, rejected.reason)
    await _refund(
        order,
        ticket_ids=None,
        reason="sale-rejected",
        requested_by="system",
        orders=orders,
        tickets=tickets,
        refunds=refunds,
        outbox=outbox,
        clock=clock,
    )


# ---- refunds ------------------------------------------------------------------------------


async def refund_order(
    order: Order,
    *,
    ticket_ids: Sequence[uuid.UUID] | None,
    reason: str,
    requested_by: str,
    orders: OrderRepository,
    tickets: TicketRepository,
    refunds: RefundRepository,
    outbox: Outbox,
    clock: Clock,
) -> Refund | None:
    """Refund some tickets of a paid order (all when ``ticket_ids`` is None): they are
    revoked now, their places go back to inventory, payments gives the money back.
    None when there is no money to give back (free tickets)."""
    if order.status not in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED):
        raise RefundRefused(
            f"Only a paid order can be refunded; this one is {order.status}.",
            code="order-not-refundable",
        )
    return await _refund(
        order,
        ticket_ids=ticket_ids,
        reason=reason,
        requested_by=requested_by,
        orders=orders,
        tickets=tickets,
        refunds=refunds,
        outbox=outbox,
        clock=clock,
    )


async def _refund(
    order: Order,
    *,
    ticket_ids: Sequence[uuid.UUID] | None,
    reason: str,
    requested_by: str,
    orders: OrderRepository,
    tickets: TicketRepository,
    refunds: RefundRepository,
    outbox: Outbox,
    clock: Clock,
) -> Refund | None:
    now = clock()
    live = [
        ticket
        for ticket in await tickets.of_order(order.id, for_update=True)
        if ticket.status == "valid"
    ]
    lines = {line.id: line for line in await orders.lines(order.id)}
    if ticket_ids is None:
        chosen = live
    else:
        by_id = {ticket.id: ticket for ticket in live}
        unknown = [str(ticket_id) for ticket_id in ticket_ids if ticket_id not in by_id]
        if unknown:
            raise RefundRefused(
                f"These tickets are not live tickets of this order: {', '.join(unknown)}.",
                code="unknown-ticket",
            )
        chosen = [by_id[ticket_id] for ticket_id in dict.fromkeys(ticket_ids)]
    whole = ticket_ids is None or len(chosen) == len(live)
    if whole:
        amount = (
            order.paid_minor
            - order.refunded_minor
            - _requested_total(await refunds.of_order(order.id))
        )
    else:
        amount = sum(lines[ticket.order_line_id].total_minor for ticket in chosen)
    for ticket in chosen:
        ticket.status = "revoked"
        ticket.revoked_reason = "event-cancelled" if reason == "event-cancelled" else "refunded"
        ticket.revoked_at = now
        lines[ticket.order_line_id].refunded = True
        await outbox.add(
            TICKET_CANCELLED.name,
            TicketCancelled(
                ticket_id=ticket.id,
                order_id=order.id,
                event_id=order.event_id,
                seat_id=ticket.seat_id,
                ticket_type_id=ticket.ticket_type_id,
                reason=ticket.revoked_reason,
                cancelled_at=now,
            ),
            key=order.event_id,
        )
    order.status = (OrderStatus.REFUNDING if whole else OrderStatus.PARTIALLY_REFUNDED).value
    order.updated_at = now
    if amount <= 0:
        # Nothing to give back (free tickets, a 100 % code): the tickets are revoked and
        # their places freed all the same; a whole order is refunded at once.
        if whole:
            order.status = OrderStatus.REFUNDED.value
        return None
    refund = Refund(
        id=uuid.uuid4(),
        order_id=order.id,
        amount_minor=amount,
        currency=order.currency,
        reason=reason,
        status="requested",
        ticket_ids=[str(ticket.id) for ticket in chosen],
        requested_by=requested_by,
        requested_at=now,
    )
    refunds.add(refund)
    await outbox.add(
        REFUND_REQUESTED.name,
        RefundRequested(
            refund_id=refund.id,
            order_id=order.id,
            event_id=order.event_id,
            user_id=order.user_id,
            amount_minor=amount,
            currency=order.currency,
            reason=reason,
            ticket_ids=[ticket.id for ticket in chosen],
            requested_at=now,
        ),
        key=order.id,
    )
    return refund


def _requested_total(refunds: Sequence[Refund]) -> int:
    """Refunds asked for and not settled yet (they will add to ``refunded_minor``)."""
    return sum(refund.amount_minor for refund in refunds if refund.status == "requested")


async def on_refund_succeeded(
    refunded: RefundSucceeded,
    *,
    orders: OrderRepository,
    refunds: RefundRepository,
    clock: Clock,
) -> None:
    order = await orders.get(refunded.order_id, for_update=True)
    if order is None or order.paid_minor == 0:
        return  # money the order never had (a payment refunded before it was reported)
    refund = await refunds.get(refunded.refund_id, for_update=True) if refunded.refund_id else None
    if refund is None and refunded.refund_id is None:
        # Payments could not tell whose refund this is (it found the money before it knew
        # the request): a refund this order asked for of that amount, oldest first.
        refund = next(
            (
                asked
                for asked in await refunds.of_order(order.id)
                if asked.status == "requested" and asked.amount_minor == refunded.amount_minor
            ),
            None,
        )
    if refund is not None:
        if refund.status == "succeeded":
            return
        refund.status = "succeeded"
        refund.settled_at = refunded.refunded_at
        if refund.reason == "duplicate-payment":
            return  # that money was never the order's
    order.refunded_minor = min(order.paid_minor, order.refunded_minor + refunded.amount_minor)
    if order.refunded_minor >= order.paid_minor:
        order.status = OrderStatus.REFUNDED.value
    elif order.status == OrderStatus.PAID:
        order.status = OrderStatus.PARTIALLY_REFUNDED.value
    order.updated_at = clock()


async def on_refund_failed(failed: RefundFailed, *, refunds: RefundRepository) -> None:
    refund = await refunds.get(failed.refund_id, for_update=True)
    if refund is not None and refund.status == "requested":
        refund.status = "failed"
        log.error("refund %s of order %s failed: %s", refund.id, refund.order_id, failed.reason)
