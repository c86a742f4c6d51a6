"""Every query of the inventory service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_inventory.models import (
    AdmissionGate,
    InventoryEvent,
    InventorySeat,
    InventoryTicketType,
    ReturnedPlace,
    Sale,
    SoldSeat,
)


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, event_id: uuid.UUID, *, for_update: bool = False) -> InventoryEvent | None:
        query = select(InventoryEvent).where(InventoryEvent.event_id == event_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    def add(self, event: InventoryEvent) -> None:
        self.session.add(event)

    async def ticket_types(self, event_id: uuid.UUID) -> list[InventoryTicketType]:
        query = (
            select(InventoryTicketType)
            .where(InventoryTicketType.event_id == event_id)
            .order_by(InventoryTicketType.name, InventoryTicketType.ticket_type_id)
        )
        return list((await self.session.execute(query)).scalars())

    def add_ticket_type(self, ticket_type: InventoryTicketType) -> None:
        self.session.add(ticket_type)

    async def loaded_events(self, *, changed_since: datetime | None = None) -> list[InventoryEvent]:
        query = select(InventoryEvent).where(InventoryEvent.seating_loaded)
        if changed_since is not None:
            query = query.where(InventoryEvent.updated_at >= changed_since)
        return list((await self.session.execute(query)).scalars())


class SeatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_all(self, rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 2000):
            chunk = rows[start : start + 2000]
            await self.session.execute(insert(InventorySeat).values(chunk).on_conflict_do_nothing())

    async def of_event(self, event_id: uuid.UUID) -> list[InventorySeat]:
        query = select(InventorySeat).where(InventorySeat.event_id == event_id)
        return list((await self.session.execute(query)).scalars())

    async def states(self, event_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
        """(seat, price category, the order it is sold to or None) for every seat."""
        query = (
            select(InventorySeat.seat_id, InventorySeat.price_category, SoldSeat.order_id)
            .outerjoin(
                SoldSeat,
                (SoldSeat.event_id == InventorySeat.event_id)
                & (SoldSeat.seat_id == InventorySeat.seat_id),
            )
            .where(InventorySeat.event_id == event_id)
        )
        return [
            (seat, category, str(order) if order is not None else None)
            for seat, category, order in await self.session.execute(query)
        ]

    async def sell(
        self,
        event_id: uuid.UUID,
        seats: Sequence[tuple[str, uuid.UUID]],
        *,
        order_id: uuid.UUID,
        at: datetime,
    ) -> int:
        """Insert the sold seats; returns how many were free (the unique constraint)."""
        if not seats:
            return 0
        result = await self.session.execute(
            insert(SoldSeat)
            .values(
                [
                    {
                        "event_id": event_id,
                        "seat_id": seat,
                        "order_id": order_id,
                        "ticket_type_id": ticket_type,
                        "sold_at": at,
                    }
                    for seat, ticket_type in seats
                ]
            )
            .on_conflict_do_nothing()
            .returning(SoldSeat.seat_id)
        )
        return len(result.all())

    async def unsell(self, event_id: uuid.UUID, seat_id: str, *, order_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(SoldSeat)
            .where(
                SoldSeat.event_id == event_id,
                SoldSeat.seat_id == seat_id,
                SoldSeat.order_id == order_id,
            )
            .returning(SoldSeat.seat_id)
        )
        return result.first() is not None

    async def existing(self, event_id: uuid.UUID, seat_ids: Sequence[str]) -> set[str]:
        query = select(InventorySeat.seat_id).where(
            InventorySeat.event_id == event_id, InventorySeat.seat_id.in_(seat_ids)
        )
        return set((await self.session.execute(query)).scalars())

    async def sold_count(self, event_id: uuid.UUID) -> int:
        query = select(func.count()).select_from(SoldSeat).where(SoldSeat.event_id == event_id)
        return int((await self.session.execute(query)).scalar_one())


class SaleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: uuid.UUID) -> Sale | None:
        return await self.session.get(Sale, order_id)

    def add(self, sale: Sale) -> None:
        self.session.add(sale)

    async def sell_general_admission(
        self, event_id: uuid.UUID, ticket_type_id: uuid.UUID, quantity: int
    ) -> bool:
        """Count ``quantity`` more sold, if that stays within capacity."""
        result = await self.session.execute(
            update(InventoryTicketType)
            .where(
                InventoryTicketType.event_id == event_id,
                InventoryTicketType.ticket_type_id == ticket_type_id,
                InventoryTicketType.capacity.is_not(None),
                InventoryTicketType.sold + quantity <= InventoryTicketType.capacity,
            )
            .values(sold=InventoryTicketType.sold + quantity)
            .returning(InventoryTicketType.ticket_type_id)
        )
        return result.first() is not None

    async def unsell_general_admission(
        self, event_id: uuid.UUID, ticket_type_id: uuid.UUID
    ) -> bool:
        result = await self.session.execute(
            update(InventoryTicketType)
            .where(
                InventoryTicketType.event_id == event_id,
                InventoryTicketType.ticket_type_id == ticket_type_id,
                InventoryTicketType.sold > 0,
            )
            .values(sold=InventoryTicketType.sold - 1)
            .returning(InventoryTicketType.ticket_type_id)
        )
        return result.first() is not None

    async def confirmed_holds(self, event_id: uuid.UUID) -> dict[str, str]:
        query = select(Sale.hold_id, Sale.order_id).where(
            Sale.event_id == event_id, Sale.outcome == "confirmed"
        )
        return {hold: str(order) for hold, order in await self.session.execute(query)}

    async def record_return(self, ticket_id: uuid.UUID, event_id: uuid.UUID, at: datetime) -> bool:
        """True the first time this ticket's place is returned."""
        result = await self.session.execute(
            insert(ReturnedPlace)
            .values(ticket_id=ticket_id, event_id=event_id, returned_at=at)
            .on_conflict_do_nothing()
            .returning(ReturnedPlace.ticket_id)
        )
        return result.first() is not None


class AdmissionGateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_if_newer(
        self, event_id: uuid.UUID, *, required: bool, configured_at: datetime
    ) -> bool:
        """Insert the gate, or replace one configured before ``configured_at``; True if
        written (one statement: two deliveries at once cannot both think they were newer)."""
        statement = insert(AdmissionGate).values(
            event_id=event_id, required=required, configured_at=configured_at
        )
        result = await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[AdmissionGate.event_id],
                set_={"required": required, "configured_at": configured_at},
                where=AdmissionGate.configured_at < statement.excluded.configured_at,
            ).returning(AdmissionGate.event_id)
        )
        return result.first() is not None

    async def get(self, event_id: uuid.UUID) -> AdmissionGate | None:
        return await self.session.get(AdmissionGate, event_id)

    async def all(self) -> list[AdmissionGate]:
        return list((await self.session.execute(select(AdmissionGate))).scalars())
