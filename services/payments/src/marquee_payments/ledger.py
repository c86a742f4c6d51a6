"""The double-entry ledger: every movement of money as legs that add up to zero.

Accounts (debits positive, credits negative):

- ``provider:<name>`` — money held at the payment provider for us;
- ``organizer:<event>`` — what we owe the event's organizer;
- ``platform:fees`` — our service fees;
- ``disputes`` — money the buyer's bank took back while a dispute runs.

A charge of A with fees F: provider +A, organizer -(A-F), fees -F. A refund of R gives
back fees in proportion (rounded down, the rest from the organizer): provider -R,
organizer +(R-r), fees +r. A dispute of D: disputes +D, provider -D. Each movement is
posted once: ``(movement, account)`` is unique, so a webhook applied twice posts nothing
the second time.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_payments.models import LedgerEntry, Payment


class Ledger:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _post(
        self,
        movement: str,
        kind: str,
        payment: Payment,
        legs: dict[str, int],
        now: datetime,
    ) -> bool:
        assert sum(legs.values()) == 0, f"movement {movement} does not balance: {legs}"
        rows = [
            {
                "movement": movement,
                "kind": kind,
                "order_id": payment.order_id,
                "payment_id": payment.id,
                "account": account,
                "amount_minor": amount,
                "currency": payment.currency,
                "created_at": now,
            }
            for account, amount in legs.items()
            if amount != 0
        ]
        if not rows:
            return False
        result = await self.session.execute(
            insert(LedgerEntry).values(rows).on_conflict_do_nothing().returning(LedgerEntry.id)
        )
        return len(result.all()) > 0

    async def post_charge(self, payment: Payment, now: datetime) -> bool:
        amount, fees = payment.amount_minor, min(payment.fees_minor, payment.amount_minor)
        return await self._post(
            f"charge:{payment.provider_payment_id}",
            "charge",
            payment,
            {
                f"provider:{payment.provider}": amount,
                f"organizer:{payment.event_id}": -(amount - fees),
                "platform:fees": -fees,
            },
            now,
        )

    async def post_refund(
        self, payment: Payment, provider_refund_id: str, amount: int, now: datetime
    ) -> bool:
        fees_back = min(payment.fees_minor, payment.amount_minor) * amount // payment.amount_minor
        return await self._post(
            f"refund:{provider_refund_id}",
            "refund",
            payment,
            {
                f"provider:{payment.provider}": -amount,
                f"organizer:{payment.event_id}": amount - fees_back,
                "platform:fees": fees_back,
            },
            now,
        )

    async def post_dispute(
        self, payment: Payment, dispute_id: str, amount: int, now: datetime
    ) -> bool:
        return await self._post(
            f"dispute:{dispute_id}",
            "dispute",
            payment,
            {"disputes": amount, f"provider:{payment.provider}": -amount},
            now,
        )

    async def has_movement(self, movement: str) -> bool:
        statement = select(LedgerEntry.id).where(LedgerEntry.movement == movement).limit(1)
        return (await self.session.execute(statement)).first() is not None

    async def balance_of_order(self, order_id: uuid.UUID) -> int:
        statement = select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.order_id == order_id
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def unbalanced_orders(self) -> list[tuple[uuid.UUID, int]]:
        statement = (
            select(LedgerEntry.order_id, func.sum(LedgerEntry.amount_minor))
            .group_by(LedgerEntry.order_id)
            .having(func.sum(LedgerEntry.amount_minor) != 0)
        )
        return [(row[0], int(row[1])) for row in await self.session.execute(statement)]

    async def charged(self, order_id: uuid.UUID) -> int:
        """What the provider account received for the order, net of refunds and disputes."""
        statement = select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.order_id == order_id, LedgerEntry.account.like("provider:%")
        )
        return int((await self.session.execute(statement)).scalar_one())
