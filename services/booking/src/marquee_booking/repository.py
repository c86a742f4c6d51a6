"""Every query of the booking service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_booking.models import (
    BookingEvent,
    BookingTicketType,
    CheckIn,
    EventStaff,
    Order,
    OrderLine,
    Person,
    PromoCode,
    Refund,
    Ticket,
)


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, event_id: uuid.UUID, *, for_update: bool = False) -> BookingEvent | None:
        statement = select(BookingEvent).where(BookingEvent.event_id == event_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    def add(self, event: BookingEvent) -> None:
        self.session.add(event)

    async def ticket_types(self, event_id: uuid.UUID) -> list[BookingTicketType]:
        statement = select(BookingTicketType).where(BookingTicketType.event_id == event_id)
        return list((await self.session.execute(statement)).scalars())

    def add_ticket_type(self, ticket_type: BookingTicketType) -> None:
        self.session.add(ticket_type)

    async def staff(self, event_id: uuid.UUID) -> list[EventStaff]:
        statement = (
            select(EventStaff).where(EventStaff.event_id == event_id).order_by(EventStaff.user_id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def is_staff(self, event_id: uuid.UUID, user_id: str) -> bool:
        statement = select(EventStaff.user_id).where(
            EventStaff.event_id == event_id, EventStaff.user_id == user_id
        )
        return (await self.session.execute(statement)).first() is not None

    async def replace_staff(
        self, event_id: uuid.UUID, user_ids: Sequence[str], now: datetime
    ) -> None:
        await self.session.execute(delete(EventStaff).where(EventStaff.event_id == event_id))
        for user_id in sorted(set(user_ids)):
            self.session.add(EventStaff(event_id=event_id, user_id=user_id, added_at=now))
        await self.session.flush()


class PeopleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, user_id: str, email: str) -> None:
        # An address moves to its newest owner (an account deleted and another registered).
        await self.session.execute(
            delete(Person).where(Person.email == email, Person.user_id != user_id)
        )
        statement = insert(Person).values(user_id=user_id, email=email)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[Person.user_id], set_={"email": statement.excluded.email}
            )
        )

    async def forget(self, user_id: str) -> None:
        await self.session.execute(delete(Person).where(Person.user_id == user_id))

    async def by_email(self, email: str) -> Person | None:
        statement = select(Person).where(Person.email == email.strip().lower())
        return (await self.session.execute(statement)).scalar_one_or_none()


class PromoRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_code(
        self, event_id: uuid.UUID, code: str, *, for_update: bool = False
    ) -> PromoCode | None:
        statement = select(PromoCode).where(PromoCode.event_id == event_id, PromoCode.code == code)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get(self, promo_id: uuid.UUID, *, for_update: bool = False) -> PromoCode | None:
        statement = select(PromoCode).where(PromoCode.id == promo_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def of_event(self, event_id: uuid.UUID) -> list[PromoCode]:
        statement = (
            select(PromoCode).where(PromoCode.event_id == event_id).order_by(PromoCode.created_at)
        )
        return list((await self.session.execute(statement)).scalars())

    def add(self, promo: PromoCode) -> None:
        self.session.add(promo)

    async def take_use(self, promo_id: uuid.UUID) -> bool:
        """One more use, if the limit allows (atomic: concurrent orders cannot overshoot)."""
        statement = (
            update(PromoCode)
            .where(
                PromoCode.id == promo_id,
                (PromoCode.max_uses.is_(None)) | (PromoCode.uses < PromoCode.max_uses),
            )
            .values(uses=PromoCode.uses + 1)
            .returning(PromoCode.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def give_back_use(self, promo_id: uuid.UUID) -> None:
        await self.session.execute(
            update(PromoCode)
            .where(PromoCode.id == promo_id, PromoCode.uses > 0)
            .values(uses=PromoCode.uses - 1)
        )

    async def uses_by(self, promo_id: uuid.UUID, user_id: str) -> int:
        statement = select(func.count()).where(
            Order.promo_code_id == promo_id, Order.user_id == user_id, Order.promo_use_held
        )
        return int((await self.session.execute(statement)).scalar_one())


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        statement = select(Order).where(Order.id == order_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def by_hold(self, hold_id: str, *, for_update: bool = False) -> Order | None:
        statement = select(Order).where(Order.hold_id == hold_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def lines(self, order_id: uuid.UUID) -> list[OrderLine]:
        statement = (
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position)
        )
        return list((await self.session.execute(statement)).scalars())

    async def lines_of(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[OrderLine]]:
        found: dict[uuid.UUID, list[OrderLine]] = {order_id: [] for order_id in order_ids}
        if not order_ids:
            return found
        statement = (
            select(OrderLine)
            .where(OrderLine.order_id.in_(order_ids))
            .order_by(OrderLine.order_id, OrderLine.position)
        )
        for line in (await self.session.execute(statement)).scalars():
            found[line.order_id].append(line)
        return found

    def add(self, order: Order, lines: Sequence[OrderLine]) -> None:
        self.session.add(order)
        self.session.add_all(lines)

    def of_user(self, user_id: str) -> Select[Order]:
        return select(Order).where(Order.user_id == user_id)

    def of_event(
        self,
        event_id: uuid.UUID,
        *,
        status: str | None = None,
        user_id: str | None = None,
        created_from: datetime | None = None,
        created_until: datetime | None = None,
    ) -> Select[Order]:
        statement = select(Order).where(Order.event_id == event_id)
        if status is not None:
            statement = statement.where(Order.status == status)
        if user_id is not None:
            statement = statement.where(Order.user_id == user_id)
        if created_from is not None:
            statement = statement.where(Order.created_at >= created_from)
        if created_until is not None:
            statement = statement.where(Order.created_at < created_until)
        return statement

    async def all_of(self, statement: Select[Order]) -> list[Order]:
        return list((await self.session.execute(statement.order_by(Order.created_at))).scalars())

    async def pending_of_event(self, event_id: uuid.UUID) -> list[Order]:
        statement = (
            select(Order)
            .where(Order.event_id == event_id, Order.status == "pending_payment")
            .with_for_update()
        )
        return list((await self.session.execute(statement)).scalars())

    async def paid_of_event(self, event_id: uuid.UUID) -> list[Order]:
        statement = (
            select(Order)
            .where(Order.event_id == event_id, Order.status.in_(("paid", "partially_refunded")))
            .with_for_update()
        )
        return list((await self.session.execute(statement)).scalars())


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, ticket_id: uuid.UUID, *, for_update: bool = False) -> Ticket | None:
        statement = select(Ticket).where(Ticket.id == ticket_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def of_order(self, order_id: uuid.UUID, *, for_update: bool = False) -> list[Ticket]:
        statement = select(Ticket).where(Ticket.order_id == order_id).order_by(Ticket.issued_at)
        if for_update:
            statement = statement.with_for_update()
        return list((await self.session.execute(statement)).scalars())

    def add(self, ticket: Ticket) -> None:
        self.session.add(ticket)

    def of_holder(self, holder_id: str) -> Select[Ticket]:
        return select(Ticket).where(Ticket.holder_id == holder_id)

    async def revoked_of_event(self, event_id: uuid.UUID) -> list[Ticket]:
        statement = (
            select(Ticket)
            .where(Ticket.event_id == event_id, Ticket.status == "revoked")
            .order_by(Ticket.revoked_at)
        )
        return list((await self.session.execute(statement)).scalars())


class CheckInRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def accepted(self, ticket_id: uuid.UUID) -> CheckIn | None:
        statement = select(CheckIn).where(CheckIn.ticket_id == ticket_id, CheckIn.result == "valid")
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def by_scan(self, event_id: uuid.UUID, device_id: str, scan_id: str) -> CheckIn | None:
        statement = select(CheckIn).where(
            CheckIn.event_id == event_id, CheckIn.device_id == device_id, CheckIn.scan_id == scan_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def record(self, checkin: CheckIn) -> bool:
        """Insert the scan; False if another accepted scan of the ticket got there first
        (the partial unique index decides, under any concurrency)."""
        values = {column.key: getattr(checkin, column.key) for column in CheckIn.__table__.columns}
        statement = insert(CheckIn).values(**values).on_conflict_do_nothing()
        result = await self.session.execute(statement.returning(CheckIn.id))
        return result.first() is not None


class RefundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, refund_id: uuid.UUID, *, for_update: bool = False) -> Refund | None:
        statement = select(Refund).where(Refund.id == refund_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def of_order(self, order_id: uuid.UUID) -> list[Refund]:
        statement = select(Refund).where(Refund.order_id == order_id).order_by(Refund.requested_at)
        return list((await self.session.execute(statement)).scalars())

    def add(self, refund: Refund) -> None:
        self.session.add(refund)
