"""The ReadSession flush guard must not leak onto write sessions.

It once did: the guard was registered on SQLAlchemy's ``Session`` class, which every
``AsyncSession`` subclass shares, so adding an ORM object in a WriteSession raised.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, Table, Text, text
from sqlalchemy.orm import registry

from marquee_platform.db import Database
from marquee_testing.fixtures import DatabaseFactory


async def test_a_write_session_flushes_orm_objects_while_reads_stay_guarded(
    make_database: DatabaseFactory,
) -> None:
    url = await make_database()
    metadata = MetaData()
    memos = Table("memos", metadata, Column("body", Text, primary_key=True))

    class Memo:
        def __init__(self, body: str) -> None:
            self.body = body

    registry().map_imperatively(Memo, memos)
    database = Database(url)
    try:
        async with database.write_engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        async with database.transaction() as session:
            session.add(Memo("kept"))
            await session.flush()
        async with database.reading() as session:
            session.add(Memo("refused"))
            with pytest.raises(RuntimeError, match="ReadSession cannot write"):
                await session.flush()
        async with database.reading() as session:
            bodies = (await session.execute(text("SELECT body FROM memos"))).scalars().all()
        assert bodies == ["kept"]
    finally:
        await database.dispose()
