"""Every query of the auth service. Repositories take the caller's session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marquee_auth.models import OneTimeToken, RefreshToken, RefreshTokenFamily, SigningKey, User
from marquee_platform.outbox import IDEMPOTENCY_KEYS, OUTBOX


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, user: User) -> None:
        self.session.add(user)

    async def flush(self) -> None:
        await self.session.flush()

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        statement = select(User).where(User.id == user_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def by_email(self, email: str, *, for_update: bool = False) -> User | None:
        statement = select(User).where(User.email == email, User.deleted_at.is_(None))
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def replace_password_hash(self, user_id: uuid.UUID, *, old: str, new: str) -> bool:
        result = await self.session.execute(
            update(User)
            .where(User.id == user_id, User.password_hash == old)
            .values(password_hash=new)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def record_login(self, user_id: uuid.UUID, *, at: datetime) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(last_login_at=at)
            .execution_options(synchronize_session=False)
        )

    async def email_taken(self, email: str, *, by_other_than: uuid.UUID | None = None) -> bool:
        statement = select(func.count()).select_from(User).where(User.email == email)
        if by_other_than is not None:
            statement = statement.where(User.id != by_other_than)
        return bool((await self.session.execute(statement)).scalar_one())

    async def lock_email(self, email: str) -> None:
        """Serialize registrations of one address, so two at once get one 409, not a 500."""
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended("auth-email:" + email, 0)))
        )

    async def forget_stored_responses_about(self, user_id: uuid.UUID) -> None:
        """Idempotency replays hold response bodies (email, name…): drop the user's."""
        await self.session.execute(
            delete(IDEMPOTENCY_KEYS).where(
                or_(
                    IDEMPOTENCY_KEYS.c.principal == str(user_id),
                    IDEMPOTENCY_KEYS.c.response_body.contains(str(user_id)),
                )
            )
        )

    async def forget_events_about(self, user_id: uuid.UUID, *, keep_topic: str) -> None:
        """Drop the outbox copies of the user's earlier events (they carry the email and
        tokens). Kafka's retention covers what was already relayed; see the docs."""
        await self.session.execute(
            delete(OUTBOX).where(OUTBOX.c.message_key == str(user_id), OUTBOX.c.topic != keep_topic)
        )


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start_family(
        self, *, user_id: uuid.UUID, now: datetime, expires_at: datetime
    ) -> RefreshTokenFamily:
        family = RefreshTokenFamily(
            id=uuid.uuid4(),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=expires_at,
        )
        self.session.add(family)
        await self.session.flush()
        return family

    async def add_token(
        self, *, family: RefreshTokenFamily, token_hash: str, now: datetime, expires_at: datetime
    ) -> RefreshToken:
        token = RefreshToken(
            id=uuid.uuid4(),
            family_id=family.id,
            token_hash=token_hash,
            issued_at=now,
            expires_at=expires_at,
        )
        family.last_used_at = now
        family.expires_at = expires_at
        self.session.add(token)
        await self.session.flush()
        return token

    async def find(self, token_hash: str) -> tuple[RefreshToken, RefreshTokenFamily] | None:
        """The token and its family, both locked: two refreshes with one token serialize."""
        row = (
            await self.session.execute(
                select(RefreshToken, RefreshTokenFamily)
                .join(RefreshTokenFamily, RefreshToken.family_id == RefreshTokenFamily.id)
                .where(RefreshToken.token_hash == token_hash)
                .with_for_update()
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def revoke_family(self, family_id: uuid.UUID, *, now: datetime, reason: str) -> None:
        await self.session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )

    async def revoke_all_families(self, user_id: uuid.UUID, *, now: datetime, reason: str) -> int:
        result = await self.session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        return _rowcount(result)

    async def families_of(self, user_id: uuid.UUID) -> Sequence[RefreshTokenFamily]:
        return (
            (
                await self.session.execute(
                    select(RefreshTokenFamily)
                    .where(RefreshTokenFamily.user_id == user_id)
                    .order_by(RefreshTokenFamily.created_at)
                )
            )
            .scalars()
            .all()
        )

    async def delete_all_of(self, user_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(RefreshTokenFamily).where(RefreshTokenFamily.user_id == user_id)
        )

    async def prune(self, *, now: datetime, keep_ended_for: timedelta) -> int:
        """Delete tokens past expiry and families that ended ``keep_ended_for`` ago."""
        tokens = await self.session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < now)
        )
        families = await self.session.execute(
            delete(RefreshTokenFamily).where(
                or_(
                    RefreshTokenFamily.expires_at < now - keep_ended_for,
                    RefreshTokenFamily.revoked_at < now - keep_ended_for,
                )
            )
        )
        return _rowcount(tokens) + _rowcount(families)


class OneTimeTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(
        self,
        *,
        user_id: uuid.UUID,
        purpose: str,
        token_hash: str,
        email: str,
        now: datetime,
        expires_at: datetime,
    ) -> OneTimeToken:
        """Issue a token, invalidating the user's earlier unused ones for the same purpose
        (only the newest link in someone's inbox works)."""
        await self.session.execute(
            delete(OneTimeToken).where(
                OneTimeToken.user_id == user_id,
                OneTimeToken.purpose == purpose,
                OneTimeToken.used_at.is_(None),
            )
        )
        token = OneTimeToken(
            id=uuid.uuid4(),
            user_id=user_id,
            purpose=purpose,
            token_hash=token_hash,
            email=email,
            created_at=now,
            expires_at=expires_at,
        )
        self.session.add(token)
        await self.session.flush()
        return token

    async def find(self, token_hash: str, *, purpose: str) -> OneTimeToken | None:
        return (
            await self.session.execute(
                select(OneTimeToken)
                .where(OneTimeToken.token_hash == token_hash, OneTimeToken.purpose == purpose)
                .with_for_update()
            )
        ).scalar_one_or_none()

    async def of_user(self, user_id: uuid.UUID) -> Sequence[OneTimeToken]:
        return (
            (
                await self.session.execute(
                    select(OneTimeToken)
                    .where(OneTimeToken.user_id == user_id)
                    .order_by(OneTimeToken.created_at)
                )
            )
            .scalars()
            .all()
        )

    async def delete_all_of(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(OneTimeToken).where(OneTimeToken.user_id == user_id))

    async def prune(self, *, now: datetime, keep_for: timedelta) -> int:
        result = await self.session.execute(
            delete(OneTimeToken).where(OneTimeToken.expires_at < now - keep_for)
        )
        return _rowcount(result)


_SIGNING_KEYS_LOCK = 0x5167_4B45
"""Advisory lock id for changes to the signing keys (several instances may start at once)."""


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self) -> None:
        """Held until the transaction ends: one instance at a time creates or rotates keys."""
        await self.session.execute(select(func.pg_advisory_xact_lock(_SIGNING_KEYS_LOCK)))

    def add(self, key: SigningKey) -> None:
        self.session.add(key)

    async def flush(self) -> None:
        await self.session.flush()

    async def all(self) -> Sequence[SigningKey]:
        return (
            (await self.session.execute(select(SigningKey).order_by(SigningKey.activates_at)))
            .scalars()
            .all()
        )

    async def get(self, kid: str) -> SigningKey | None:
        return await self.session.get(SigningKey, kid)

    async def signing_key(self, *, now: datetime) -> SigningKey | None:
        """The key that signs at ``now``: the newest active or due ``next`` one (a due
        ``next`` key signs even before the periodic task has promoted it)."""
        return (
            await self.session.execute(
                select(SigningKey)
                .where(SigningKey.state.in_(("active", "next")), SigningKey.activates_at <= now)
                .order_by(SigningKey.activates_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()

    async def published(
        self, *, now: datetime, retired_kept_for: timedelta
    ) -> Sequence[SigningKey]:
        """Keys a verifier may need: upcoming, active, and retired ones whose tokens may
        still be valid."""
        return (
            (
                await self.session.execute(
                    select(SigningKey)
                    .where(
                        or_(
                            SigningKey.state.in_(("active", "next")),
                            SigningKey.retired_at > now - retired_kept_for,
                        )
                    )
                    .order_by(SigningKey.activates_at.desc())
                )
            )
            .scalars()
            .all()
        )

    async def delete(self, kid: str) -> None:
        await self.session.execute(delete(SigningKey).where(SigningKey.kid == kid))

    async def delete_retired_before(self, moment: datetime) -> int:
        result = await self.session.execute(
            delete(SigningKey).where(SigningKey.state == "retired", SigningKey.retired_at < moment)
        )
        return _rowcount(result)
