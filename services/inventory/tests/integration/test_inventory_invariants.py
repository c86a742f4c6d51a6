"""Random interleavings of everything that moves a place, checked after every step.

A hypothesis state machine holds, releases, lets holds lapse, sells (paid orders, late
ones included), refunds tickets, and flushes Redis then rebuilds it — against real Redis
and PostgreSQL. After every step:

- no seat is sold twice, and Redis and PostgreSQL agree on what is sold;
- no place is both sold and available (a seat has one state; counters add up);
- per ticket type, available + held + sold = capacity (seats: per event);
- what Redis holds is exactly what the live holds of the model hold.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import redis.asyncio as redis_asyncio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from marquee_inventory import handlers, tasks
from marquee_inventory.domain import InvalidInput, PlacesUnavailable, new_hold_id
from marquee_inventory.holds import EventKeys
from marquee_inventory.store import HoldStore
from marquee_platform.db import Database
from marquee_testing.events import Clock
from marquee_testing.inventory import (
    Catalog,
    order_paid,
    published_event,
    seat_id,
    ticket_cancelled,
)
from marquee_testing.localinfra import RedisServer

SEATS = [seat_id(0, row, seat) for row in range(2) for seat in range(3)]
CAPACITY = 4
USERS = ["u1", "u2", "u3"]


@dataclass
class LiveHold:
    hold_id: str
    user_id: str
    seats: list[str]
    quantity: int
    expires_at: object


@dataclass
class SoldTicket:
    order_id: uuid.UUID
    seat: str | None


@dataclass
class World:
    holds: dict[str, LiveHold] = field(default_factory=dict)
    lapsed: list[LiveHold] = field(default_factory=list)
    """Holds that ended unsold (expired or released): a late payment may still come."""
    tickets: list[SoldTicket] = field(default_factory=list)


def make_machine(
    database_url: str, redis_url: str, index_prefix: str
) -> type[RuleBasedStateMachine]:
    class InventoryMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.database = Database(database_url, pool_size=2)
            self.redis = redis_asyncio.Redis.from_url(redis_url)
            self.store = HoldStore(self.redis, index_prefix=index_prefix)
            self.catalog = Catalog(self.database, self.store)
            self.clock = Clock()
            self.world = World()

        def run(self, coroutine):  # type: ignore[no-untyped-def]
            return self.loop.run_until_complete(coroutine)

        def teardown(self) -> None:
            self.run(self.redis.aclose())
            self.run(self.database.dispose())
            self.loop.close()

        @initialize()
        def publish(self) -> None:
            self.event = self.run(
                self.catalog.publish(
                    published_event(
                        rows=2, seats_per_row=3, general_admission=CAPACITY, max_per_order=4
                    )
                )
            )
            self.standing = self.event.general_admission
            assert self.standing is not None

        # ---- moves -----------------------------------------------------------------

        @rule(
            user=st.sampled_from(USERS),
            seats=st.lists(st.sampled_from(SEATS), min_size=1, max_size=2, unique=True),
            quantity=st.integers(0, 2),
        )
        def hold(self, user: str, seats: list[str], quantity: int) -> None:
            hold_id = new_hold_id()
            try:
                held = self.run(
                    self.store.hold(
                        self.event.event_id,
                        hold_id=hold_id,
                        user_id=user,
                        seats=[(seat, None) for seat in seats] if quantity == 0 else [],
                        general_admission=[(self.standing, quantity)] if quantity else [],
                        now=self.clock(),
                    )
                )
            except (PlacesUnavailable, InvalidInput):
                return  # refused as a whole: the invariants check nothing moved
            self.world.holds[hold_id] = LiveHold(
                hold_id, user, [seat for seat, _ in held.seats], quantity, held.expires_at
            )

        @precondition(lambda self: bool(self.world.holds))
        @rule(data=st.data())
        def release(self, data: st.DataObject) -> None:
            hold = data.draw(st.sampled_from(list(self.world.holds.values())))
            self.run(
                self.store.release(
                    self.event.event_id, hold.hold_id, user_id=hold.user_id, now=self.clock()
                )
            )
            self.world.lapsed.append(self.world.holds.pop(hold.hold_id))

        @rule(minutes=st.integers(1, 6))
        def time_passes_and_the_sweeper_runs(self, minutes: int) -> None:
            self.clock.advance(timedelta(minutes=minutes))
            self.run(tasks.expire_holds(self.store, clock=self.clock, on_change=lambda _: None))
            for hold_id, hold in list(self.world.holds.items()):
                if hold.expires_at <= self.clock():  # type: ignore[operator]
                    self.world.lapsed.append(self.world.holds.pop(hold_id))

        @precondition(lambda self: bool(self.world.holds) or bool(self.world.lapsed))
        @rule(data=st.data())
        def pay(self, data: st.DataObject) -> None:
            candidates = list(self.world.holds.values()) + self.world.lapsed
            hold = data.draw(st.sampled_from(candidates))
            answer = {
                "hold_id": hold.hold_id,
                "event_id": str(self.event.event_id),
                "user_id": hold.user_id,
                "seats": [
                    {"seat_id": seat, "ticket_type_id": str(self.event.seated["standard"])}
                    for seat in hold.seats
                ],
                "general_admission": (
                    [{"ticket_type_id": str(self.standing), "quantity": hold.quantity}]
                    if hold.quantity
                    else []
                ),
            }
            message = order_paid(answer, order_id=uuid.uuid5(uuid.NAMESPACE_URL, hold.hold_id))
            outcome = self.run(self.catalog.sell(message, clock=self.clock))
            if hold.hold_id in self.world.holds:
                assert outcome == "confirmed", "a live hold's payment always sells"
                del self.world.holds[hold.hold_id]
            else:
                self.world.lapsed.remove(hold)
            if outcome == "confirmed":
                self.world.tickets.extend(SoldTicket(message.order_id, seat) for seat in hold.seats)
                self.world.tickets.extend(
                    SoldTicket(message.order_id, None) for _ in range(hold.quantity)
                )

        @precondition(lambda self: bool(self.world.tickets))
        @rule(data=st.data())
        def refund(self, data: st.DataObject) -> None:
            ticket = data.draw(st.sampled_from(self.world.tickets))
            self.world.tickets.remove(ticket)
            message = ticket_cancelled(
                order_id=ticket.order_id,
                event_id=self.event.event_id,
                seat_id=ticket.seat,
                ticket_type_id=self.event.seated["standard"] if ticket.seat else self.standing,  # type: ignore[arg-type]
            )
            assert self.run(self.catalog.cancel_ticket(message, clock=self.clock))

        @rule()
        def redis_is_flushed_and_rebuilt(self) -> None:
            self.run(self.redis.flushdb())
            self.world.lapsed.extend(self.world.holds.values())  # holds die with Redis
            self.world.holds.clear()
            self.run(
                handlers.rebuild_event(
                    self.event.event_id, database=self.database, store=self.store, force=False
                )
            )

        # ---- what must always be true ------------------------------------------------

        @invariant()
        def places_add_up(self) -> None:
            if not hasattr(self, "event"):
                return
            availability = self.run(self.store.availability(self.event.event_id))
            sold_in_postgres = self.run(self._sold_in_postgres())
            seat_states = availability.seats
            sold_in_redis = {seat for seat, state in seat_states.items() if state == "sold"}
            held_in_redis = {seat for seat, state in seat_states.items() if state == "held"}
            assert len(sold_in_postgres) == len(set(sold_in_postgres)), "a seat sold twice"
            assert sold_in_redis == set(sold_in_postgres), "Redis and PostgreSQL disagree on sold"
            held_by_model = {seat for hold in self.world.holds.values() for seat in hold.seats}
            assert held_in_redis == held_by_model
            assert len(seat_states) == len(SEATS)
            free_counter = self.run(
                self.redis.hget(EventKeys.of(self.event.event_id).meta, "seats_free")
            )
            assert int(free_counter) == availability.seats_available, "the free-seat count drifted"
            standing = availability.general_admission[str(self.standing)]
            assert standing["available"] + standing["held"] + standing["sold"] == CAPACITY
            assert standing["held"] == sum(hold.quantity for hold in self.world.holds.values())
            assert standing["sold"] == self.run(self._general_admission_sold())
            assert standing["sold"] == sum(
                1 for ticket in self.world.tickets if ticket.seat is None
            )
            assert sorted(sold_in_postgres) == sorted(
                ticket.seat for ticket in self.world.tickets if ticket.seat is not None
            )

        async def _sold_in_postgres(self) -> list[str]:
            async with self.database.reading() as session:
                rows = await session.execute(
                    text("SELECT seat_id FROM sold_seats WHERE event_id = :e"),
                    {"e": self.event.event_id},
                )
                return [row[0] for row in rows]

        async def _general_admission_sold(self) -> int:
            async with self.database.reading() as session:
                return int(
                    (
                        await session.execute(
                            text(
                                "SELECT sold FROM inventory_ticket_types "
                                "WHERE event_id = :e AND ticket_type_id = :t"
                            ),
                            {"e": self.event.event_id, "t": self.standing},
                        )
                    ).scalar_one()
                )

    return InventoryMachine


async def test_no_interleaving_sells_a_place_twice_or_loses_one(
    inventory_database_url: str, private_redis: RedisServer, index_prefix: str
) -> None:
    # A Redis of its own: the machine flushes it, and replays must see only their own state.
    machine = make_machine(inventory_database_url, private_redis.url, index_prefix)
    # Its own thread and event loop: hypothesis drives the steps synchronously.
    await asyncio.to_thread(
        run_state_machine_as_test,
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
