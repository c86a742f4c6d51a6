"""Tables of the inventory service."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from marquee_platform.outbox import define_platform_tables


class Base(DeclarativeBase):
    pass


PLATFORM_TABLES = define_platform_tables(Base.metadata)
