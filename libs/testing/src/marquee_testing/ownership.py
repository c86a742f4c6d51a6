"""Ownership matrices: who may call what, as a table, checked in one go.

A service's matrix is a list of rows (:class:`Row`: one request each, its method, path
template and body) with the status each caller must get, in the order of the callers
given to :func:`check_ownership`. The runner sends every row as every caller, each time on things
made afresh by the row's ``given`` (so a caller that deletes or cancels changes nothing
the next caller sees), and fails once, with one table of every answer that differs from
the table, rather than at the first::

    CALLERS = {"owner": owner, "other organizer": other, "anonymous": {}}
    ROWS = [
        Row("edit a draft", "PATCH", "/api/v1/events/{event_id}", (200, 403, 401),
            given=draft, body=lambda given: {"name": "Renamed"}),
    ]
    await check_ownership(client, ROWS, CALLERS)

Copy a service's matrix (``services/*/tests/integration/test_*_ownership_matrix.py``) to
start another one.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

Given = Mapping[str, Any]
"""What a row's ``given`` made: the path's placeholders and whatever its body needs."""
Headers = Mapping[str, str]
Caller = Headers | Callable[[Given], Headers]
"""A caller's headers, or a function of the row's ``given`` (a caller who *is* the owner
of what was just made, such as a user registered for the row)."""
Check = Callable[[httpx.Response, Given, str], str | Awaitable[str | None] | None]
"""Looks at an answer whose status was the expected one, given what the row made and the
caller's name (sync or async); returns what is wrong, or None."""


async def _nothing() -> Given:
    return {}


@dataclass(frozen=True)
class Row:
    """One request and the status each caller gets.

    ``expect`` is one status per caller, in the order the callers are given to
    :func:`check_ownership`. ``given`` makes what the request acts on; it runs before
    each caller's request unless ``changes_nothing`` says the request is a pure read, in
    which case one ``given`` serves every caller of the row. ``check`` looks further at
    every answer whose status matched: what a listing shows, that a profile is the
    caller's own, that a refused change left the thing as it was (it gets the response,
    so it can tell a success from a refusal).
    """

    name: str
    method: str
    path: str
    expect: tuple[int, ...]
    given: Callable[[], Awaitable[Given]] = _nothing
    body: Callable[[Given], Any] | None = None
    headers: Callable[[Given], Headers] | None = None
    """Extra headers, made afresh for each request (an ``Idempotency-Key``, ``If-Match``)."""
    check: Check | None = None
    changes_nothing: bool = False


@dataclass(frozen=True)
class Mismatch:
    row: Row
    caller: str
    path: str
    expected: int
    got: int
    detail: str


@dataclass
class MatrixReport:
    """What :func:`run_ownership` found: every request sent and every mismatch."""

    requests: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def table(self) -> str:
        header = ("row", "caller", "request", "expected", "got", "detail")
        lines = [
            (
                mismatch.row.name,
                mismatch.caller,
                f"{mismatch.row.method} {mismatch.path}",
                str(mismatch.expected),
                str(mismatch.got),
                mismatch.detail,
            )
            for mismatch in self.mismatches
        ]
        widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header) - 1)]

        def render(line: tuple[str, ...]) -> str:
            cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
            return "  ".join([*cells, line[-1]]).rstrip()

        return "\n".join(
            [
                f"{len(self.mismatches)} of {self.requests} requests answered otherwise "
                "than the ownership matrix says:",
                render(header),
                *(render(line) for line in lines),
            ]
        )


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:120]
    if isinstance(body, dict):
        code = str(body.get("type", "")).rsplit("/", 1)[-1]
        detail = str(body.get("detail", ""))[:120]
        return f"{code}: {detail}" if code else detail
    return ""


def _headers_of(caller: Caller, given: Given) -> Headers:
    return caller(given) if callable(caller) else caller


async def run_ownership(
    client: httpx.AsyncClient, rows: Sequence[Row], callers: Mapping[str, Caller]
) -> MatrixReport:
    """Send every row as every caller; the report lists each answer the table did not say."""
    report = MatrixReport()
    for row in rows:
        if len(row.expect) != len(callers):
            raise ValueError(
                f"Row {row.name!r} expects {len(row.expect)} statuses for {len(callers)} "
                f"callers ({', '.join(callers)})."
            )
        shared: Given | None = await row.given() if row.changes_nothing else None
        for (caller_name, caller), expected in zip(callers.items(), row.expect, strict=True):
            given = shared if shared is not None else await row.given()
            path = row.path.format(**given)
            headers = {**_headers_of(caller, given), **(row.headers(given) if row.headers else {})}
            request: dict[str, Any] = {"headers": headers}
            if row.body is not None:
                request["json"] = row.body(given)
            response = await client.request(row.method, path, **request)
            report.requests += 1
            if response.status_code != expected:
                report.mismatches.append(
                    Mismatch(
                        row, caller_name, path, expected, response.status_code, _detail(response)
                    )
                )
            elif row.check is not None:
                problem = row.check(response, given, caller_name)
                if inspect.isawaitable(problem):
                    problem = await problem
                if problem is not None:
                    report.mismatches.append(
                        Mismatch(row, caller_name, path, expected, expected, f"but {problem}")
                    )
    return report


async def check_ownership(
    client: httpx.AsyncClient, rows: Sequence[Row], callers: Mapping[str, Caller]
) -> MatrixReport:
    """:func:`run_ownership`, failing with the table of every mismatch if there is one."""
    report = await run_ownership(client, rows, callers)
    assert not report.mismatches, report.table()
    return report
