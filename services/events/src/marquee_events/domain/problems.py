"""Problems with the input, each named by its path, and the checks several rules share.

A domain function collects every :class:`Problem` it finds and raises them together
(:func:`invalid`), so a person fixes a request in one go rather than one error at a time.
The helpers below the problems (names, time zones of given moments) are used by the other
modules of this package; ``marquee_events.domain`` does not re-export them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from marquee_platform.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: where (a dotted path into the request body) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


MAX_PROBLEMS_REPORTED = 100


def problem_list(problems: Sequence[Problem], *, prefix: str = "") -> list[dict[str, str]]:
    def field_of(path: str) -> str:
        return path if not prefix or path in ("capacity", prefix.rstrip(".")) else prefix + path

    return [
        {
            "location": f"body {field_of(problem.path)}",
            "field": field_of(problem.path),
            "message": problem.message,
            "kind": "invalid",
        }
        for problem in problems[:MAX_PROBLEMS_REPORTED]
    ]


def summarize(problems: Sequence[Problem], *, shown: int = 3) -> str:
    text = "; ".join(str(problem) for problem in problems[:shown])
    if len(problems) > shown:
        text += f" (and {len(problems) - shown} more, listed in 'errors')"
    return text


def invalid(problems: Sequence[Problem], *, what: str, code: str = "invalid-input") -> InvalidInput:
    """An :class:`InvalidInput` listing ``problems`` (each names its part of the body)."""
    return InvalidInput(
        f"The {what} is not valid: {summarize(problems)}.",
        code=code,
        errors=problem_list(problems),
    )


def is_blank(text: str) -> bool:
    return not text.strip()


def check_name(
    problems: list[Problem], path: str, name: str, *, what: str, max_length: int
) -> None:
    if is_blank(name):
        problems.append(Problem(path, f"{what} is empty; give it a name"))
    elif len(name) > max_length:
        problems.append(
            Problem(path, f"{what} '{name[:20]}…' is {len(name)} characters; at most {max_length}")
        )


def check_aware(problems: list[Problem], path: str, moment: datetime | None) -> bool:
    if moment is not None and moment.utcoffset() is None:
        problems.append(Problem(path, "must include a time zone offset (e.g. Z or +02:00)"))
        return False
    return True
