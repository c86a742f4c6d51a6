"""The waitroom's admission signing keys, kept in PostgreSQL (one is made on first use)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from marquee_platform.clock import utc_now
from marquee_platform.db import Database
from marquee_waitroom.models import AdmissionSigningKey
from marquee_waitroom.tokens import AdmissionKey, generate_admission_key


class AdmissionKeys:
    """The signing key (newest) and every published key, cached in the process.

    Two replicas starting together may each make a key; both are published and the newest
    signs, so tokens of either verify."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._keys: list[AdmissionKey] | None = None
        self._lock = asyncio.Lock()

    async def published(self) -> list[AdmissionKey]:
        if self._keys is None:
            async with self._lock:
                if self._keys is None:
                    self._keys = await self._load_or_create()
        return self._keys

    async def current(self) -> AdmissionKey:
        return (await self.published())[0]

    async def _load_or_create(self) -> list[AdmissionKey]:
        keys = await self._load()
        if keys:
            return keys
        key = generate_admission_key(utc_now())
        async with self.database.transaction() as session:
            await session.execute(
                insert(AdmissionSigningKey)
                .values(
                    kid=key.kid,
                    private_key_pem=key.private_key_pem,
                    public_jwk=key.public_jwk,
                    created_at=utc_now(),
                )
                .on_conflict_do_nothing()
            )
        return await self._load()

    async def _load(self) -> list[AdmissionKey]:
        async with self.database.reading() as session:
            rows = (
                await session.execute(
                    select(AdmissionSigningKey).order_by(AdmissionSigningKey.created_at.desc())
                )
            ).scalars()
            return [
                AdmissionKey(
                    kid=row.kid, private_key_pem=row.private_key_pem, public_jwk=row.public_jwk
                )
                for row in rows
            ]
