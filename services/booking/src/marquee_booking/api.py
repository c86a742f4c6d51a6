"""The booking API: orders, tickets, refunds, transfers, check-in, and the organizer's
promo codes, sales settings and door staff. Thin routers over the handlers; each summary
says who may call it, and the loaders of :mod:`marquee_booking.deps` enforce it.

Paths are the public ones (``/api/v1/orders`` …); the gateway routes them here.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import Query, Request, Response

from marquee_booking import barcodes, handlers, qr, tickets
from marquee_booking.deps import (
    BookingHandlerDependencies,
    DoorEvent,
    HeldTicket,
    InventoryDep,
    LockedHeldTicket,
    LockedOrder,
    ManagedEvent,
    ReadManagedEvent,
    RunHandler,
    SettingsDep,
    VisibleOrder,
    VisibleTicket,
    organizes,
)
from marquee_booking.domain import (
    OrderNotFound,
    RefundRefused,
    normalize_promo_code,
)
from marquee_booking.models import Order, PromoCode, Ticket
from marquee_booking.repository import OrderRepository, TicketRepository
from marquee_booking.schemas import (
    CheckInRead,
    OfflineScans,
    OfflineScansRead,
    OrderCreate,
    OrderRead,
    PromoCodeCreate,
    PromoCodeRead,
    PromoCodeUpdate,
    RefundCreate,
    RefundRead,
    RevokedBarcode,
    SalesSettings,
    ScanCreate,
    ScannerKit,
    StaffRead,
    StaffUpdate,
    TicketRead,
    TransferCreate,
)
from marquee_platform.errors import Conflict, NotFound
from marquee_platform.http import ReadSessionDep, router
from marquee_platform.idempotency import IdempotencyKey, RequiredIdempotencyKey
from marquee_platform.pagination import CursorParamsDep, Page, paginate
from marquee_platform.security import CurrentUser

orders = router(tags=["orders"])
ticket_routes = router(tags=["tickets"])
organizer_routes = router(tags=["organizers"])
door = router(tags=["check-in"])


# ---- orders -------------------------------------------------------------------------------


@orders.post("/api/v1/orders", status_code=201, response_model=OrderRead)
async def place_order(
    body: OrderCreate,
    request: Request,
    user: CurrentUser,
    _key: RequiredIdempotencyKey,
    run: RunHandler,
    inventory: InventoryDep,
    settings: SettingsDep,
    response: Response,
) -> OrderRead:
    """**Who may call:** any signed-in person, for a hold of their own.

    Prices come from booking's copy of the catalog, never from the request. The order
    waits for payment until its hold lapses (``expires_at``). ``Idempotency-Key`` is
    required: the same key and body answer the same order; another body is a 422."""
    order = await run(
        handlers.place_order,
        handlers.PlaceOrder(
            event_id=body.event_id,
            hold_id=body.hold_id,
            user_id=user.user_id,
            authorization=request.headers.get("authorization", ""),
            promo_code=body.promo_code,
        ),
        inventory=inventory,
        hold_margin=timedelta(seconds=settings.hold_margin_seconds),
    )
    response.headers["Location"] = f"/api/v1/orders/{order.id}"
    return OrderRead.of(order, await run.orders.lines(order.id))


@orders.get("/api/v1/orders/{order_id}", response_model=OrderRead)
async def read_order(order: VisibleOrder, run: RunHandler) -> OrderRead:
    """**Who may call:** the buyer, the event's organizer, admins (anyone else: 404)."""
    return OrderRead.of(order, await run.orders.lines(order.id))


@orders.get("/api/v1/orders/{order_id}/tickets", response_model=list[TicketRead])
async def order_tickets(
    order: VisibleOrder,
    run: RunHandler,
    status: Annotated[Literal["valid", "revoked"] | None, Query()] = "valid",
) -> list[TicketRead]:
    """**Who may call:** the buyer, the event's organizer, admins. The order's tickets
    (live ones unless ``status`` says otherwise); a ticket transferred away is shown to
    the buyer as revoked, its replacement only to its new holder."""
    found = await run.tickets.of_order(order.id)
    return [
        TicketRead.of(ticket)
        for ticket in found
        if (status is None or ticket.status == status)
        and (ticket.holder_id == order.user_id or ticket.status != "valid")
    ]


@orders.post("/api/v1/orders/{order_id}/cancel", response_model=OrderRead)
async def cancel_order(order: LockedOrder, user: CurrentUser, run: RunHandler) -> OrderRead:
    """**Who may call:** the buyer, admins. Only an unpaid order; its hold is released."""
    if order.user_id != user.user_id and not user.is_admin:
        raise OrderNotFound(order.id)
    await run(handlers.cancel_order, order)
    return OrderRead.of(order, await run.orders.lines(order.id))


@orders.post("/api/v1/orders/{order_id}/refunds", status_code=201, response_model=RefundRead)
async def refund_order(
    body: RefundCreate,
    order: LockedOrder,
    user: CurrentUser,
    _key: IdempotencyKey,
    run: RunHandler,
) -> RefundRead:
    """**Who may call:** the event's organizer and admins, any time; the buyer while the
    event's refund policy allows (``buyer_refund_hours`` before the start).

    The refunded tickets are revoked at once and their places go back on sale; the money
    follows through the payment provider (the refund's ``status``)."""
    event = await run.events.get(order.event_id)
    assert event is not None
    ticket_ids = body.ticket_ids
    if user.is_admin or organizes(user, event):
        reason = "requested-by-organizer"
    else:
        now = run.clock()
        if event.buyer_refund_hours is None:
            raise RefundRefused(
                f"{event.name} does not refund tickets on request; ask the organizer.",
                code="refunds-not-offered",
            )
        deadline = event.starts_at - timedelta(hours=event.buyer_refund_hours)
        if now >= deadline:
            raise RefundRefused(
                f"Refunds for {event.name} closed at {deadline.isoformat()}.",
                code="refund-window-closed",
            )
        reason = "requested-by-buyer"
        ticket_ids = await _buyers_refundable(order, body.ticket_ids, run)
    refund = await run(
        handlers.refund_order,
        order,
        ticket_ids=ticket_ids,
        reason=reason,
        requested_by=user.user_id,
    )
    if refund is None:
        return RefundRead(
            refund_id=uuid.uuid5(order.id, ",".join(sorted(map(str, ticket_ids or [])))),
            order_id=order.id,
            amount_minor=0,
            currency=order.currency,
            reason=reason,
            status="succeeded",
            ticket_ids=list(ticket_ids or []),
            requested_at=run.clock(),
            settled_at=run.clock(),
        )
    return RefundRead.of(refund)


async def _buyers_refundable(
    order: Order, asked: list[uuid.UUID] | None, run: BookingHandlerDependencies
) -> list[uuid.UUID]:
    """A buyer refunds only tickets they still hold and that nobody used at the door: a
    ticket given away is its new holder's, a ticket scanned in was used."""
    refundable = [
        ticket.id
        for ticket in await run.tickets.of_order(order.id)
        if ticket.status == "valid"
        and ticket.holder_id == order.user_id
        and await run.checkins.accepted(ticket.id) is None
    ]
    if asked is None:
        if not refundable:
            raise RefundRefused(
                "None of this order's tickets can be refunded by you: they were used at the "
                "door or given away.",
                code="nothing-to-refund",
            )
        return refundable
    refused = [str(ticket_id) for ticket_id in asked if ticket_id not in refundable]
    if refused:
        raise RefundRefused(
            f"These tickets cannot be refunded by you (used at the door, given away, or not "
            f"live tickets of this order): {', '.join(refused)}.",
            code="ticket-not-refundable",
        )
    return list(asked)


@orders.get("/api/v1/users/me/orders", response_model=Page[OrderRead])
async def my_orders(
    user: CurrentUser, session: ReadSessionDep, params: CursorParamsDep
) -> Page[OrderRead]:
    """**Who may call:** any signed-in person: their own orders, newest first."""
    page = await paginate(
        session,
        OrderRepository(session).of_user(user.user_id),
        order_by=(Order.created_at, Order.id),
        params=params,
        descending=True,
    )
    lines = await OrderRepository(session).lines_of([order.id for order in page.items])
    return page.map(lambda order: OrderRead.of(order, lines[order.id]))


@orders.get("/api/v1/users/me/tickets", response_model=Page[TicketRead])
async def my_tickets(
    user: CurrentUser,
    session: ReadSessionDep,
    params: CursorParamsDep,
    status: Annotated[Literal["valid", "revoked"] | None, Query()] = "valid",
) -> Page[TicketRead]:
    """**Who may call:** any signed-in person: the tickets they hold (live ones unless
    ``status`` says otherwise), newest first."""
    statement = TicketRepository(session).of_holder(user.user_id)
    if status is not None:
        statement = statement.where(Ticket.status == status)
    page = await paginate(
        session,
        statement,
        order_by=(Ticket.issued_at, Ticket.id),
        params=params,
        descending=True,
    )
    return page.map(TicketRead.of)


# ---- tickets ------------------------------------------------------------------------------


@ticket_routes.get("/api/v1/tickets/{ticket_id}", response_model=TicketRead)
async def read_ticket(ticket: VisibleTicket) -> TicketRead:
    """**Who may call:** its holder, the event's organizer, admins."""
    return TicketRead.of(ticket)


@ticket_routes.get(
    "/api/v1/tickets/{ticket_id}/qr",
    responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}},
    response_class=Response,
)
async def ticket_qr(
    ticket: HeldTicket, format: Annotated[Literal["svg", "png"], Query()] = "svg"
) -> Response:
    """**Who may call:** its holder, admins. The barcode as a QR code (SVG or PNG)."""
    if ticket.status != "valid":
        raise Conflict(
            f"This ticket was {ticket.revoked_reason}: it has no barcode any more.",
            code="ticket-revoked",
        )
    headers = {"Cache-Control": "private, no-store"}
    if format == "png":
        return Response(qr.qr_png(ticket.barcode), media_type="image/png", headers=headers)
    return Response(qr.qr_svg(ticket.barcode), media_type="image/svg+xml", headers=headers)


@ticket_routes.post(
    "/api/v1/tickets/{ticket_id}/transfer", status_code=201, response_model=TicketRead
)
async def transfer_ticket(
    body: TransferCreate, ticket: LockedHeldTicket, _key: IdempotencyKey, run: RunHandler
) -> TicketRead:
    """**Who may call:** its holder. The ticket goes to the account with that email: the
    old barcode stops working, the recipient gets a new one. Answers the *new* ticket
    (which only its new holder can read from now on)."""
    replacement = await run(tickets.transfer_ticket, ticket, to_email=body.email)
    return TicketRead.of(replacement).model_copy(update={"barcode": None})


# ---- the organizer's side -----------------------------------------------------------------


@organizer_routes.get("/api/v1/events/{event_id}/orders", response_model=Page[OrderRead])
async def event_orders(
    event: ReadManagedEvent,
    session: ReadSessionDep,
    params: CursorParamsDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    buyer: Annotated[str | None, Query(max_length=200)] = None,
    created_from: datetime | None = None,
    created_until: datetime | None = None,
) -> Page[OrderRead]:
    """**Who may call:** the event's organizer, admins. Filter by status, buyer, time."""
    statement = OrderRepository(session).of_event(
        event.event_id,
        status=status,
        user_id=buyer,
        created_from=created_from,
        created_until=created_until,
    )
    page = await paginate(
        session, statement, order_by=(Order.created_at, Order.id), params=params, descending=True
    )
    lines = await OrderRepository(session).lines_of([order.id for order in page.items])
    return page.map(lambda order: OrderRead.of(order, lines[order.id]))


@organizer_routes.get(
    "/api/v1/events/{event_id}/orders.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def event_orders_csv(
    event: ReadManagedEvent,
    session: ReadSessionDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    created_from: datetime | None = None,
    created_until: datetime | None = None,
) -> Response:
    """**Who may call:** the event's organizer, admins. One row per order line."""
    repository = OrderRepository(session)
    found = await repository.all_of(
        repository.of_event(
            event.event_id, status=status, created_from=created_from, created_until=created_until
        )
    )
    lines = await repository.lines_of([order.id for order in found])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "order_id",
            "created_at",
            "status",
            "buyer",
            "ticket_type",
            "seat",
            "unit_price_minor",
            "discount_minor",
            "fee_minor",
            "line_total_minor",
            "currency",
            "promo_code",
            "refunded",
        ]
    )
    for order in found:
        for line in lines[order.id]:
            writer.writerow(
                [
                    order.id,
                    order.created_at.isoformat(),
                    order.status,
                    order.user_id,
                    _csv_safe(line.ticket_type_name),
                    line.seat_id or "",
                    line.unit_price_minor,
                    line.discount_minor,
                    line.fee_minor,
                    line.total_minor,
                    order.currency,
                    order.promo_code or "",
                    "yes" if line.refunded else "no",
                ]
            )
    filename = f"orders-{event.event_id}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@organizer_routes.get("/api/v1/events/{event_id}/sales-settings", response_model=SalesSettings)
async def read_sales_settings(event: ReadManagedEvent) -> SalesSettings:
    """**Who may call:** the event's organizer, admins."""
    return SalesSettings(
        service_fee_minor=event.service_fee_minor, buyer_refund_hours=event.buyer_refund_hours
    )


@organizer_routes.put("/api/v1/events/{event_id}/sales-settings", response_model=SalesSettings)
async def write_sales_settings(body: SalesSettings, event: ManagedEvent) -> SalesSettings:
    """**Who may call:** the event's organizer, admins. The fee applies to orders placed
    from now on; the refund policy to every paid order."""
    event.service_fee_minor = body.service_fee_minor
    event.buyer_refund_hours = body.buyer_refund_hours
    return body


@organizer_routes.get("/api/v1/events/{event_id}/staff", response_model=StaffRead)
async def read_staff(event: ReadManagedEvent, run: RunHandler) -> StaffRead:
    """**Who may call:** the event's organizer, admins."""
    staff = await run.events.staff(event.event_id)
    return StaffRead(event_id=event.event_id, user_ids=[person.user_id for person in staff])


@organizer_routes.put("/api/v1/events/{event_id}/staff", response_model=StaffRead)
async def write_staff(body: StaffUpdate, event: ManagedEvent, run: RunHandler) -> StaffRead:
    """**Who may call:** the event's organizer, admins. The accounts that may scan
    tickets at this event's doors (replaces the list)."""
    user_ids = [str(user_id) for user_id in body.user_ids]
    await run.events.replace_staff(event.event_id, user_ids, run.clock())
    return StaffRead(event_id=event.event_id, user_ids=sorted(set(user_ids)))


@organizer_routes.post(
    "/api/v1/events/{event_id}/promo-codes", status_code=201, response_model=PromoCodeRead
)
async def create_promo_code(
    body: PromoCodeCreate, _key: IdempotencyKey, event: ManagedEvent, run: RunHandler
) -> PromoCodeRead:
    """**Who may call:** the event's organizer, admins."""
    code = normalize_promo_code(body.code)
    if await run.promos.by_code(event.event_id, code) is not None:
        raise Conflict(f"{event.name} has a promo code {code} already.", code="promo-code-exists")
    if body.ticket_type_id is not None and body.ticket_type_id not in {
        ticket_type.ticket_type_id for ticket_type in await run.events.ticket_types(event.event_id)
    }:
        raise NotFound(
            f"{event.name} has no ticket type {body.ticket_type_id}.", code="unknown-ticket-type"
        )
    promo = PromoCode(
        id=uuid.uuid4(),
        event_id=event.event_id,
        code=code,
        kind=body.kind,
        value=body.value,
        currency=body.currency,
        ticket_type_id=body.ticket_type_id,
        max_uses=body.max_uses,
        max_uses_per_user=body.max_uses_per_user,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        uses=0,
        active=True,
        created_at=run.clock(),
    )
    run.promos.add(promo)
    await run.promos.session.flush()
    return PromoCodeRead.of(promo)


@organizer_routes.get("/api/v1/events/{event_id}/promo-codes", response_model=list[PromoCodeRead])
async def list_promo_codes(event: ReadManagedEvent, run: RunHandler) -> list[PromoCodeRead]:
    """**Who may call:** the event's organizer, admins."""
    return [PromoCodeRead.of(promo) for promo in await run.promos.of_event(event.event_id)]


@organizer_routes.patch(
    "/api/v1/events/{event_id}/promo-codes/{promo_code_id}", response_model=PromoCodeRead
)
async def update_promo_code(
    promo_code_id: uuid.UUID, body: PromoCodeUpdate, event: ManagedEvent, run: RunHandler
) -> PromoCodeRead:
    """**Who may call:** the event's organizer, admins. Switch it off, change its limit
    (not below the uses so far) or its end."""
    promo = await run.promos.get(promo_code_id, for_update=True)
    if promo is None or promo.event_id != event.event_id:
        raise NotFound(
            f"{event.name} has no promo code {promo_code_id}.", code="promo-code-not-found"
        )
    if body.max_uses is not None and body.max_uses < promo.uses:
        raise Conflict(
            f"Promo code {promo.code} has been used {promo.uses} times already: the limit "
            f"cannot go below that.",
            code="promo-limit-below-uses",
        )
    if body.active is not None:
        promo.active = body.active
    if body.max_uses is not None:
        promo.max_uses = body.max_uses
    if body.valid_until is not None:
        promo.valid_until = body.valid_until
    return PromoCodeRead.of(promo)


# ---- check-in -----------------------------------------------------------------------------


@door.post("/api/v1/events/{event_id}/checkins", response_model=CheckInRead)
async def check_in(
    body: ScanCreate, event: DoorEvent, user: CurrentUser, run: RunHandler
) -> CheckInRead:
    """**Who may call:** the event's organizer, its door staff, admins.

    ``result``: ``valid`` (let them in), ``already_used`` (with when and where),
    ``other_event``, ``revoked`` (refunded or transferred), ``forged``. A string that is
    not a barcode at all is a 422 ``malformed-barcode``."""
    return await run(
        tickets.check_in,
        event,
        tickets.Scan(
            barcode=body.barcode, gate=body.gate, scanned_at=run.clock(), scanned_by=user.user_id
        ),
    )


@door.post("/api/v1/events/{event_id}/checkins/offline", response_model=OfflineScansRead)
async def upload_offline_scans(
    body: OfflineScans, event: DoorEvent, user: CurrentUser, run: RunHandler
) -> OfflineScansRead:
    """**Who may call:** the event's organizer, its door staff, admins.

    A device that scanned offline uploads its scans: they are applied in the order they
    happened, the first scan of a ticket wins, and every conflict is answered (never
    dropped). Uploading the same scans again changes nothing."""
    results = await run(
        tickets.upload_offline_scans,
        event,
        [
            tickets.Scan(
                barcode=scan.barcode,
                gate=scan.gate,
                scanned_at=scan.scanned_at,
                scanned_by=user.user_id,
                device_id=body.device_id,
                scan_id=scan.scan_id,
            )
            for scan in body.scans
        ],
    )
    return OfflineScansRead(
        results=results, conflicts=sum(1 for result in results if result.result == "already_used")
    )


@door.get("/api/v1/events/{event_id}/scanner-kit", response_model=ScannerKit)
async def scanner_kit(event: DoorEvent, run: RunHandler) -> ScannerKit:
    """**Who may call:** the event's organizer, its door staff, admins. What a device
    needs to scan offline: the event's public key and every revoked barcode."""
    return ScannerKit(
        event_id=event.event_id,
        key_id=barcodes.public_key_id(event.public_key),
        public_key=barcodes.public_key_text(event.public_key),
        revoked=[
            RevokedBarcode(
                ticket_id=ticket.id, version=ticket.version, reason=ticket.revoked_reason
            )
            for ticket in await run.tickets.revoked_of_event(event.event_id)
        ],
        generated_at=run.clock(),
    )


ROUTERS = (orders, ticket_routes, organizer_routes, door)
