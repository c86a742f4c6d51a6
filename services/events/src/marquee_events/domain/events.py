"""What an organizer says about an event: its name, schedule, sale window and limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from marquee_events.domain.problems import Problem, check_aware, check_name, invalid


class EventCategory(StrEnum):
    CONCERT = "concert"
    FESTIVAL = "festival"
    THEATRE = "theatre"
    COMEDY = "comedy"
    DANCE = "dance"
    CLASSICAL = "classical"
    SPORTS = "sports"
    FAMILY = "family"
    CONFERENCE = "conference"
    EXHIBITION = "exhibition"
    FILM = "film"
    OTHER = "other"


CATEGORY_VALUES = frozenset(category.value for category in EventCategory)
MAX_EVENT_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_IMAGES = 10
MAX_URL_LENGTH = 2_000
MAX_EVENT_DURATION = timedelta(days=60)
MAX_SALE_LEAD = timedelta(days=2 * 366)
"""How long before the event its sale may open."""
MAX_TICKETS_PER_ORDER_LIMIT = 100


@dataclass(frozen=True, slots=True)
class EventDetails:
    """What an organizer says about an event (everything but venue, owner and status)."""

    name: str
    starts_at: datetime
    ends_at: datetime
    category: str = EventCategory.OTHER.value
    description: str = ""
    tags: tuple[str, ...] = ()
    image_urls: tuple[str, ...] = ()
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    high_demand: bool = False
    max_tickets_per_order: int = 10


def _is_http_url(url: str) -> bool:
    if len(url) > MAX_URL_LENGTH or any(character.isspace() for character in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, lower case, deduplicated, in the order given."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(" ".join(tag.split()).casefold(), None)
    return tuple(seen)


def validate_event_details(details: EventDetails) -> EventDetails:
    """Normalize an event's details (UTC times, tidy tags) or raise naming each bad field.

    Times: ``ends_at`` after ``starts_at`` and at most 60 days later; the sale window, when
    given, opens before it closes, closes no later than the event ends, and opens at most
    two years before the event starts.
    """
    problems: list[Problem] = []
    check_name(problems, "name", details.name, what="name", max_length=MAX_EVENT_NAME_LENGTH)
    if len(details.description) > MAX_DESCRIPTION_LENGTH:
        problems.append(
            Problem(
                "description",
                f"is {len(details.description)} characters; at most {MAX_DESCRIPTION_LENGTH}",
            )
        )
    if details.category not in CATEGORY_VALUES:
        problems.append(
            Problem(
                "category",
                f"'{details.category[:40]}' is not a category; use one of "
                + ", ".join(category.value for category in EventCategory),
            )
        )
    tags = normalize_tags(details.tags)
    if len(tags) > MAX_TAGS:
        problems.append(Problem("tags", f"{len(tags)} tags; at most {MAX_TAGS}"))
    for index, tag in enumerate(tags):
        if not tag or len(tag) > MAX_TAG_LENGTH:
            problems.append(Problem(f"tags[{index}]", f"a tag is 1 to {MAX_TAG_LENGTH} characters"))
    if len(details.image_urls) > MAX_IMAGES:
        problems.append(
            Problem("image_urls", f"{len(details.image_urls)} images; at most {MAX_IMAGES}")
        )
    for index, url in enumerate(details.image_urls):
        if not _is_http_url(url):
            problems.append(
                Problem(
                    f"image_urls[{index}]",
                    f"'{url[:80]}' is not an http or https URL (at most {MAX_URL_LENGTH} "
                    "characters, no spaces)",
                )
            )
    if not 1 <= details.max_tickets_per_order <= MAX_TICKETS_PER_ORDER_LIMIT:
        problems.append(
            Problem(
                "max_tickets_per_order",
                f"{details.max_tickets_per_order} must be between 1 and "
                f"{MAX_TICKETS_PER_ORDER_LIMIT}",
            )
        )

    times_aware = all(
        [
            check_aware(problems, "starts_at", details.starts_at),
            check_aware(problems, "ends_at", details.ends_at),
            check_aware(problems, "sale_starts_at", details.sale_starts_at),
            check_aware(problems, "sale_ends_at", details.sale_ends_at),
        ]
    )
    if times_aware:
        problems.extend(_schedule_problems(details))
    if problems:
        raise invalid(problems, what="event")
    return replace(
        details,
        name=details.name.strip(),
        tags=tags,
        image_urls=tuple(details.image_urls),
        starts_at=details.starts_at.astimezone(UTC),
        ends_at=details.ends_at.astimezone(UTC),
        sale_starts_at=details.sale_starts_at.astimezone(UTC) if details.sale_starts_at else None,
        sale_ends_at=details.sale_ends_at.astimezone(UTC) if details.sale_ends_at else None,
    )


def _schedule_problems(details: EventDetails) -> list[Problem]:
    problems: list[Problem] = []
    if details.ends_at <= details.starts_at:
        problems.append(
            Problem(
                "ends_at",
                f"the event ends ({details.ends_at.isoformat()}) before or when it starts "
                f"({details.starts_at.isoformat()}); it must end after it starts",
            )
        )
    elif details.ends_at - details.starts_at > MAX_EVENT_DURATION:
        problems.append(
            Problem("ends_at", f"an event lasts at most {MAX_EVENT_DURATION.days} days")
        )
    opens, closes = details.sale_starts_at, details.sale_ends_at
    if opens is not None and closes is not None and closes <= opens:
        problems.append(
            Problem(
                "sale_ends_at",
                f"the sale closes ({closes.isoformat()}) before or when it opens "
                f"({opens.isoformat()})",
            )
        )
    if closes is not None and closes > details.ends_at:
        problems.append(
            Problem(
                "sale_ends_at",
                f"the sale closes ({closes.isoformat()}) after the event ends "
                f"({details.ends_at.isoformat()})",
            )
        )
    if opens is not None and opens >= details.ends_at:
        problems.append(Problem("sale_starts_at", "the sale opens after the event has ended"))
    if opens is not None and details.starts_at - opens > MAX_SALE_LEAD:
        problems.append(
            Problem(
                "sale_starts_at",
                f"the sale opens more than {MAX_SALE_LEAD.days} days before the event starts",
            )
        )
    return problems
