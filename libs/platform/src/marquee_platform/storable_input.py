"""Input PostgreSQL cannot store is refused with a 422 naming the field, on every route.

PostgreSQL's ``text`` and ``jsonb`` cannot hold the NUL character, and asyncpg refuses an
integer outside ``bigint`` before the query runs: either used to end as a 500 from
whichever query met the value first. :func:`refuse_unstorable_input` runs before every
endpoint of an app made by :func:`marquee_platform.app.create_service_app` and refuses

- a NUL in a path parameter, a query parameter, or any string or key of a JSON body;
- a whole number outside ``-2**63 … 2**63 - 1`` in a JSON body, or in a path or query
  parameter that the endpoint takes as an integer (a text parameter may hold any digits).

It reads only what FastAPI has already read: a JSON body is inspected when the endpoint
takes one (FastAPI parsed it before any dependency runs), so a streamed body, like the
gateway's, is never buffered here.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.requests import HTTPConnection

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_REPORTED = 20
"""Errors listed at most (a body of a million NULs gets a short answer)."""

NUL_MESSAGE = "must not contain the NUL character (\\u0000)"
RANGE_MESSAGE = f"must be a whole number from {INT64_MIN} to {INT64_MAX}"

Location = tuple[str | int, ...]

_AS_INTEGER: TypeAdapter[int] = TypeAdapter(int)
"""Parses a parameter's text as FastAPI would for an ``int`` parameter."""


async def refuse_unstorable_input(connection: HTTPConnection) -> None:
    """Raise a :class:`RequestValidationError` (422) naming each value PostgreSQL cannot
    store; ``create_service_app`` makes this a dependency of every route."""
    errors: list[dict[str, Any]] = []
    parameters: list[tuple[str, str, str]] = [
        *(("path", name, value) for name, value in connection.path_params.items()),
        *(("query", name, value) for name, value in connection.query_params.multi_items()),
    ]
    too_big: list[tuple[str, str]] = []
    for where, name, value in parameters:
        if not isinstance(value, str):
            continue  # a path converter (``{n:int}``) already made it something else
        if "\x00" in value or "\x00" in name:
            errors.append(_error((where, name), NUL_MESSAGE, "nul_character"))
        elif _outside_int64(value):
            too_big.append((where, name))
    if too_big:
        integers = _integer_parameters(connection.scope.get("route"))
        errors += [
            _error(location, RANGE_MESSAGE, "int64_range")
            for location in too_big
            if location in integers
        ]
    if isinstance(connection, Request) and await _has_json_body(connection):
        errors += _json_errors(await connection.json())
    if errors:
        raise RequestValidationError(errors[:MAX_REPORTED])


def _error(location: Location, message: str, kind: str) -> dict[str, Any]:
    return {"loc": location, "msg": message, "type": kind}


def _outside_int64(text: str) -> bool:
    try:
        number = _AS_INTEGER.validate_python(text)
    except ValidationError:
        return False
    return not INT64_MIN <= number <= INT64_MAX


def _json_errors(body: Any) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for location, value in _json_values(body):
        if isinstance(value, str) and "\x00" in value:
            errors.append(_error(location, NUL_MESSAGE, "nul_character"))
        elif _is_int(value) and not INT64_MIN <= value <= INT64_MAX:
            errors.append(_error(location, RANGE_MESSAGE, "int64_range"))
        if len(errors) >= MAX_REPORTED:
            break
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_values(body: Any) -> Iterator[tuple[Location, Any]]:
    """Every string, number and key in a decoded JSON document, with its location (a key
    is reported as its own text). Iterative: as deep as the JSON parser allowed."""
    pending: list[tuple[Location, Any]] = [(("body",), body)]
    while pending:
        location, value = pending.pop()
        if isinstance(value, dict):
            for key in value:
                yield (*location, key), key
            pending.extend(((*location, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend(
                ((*location, index), item) for index, item in reversed(list(enumerate(value)))
            )
        else:
            yield location, value


async def _has_json_body(request: Request) -> bool:
    """Whether FastAPI decoded this request's body as JSON (so ``request.json()`` is its
    cached result): the endpoint takes a body and it came as JSON, as FastAPI decides."""
    if not _takes_body(request.scope.get("route")):
        return False
    content_type = request.headers.get("content-type")
    if not content_type:
        return bool(await request.body())
    media_type = content_type.partition(";")[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _dependants(route: Any) -> Iterator[Any]:
    """The route's FastAPI dependant and all its sub-dependencies."""
    root = getattr(route, "dependant", None)
    pending = [root] if root is not None else []
    while pending:
        dependant = pending.pop()
        yield dependant
        pending.extend(dependant.dependencies)


def _takes_body(route: Any) -> bool:
    return any(dependant.body_params for dependant in _dependants(route))


def _integer_parameters(route: Any) -> set[tuple[str, str]]:
    """(``"path"``/``"query"``, name) of every parameter the route takes as an integer."""
    found: set[tuple[str, str]] = set()
    for dependant in _dependants(route):
        for where, fields in (("path", dependant.path_params), ("query", dependant.query_params)):
            found.update(
                (where, field.alias) for field in fields if _is_integer(field.field_info.annotation)
            )
    return found


def _is_integer(annotation: Any) -> bool:
    """``int``, ``int | None``, ``list[int]``, ``Annotated[int, …]`` (not ``bool``)."""
    if isinstance(annotation, type) and get_origin(annotation) is None:
        return issubclass(annotation, int) and not issubclass(annotation, bool)
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_integer(get_args(annotation)[0])
    if origin in (Union, UnionType, list, tuple, set, frozenset):
        return any(_is_integer(argument) for argument in get_args(annotation))
    return False
