"""Fraud checks, inside payments until they need their own service.

Two moments: before a PaymentIntent is made (velocity per account and per client address
over a window: refused) and when the charge went through (the provider's risk evaluation
and velocity per card fingerprint: held for an admin's review, no tickets until then).
Every decision is recorded with its reasons in ``fraud_decisions`` and logged.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_payments.models import FraudDecision, Payment

log = logging.getLogger("marquee.payments.fraud")

HIGH_RISK_LEVELS = frozenset({"highest"})
"""Stripe's ``outcome.risk_level`` values that always go to review."""


@dataclass(frozen=True, slots=True)
class FraudPolicy:
    window: timedelta
    max_orders_per_account: int
    max_orders_per_address: int
    max_orders_per_card: int
    review_risk_score: int


async def _count(
    session: AsyncSession, column: Any, value: str, since: datetime, exclude: uuid.UUID | None
) -> int:
    statement = (
        select(func.count())
        .select_from(Payment)
        .where(
            column == value,
            Payment.created_at >= since,
        )
    )
    if exclude is not None:
        statement = statement.where(Payment.id != exclude)
    return int((await session.execute(statement)).scalar_one())


async def record(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    payment_id: uuid.UUID | None,
    stage: str,
    decision: str,
    reasons: list[str],
    decided_by: str,
    now: datetime,
) -> None:
    session.add(
        FraudDecision(
            id=uuid.uuid4(),
            order_id=order_id,
            payment_id=payment_id,
            stage=stage,
            decision=decision,
            reasons=reasons,
            decided_by=decided_by,
            decided_at=now,
        )
    )
    log.info(
        "fraud decision %s for order %s at %s: %s",
        decision,
        order_id,
        stage,
        "; ".join(reasons) or "no concern",
    )


async def check_before_intent(
    session: AsyncSession,
    policy: FraudPolicy,
    *,
    user_id: str,
    client_address: str | None,
    now: datetime,
) -> list[str]:
    """Reasons to refuse a new payment now (empty: go ahead)."""
    since = now - policy.window
    reasons = []
    by_account = await _count(session, Payment.user_id, user_id, since, None)
    if by_account >= policy.max_orders_per_account:
        reasons.append(
            f"{by_account} payments by this account in the last "
            f"{int(policy.window.total_seconds() // 60)} minutes (limit "
            f"{policy.max_orders_per_account})"
        )
    if client_address is not None:
        by_address = await _count(session, Payment.client_address, client_address, since, None)
        if by_address >= policy.max_orders_per_address:
            reasons.append(
                f"{by_address} payments from this address in the window (limit "
                f"{policy.max_orders_per_address})"
            )
    return reasons


async def check_charge(
    session: AsyncSession, policy: FraudPolicy, payment: Payment, *, now: datetime
) -> list[str]:
    """Reasons to hold a charge that went through for an admin's review (empty: none)."""
    reasons = []
    if payment.risk_level in HIGH_RISK_LEVELS:
        reasons.append(f"the provider rates the charge's risk {payment.risk_level}")
    if payment.risk_score is not None and payment.risk_score >= policy.review_risk_score:
        reasons.append(f"risk score {payment.risk_score} is at or above {policy.review_risk_score}")
    if payment.card_fingerprint is not None:
        by_card = await _count(
            session,
            Payment.card_fingerprint,
            payment.card_fingerprint,
            now - policy.window,
            payment.id,
        )
        if by_card >= policy.max_orders_per_card:
            reasons.append(
                f"this card paid {by_card} other orders in the window (limit "
                f"{policy.max_orders_per_card})"
            )
    return reasons
