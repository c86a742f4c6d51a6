"""Cursor (keyset) pagination for list endpoints.

Offsets skip or repeat rows when rows are inserted while someone pages, and get slower the
deeper one goes. A keyset cursor instead remembers the sort values of the last row seen and
asks for rows strictly after them with one row-value comparison, ``(created_at, id) >
(:a, :b)``, which an index on the same columns answers directly, at any depth, and which
is stable while rows are added at the front.

Usage in an endpoint::

    @events.get("/api/v1/events", response_model=Page[EventRead])
    async def list_events(session: ReadSessionDep, params: CursorParamsDep) -> Page[EventRead]:
        page = await paginate(session, select(Event), order_by=(Event.starts_at, Event.id),
                              params=params)
        return page.map(EventRead.model_validate)

The cursor is opaque to clients (url-safe base64 of the last row's sort values); it is not
signed, because it only says where to resume: what a caller may see is decided by the
statement's WHERE clause, never by the cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Row, Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from marquee_platform.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 2048
"""Far longer than any cursor we produce; bounds the work a hostile cursor can cause."""

T = TypeVar("T")
U = TypeVar("U")

SortColumn = ColumnElement[Any] | QueryableAttribute[Any]


class Page(BaseModel, Generic[T]):
    """One page of a listing and where to continue."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with each item converted (ORM row → response schema)."""
        return Page(items=[convert(item) for item in self.items], next_cursor=self.next_cursor)


def _invalid_cursor(reason: str) -> InvalidInput:
    return InvalidInput(
        "The cursor parameter is not one this listing handed out; drop it to start again "
        "from the first page.",
        code="invalid-cursor",
        errors=[
            {"location": "query cursor", "field": "cursor", "message": reason, "kind": "cursor"}
        ],
    )


# Tagged so values come back as the Python types the database driver needs for its
# parameters (asyncpg will not compare a timestamptz with a string).
def _tag(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, Decimal):
        return ["n", str(value)]
    if value is None:
        raise ValueError("keyset pagination needs NOT NULL sort columns; a row has a NULL")
    raise TypeError(f"cannot put a {type(value).__name__} in a pagination cursor")


_UNTAG: dict[str, Callable[[Any], Any]] = {
    "b": lambda raw: raw if isinstance(raw, bool) else _wrong_type(),
    "i": lambda raw: raw if isinstance(raw, int) and not isinstance(raw, bool) else _wrong_type(),
    "f": lambda raw: float(raw) if isinstance(raw, int | float) else _wrong_type(),
    "s": lambda raw: raw if isinstance(raw, str) else _wrong_type(),
    "dt": lambda raw: datetime.fromisoformat(raw),
    "d": lambda raw: date.fromisoformat(raw),
    "u": lambda raw: uuid.UUID(raw),
    "n": lambda raw: Decimal(raw),
}


def _wrong_type() -> Any:
    raise ValueError("value does not match its tag")


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque, url-safe cursor for a row's sort values."""
    text = json.dumps([_tag(value) for value in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    """The sort values in ``cursor``; :class:`InvalidInput` naming ``cursor`` if it is bad."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _invalid_cursor("too long")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        tagged = json.loads(raw.decode("utf-8"))
        if not isinstance(tagged, list) or not tagged:
            raise ValueError("not a list of values")
        values = []
        for item in tagged:
            if not (isinstance(item, list) and len(item) == 2 and item[0] in _UNTAG):
                raise ValueError("not a tagged value")
            values.append(_UNTAG[item[0]](item[1]))
    except (binascii.Error, UnicodeError, ValueError, TypeError, InvalidOperation):
        raise _invalid_cursor("not a valid cursor") from None
    return tuple(values)


@dataclass(frozen=True, slots=True)
class CursorParams:
    """How many items to return and where to resume (None: from the start)."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    after: tuple[Any, ...] | None = field(init=False, default=None)
    """The decoded sort values of the last row of the previous page."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(
                f"limit must be between 1 and {MAX_LIMIT}.",
                errors=[
                    {
                        "location": "query limit",
                        "field": "limit",
                        "message": f"must be between 1 and {MAX_LIMIT}",
                        "kind": "limit",
                    }
                ],
            )
        # An empty ``?cursor=`` is what naive URL builders send for "no cursor".
        object.__setattr__(self, "after", decode_cursor(self.cursor) if self.cursor else None)


def cursor_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(description="The `next_cursor` of the previous page; omit for the first page."),
    ] = None,
) -> CursorParams:
    return CursorParams(limit=limit, cursor=cursor)


CursorParamsDep = Annotated[CursorParams, Depends(cursor_params)]


def _fits_column(value: Any, column: ColumnElement[Any]) -> bool:
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return True  # a type we can't check: the database will
    if expected is datetime:
        return isinstance(value, datetime)
    if expected is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _selects_one_entity(statement: Select[Any]) -> bool:
    descriptions = statement.column_descriptions
    if len(descriptions) != 1:
        return False
    entity = descriptions[0].get("entity")
    return entity is not None and descriptions[0]["expr"] is entity


def _sort_value(item: Any, column: SortColumn) -> Any:
    if isinstance(item, Row):
        mapping = item._mapping
        candidates: tuple[Any, ...] = (column, column.expression, column.key)
        for candidate in candidates:
            try:
                return mapping[candidate]
            except KeyError:
                continue
        raise TypeError(f"paginate needs the sort column {column.key!r} among the selected ones")
    return getattr(item, str(column.key))


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    order_by: Sequence[SortColumn],
    params: CursorParams,
    descending: bool = False,
) -> Page[Any]:
    """One page of ``statement``'s rows ordered by ``order_by``, resuming after the cursor.

    ``order_by`` are NOT NULL columns the statement selects, the last one unique (e.g.
    ``(Event.created_at, Event.id)``) so the order is total and no row is skipped or
    repeated at a page boundary; an index on them makes any page cheap. Any ORDER BY or
    LIMIT already on ``statement`` is replaced. A statement selecting one ORM entity gives
    entities, anything else gives rows. Don't joined-eager-load collections here (the
    duplicated rows would break the limit); use ``selectinload``.
    """
    if not order_by:
        raise ValueError("paginate needs at least one column to order by")
    columns = [column.expression for column in order_by]
    ordered = statement.order_by(None).order_by(
        *(column.desc() if descending else column.asc() for column in columns)
    )
    if params.after is not None:
        if len(params.after) != len(columns) or not all(
            _fits_column(value, column)
            for value, column in zip(params.after, columns, strict=False)
        ):
            raise _invalid_cursor("made for a different listing")
        position = tuple_(*columns)
        resume_after = tuple_(
            *(
                literal(value, column.type)
                for value, column in zip(params.after, columns, strict=True)
            )
        )
        ordered = ordered.where(position < resume_after if descending else position > resume_after)
    result = await session.execute(ordered.limit(params.limit + 1))
    found: list[Any] = list(
        result.scalars().all() if _selects_one_entity(statement) else result.all()
    )
    items = found[: params.limit]
    next_cursor = None
    if len(found) > params.limit:
        next_cursor = encode_cursor([_sort_value(items[-1], column) for column in order_by])
    return Page(items=items, next_cursor=next_cursor)
