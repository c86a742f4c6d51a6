"""Every query of the events service. Repositories never commit; writes flush so later
queries in the same transaction see them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload, undefer

from marquee_events.domain import LIVE_STATUSES
from marquee_events.models import Event, Review, TicketHolder, TicketType, Venue
from marquee_platform.errors import NotFound

_LIVE = [status.value for status in LIVE_STATUSES]


def event_not_found(event_id: uuid.UUID) -> NotFound:
    return NotFound(f"There is no event {event_id}.", code="event-not-found")


def venue_not_found(venue_id: uuid.UUID) -> NotFound:
    return NotFound(f"There is no venue {venue_id}.", code="venue-not-found")


class VenueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, venue: Venue) -> None:
        self._session.add(venue)
        await self._session.flush()

    async def get(self, venue_id: uuid.UUID, *, with_seating_map: bool = False) -> Venue:
        statement = select(Venue).where(Venue.id == venue_id)
        if with_seating_map:
            statement = statement.options(undefer(Venue.seating_map))
        venue = (await self._session.execute(statement)).scalar_one_or_none()
        if venue is None:
            raise venue_not_found(venue_id)
        return venue

    async def get_for_update(self, venue_id: uuid.UUID) -> Venue:
        statement = (
            select(Venue)
            .where(Venue.id == venue_id)
            .options(undefer(Venue.seating_map))
            .with_for_update(key_share=True)
        )
        venue = (await self._session.execute(statement)).scalar_one_or_none()
        if venue is None:
            raise venue_not_found(venue_id)
        return venue

    @staticmethod
    def owned_by(owner_id: str) -> Select[Venue]:
        return select(Venue).where(Venue.owner_id == owner_id)


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, event: Event) -> None:
        self._session.add(event)
        await self._session.flush()

    async def get(self, event_id: uuid.UUID) -> Event:
        """The event (not deleted) with its venue loaded; :class:`NotFound` otherwise."""
        statement = (
            select(Event)
            .where(Event.id == event_id, Event.deleted_at.is_(None))
            .options(selectinload(Event.venue))
        )
        event = (await self._session.execute(statement)).scalar_one_or_none()
        if event is None:
            raise event_not_found(event_id)
        return event

    async def get_for_update(self, event_id: uuid.UUID) -> Event:
        """The event, locked until the transaction ends, so changes to one event (and the
        versions they produce) are serialized. Read its venue after this, so a venue
        change that committed meanwhile is seen."""
        statement = (
            select(Event)
            .where(Event.id == event_id, Event.deleted_at.is_(None))
            .with_for_update(key_share=True)
        )
        event = (await self._session.execute(statement)).scalar_one_or_none()
        if event is None:
            raise event_not_found(event_id)
        return event

    async def lock_events_at_venue(self, venue_id: uuid.UUID) -> Sequence[Event]:
        """Every event at the venue, locked in id order (one order everywhere: no deadlock)."""
        statement = (
            select(Event)
            .where(Event.venue_id == venue_id, Event.deleted_at.is_(None))
            .order_by(Event.id)
            .with_for_update(key_share=True)
        )
        return (await self._session.execute(statement)).scalars().all()

    async def ticket_types(self, event_id: uuid.UUID) -> list[TicketType]:
        statement = (
            select(TicketType)
            .where(TicketType.event_id == event_id)
            .order_by(TicketType.created_at, TicketType.id)
        )
        return list((await self._session.execute(statement)).scalars().all())

    async def add_ticket_type(self, ticket_type: TicketType) -> None:
        self._session.add(ticket_type)
        await self._session.flush()

    async def delete_ticket_type(self, ticket_type: TicketType) -> None:
        await self._session.delete(ticket_type)
        await self._session.flush()

    @staticmethod
    def managed_by(organizer_id: str, *, status: str | None = None) -> Select[Event]:
        statement = select(Event).where(
            Event.organizer_id == organizer_id, Event.deleted_at.is_(None)
        )
        if status is not None:
            statement = statement.where(Event.status == status)
        return statement.options(selectinload(Event.venue))

    @staticmethod
    def upcoming(now: datetime) -> Select[Event]:
        """Public events not over yet (published, on sale or sold out)."""
        return (
            select(Event)
            .where(
                Event.deleted_at.is_(None),
                Event.status.in_(_LIVE),
                Event.ends_at > now,
            )
            .options(selectinload(Event.venue))
        )

    @staticmethod
    def every_event() -> Select[Event]:
        """All events, drafts and deleted ones included (for snapshots)."""
        return select(Event).options(selectinload(Event.venue))

    async def ticket_types_by_event(
        self, event_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[TicketType]]:
        found: dict[uuid.UUID, list[TicketType]] = {event_id: [] for event_id in event_ids}
        rows = await self._session.scalars(
            select(TicketType)
            .where(TicketType.event_id.in_(event_ids))
            .order_by(TicketType.created_at, TicketType.id)
        )
        for ticket_type in rows:
            found[ticket_type.event_id].append(ticket_type)
        return found

    @staticmethod
    def ticket_types_of(event_id: uuid.UUID) -> Select[TicketType]:
        return select(TicketType).where(TicketType.event_id == event_id)


@dataclass(frozen=True, slots=True)
class ReviewSummary:
    count: int
    average_rating: float | None


class ReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_once(self, values: dict[str, Any]) -> Review | None:
        """Insert the review unless this author already reviewed this event (then None)."""
        statement = (
            insert(Review)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[Review.event_id, Review.author_id])
            .returning(Review.id)
        )
        inserted = (await self._session.execute(statement)).scalar_one_or_none()
        if inserted is None:
            return None
        return await self.get(inserted, event_id=values["event_id"])

    async def get(
        self, review_id: uuid.UUID, *, event_id: uuid.UUID, for_update: bool = False
    ) -> Review:
        statement = select(Review).where(Review.id == review_id, Review.event_id == event_id)
        if for_update:
            statement = statement.with_for_update(key_share=True)
        review = (await self._session.execute(statement)).scalar_one_or_none()
        if review is None:
            raise NotFound(f"Event {event_id} has no review {review_id}.", code="review-not-found")
        return review

    async def by_author(self, event_id: uuid.UUID, author_id: str) -> Review | None:
        statement = select(Review).where(Review.event_id == event_id, Review.author_id == author_id)
        return (await self._session.execute(statement)).scalar_one_or_none()

    async def summary(self, event_id: uuid.UUID) -> ReviewSummary:
        statement = select(func.count(), func.avg(Review.rating)).where(Review.event_id == event_id)
        count, average = (await self._session.execute(statement)).one()
        return ReviewSummary(
            count=int(count), average_rating=round(float(average), 2) if average else None
        )

    async def delete_by_author(self, author_id: str) -> int:
        result = await self._session.execute(delete(Review).where(Review.author_id == author_id))
        return cast(CursorResult[Any], result).rowcount

    @staticmethod
    def of_event(event_id: uuid.UUID) -> Select[Review]:
        return select(Review).where(Review.event_id == event_id)


class TicketHolderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self, *, event_id: uuid.UUID, user_id: str, ticket_id: uuid.UUID, issued_at: datetime
    ) -> bool:
        """Remember that ``user_id`` holds a ticket to ``event_id``; False if already known."""
        statement = (
            insert(TicketHolder)
            .values(
                event_id=event_id,
                user_id=user_id,
                first_ticket_id=ticket_id,
                first_issued_at=issued_at,
            )
            .on_conflict_do_nothing(index_elements=[TicketHolder.event_id, TicketHolder.user_id])
            .returning(TicketHolder.user_id)
        )
        return (await self._session.execute(statement)).scalar_one_or_none() is not None

    async def is_holder(self, event_id: uuid.UUID, user_id: str) -> bool:
        statement = select(TicketHolder.user_id).where(
            TicketHolder.event_id == event_id, TicketHolder.user_id == user_id
        )
        return (await self._session.execute(statement)).first() is not None

    async def forget_user(self, user_id: str) -> int:
        result = await self._session.execute(
            delete(TicketHolder).where(TicketHolder.user_id == user_id)
        )
        return cast(CursorResult[Any], result).rowcount
