"""The catalog's rules as pure functions: seating maps, event details, the status lifecycle,
ticket types and their prices, reviews, and who may manage what.

Nothing here knows about HTTP or the database. Functions either return normalized values
or raise a domain error (:mod:`marquee_platform.errors`) whose message names the part of
the input that is wrong and says what would be right.

One module per part of the rules; this package offers every public name of them, so
callers write ``from marquee_events.domain import EventStatus``:

- :mod:`~marquee_events.domain.problems` — problems named by their path in the request;
- :mod:`~marquee_events.domain.authorization` — who may manage what (:class:`Actor`);
- :mod:`~marquee_events.domain.versions` — optimistic concurrency (``If-Match``);
- :mod:`~marquee_events.domain.seating` — seating maps and their checks;
- :mod:`~marquee_events.domain.venues` — venue details, and when a map is frozen;
- :mod:`~marquee_events.domain.lifecycle` — an event's status and its transitions;
- :mod:`~marquee_events.domain.events` — an event's details and schedule;
- :mod:`~marquee_events.domain.ticket_types` — ticket types and their prices;
- :mod:`~marquee_events.domain.publishing` — what an event needs to be public;
- :mod:`~marquee_events.domain.reviews` — reviews and replies;
- :mod:`~marquee_events.domain.commands` — what callers ask for.

It also offers the platform errors the rules raise (``Conflict``, ``InvalidInput``,
``PermissionDenied``, ``PreconditionFailed``), so a caller catches them with one import.
"""

from __future__ import annotations

from marquee_events.domain.authorization import (
    Actor,
    authorize_management,
    can_manage,
)
from marquee_events.domain.commands import (
    ChangeStatus,
    CreateEvent,
    CreateVenue,
    PostReview,
)
from marquee_events.domain.events import (
    CATEGORY_VALUES,
    MAX_DESCRIPTION_LENGTH,
    MAX_EVENT_DURATION,
    MAX_EVENT_NAME_LENGTH,
    MAX_IMAGES,
    MAX_SALE_LEAD,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TICKETS_PER_ORDER_LIMIT,
    MAX_URL_LENGTH,
    EventCategory,
    EventDetails,
    normalize_tags,
    validate_event_details,
)
from marquee_events.domain.lifecycle import (
    FINAL_STATUSES,
    LIFECYCLE_ORDER,
    LIVE_STATUSES,
    MAX_CANCELLATION_REASON_LENGTH,
    PUBLIC_STATUSES,
    SELLING_STATUSES,
    EventNotEditable,
    EventStatus,
    IllegalTransition,
    allowed_transitions,
    check_event_editable,
    check_transition,
    validate_cancellation_reason,
)
from marquee_events.domain.problems import (
    MAX_PROBLEMS_REPORTED,
    Problem,
    invalid,
)
from marquee_events.domain.publishing import (
    NotReadyToPublish,
    check_ready_to_publish,
    check_still_ready,
    readiness_problems,
)
from marquee_events.domain.reviews import (
    MAX_REVIEW_LENGTH,
    check_review_allowed,
    validate_reply,
    validate_review,
)
from marquee_events.domain.seating import (
    MAX_CAPACITY,
    MAX_NAME_LENGTH,
    MAX_PRICE_CATEGORY_LENGTH,
    MAX_ROW_LABEL_LENGTH,
    MAX_SEATED_SEATS,
    SEAT_ID_PATTERN,
    SEAT_ID_RULE,
    GeneralAdmissionArea,
    InvalidSeatingMap,
    Row,
    Seat,
    SeatingMap,
    SeatingSummary,
    Section,
    seat_ids_by_price_category,
    seat_layout,
    seating_map_from_document,
    seating_map_to_document,
    validate_seating_map,
)
from marquee_events.domain.ticket_types import (
    MAX_PRICE_MINOR,
    MAX_TICKET_TYPE_NAME_LENGTH,
    MAX_TICKET_TYPES_PER_EVENT,
    PRICING_FIELDS,
    DuplicateTicketType,
    SaleContext,
    TicketKind,
    TicketTypeSpec,
    check_ticket_type,
    check_ticket_type_change,
    price_range,
    ticket_type_problems,
)
from marquee_events.domain.venues import (
    MAX_ADDRESS_LENGTH,
    SeatingMapInUse,
    VenueDetails,
    check_seating_replaceable,
    is_time_zone,
    validate_venue_details,
)
from marquee_events.domain.versions import (
    ExpectedVersion,
    StaleIfMatch,
    VersionConflict,
    check_version,
)
from marquee_platform.errors import (
    Conflict,
    InvalidInput,
    PermissionDenied,
    PreconditionFailed,
)

__all__ = [
    "CATEGORY_VALUES",
    "FINAL_STATUSES",
    "LIFECYCLE_ORDER",
    "LIVE_STATUSES",
    "MAX_ADDRESS_LENGTH",
    "MAX_CANCELLATION_REASON_LENGTH",
    "MAX_CAPACITY",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_EVENT_DURATION",
    "MAX_EVENT_NAME_LENGTH",
    "MAX_IMAGES",
    "MAX_NAME_LENGTH",
    "MAX_PRICE_CATEGORY_LENGTH",
    "MAX_PRICE_MINOR",
    "MAX_PROBLEMS_REPORTED",
    "MAX_REVIEW_LENGTH",
    "MAX_ROW_LABEL_LENGTH",
    "MAX_SALE_LEAD",
    "MAX_SEATED_SEATS",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "MAX_TICKETS_PER_ORDER_LIMIT",
    "MAX_TICKET_TYPES_PER_EVENT",
    "MAX_TICKET_TYPE_NAME_LENGTH",
    "MAX_URL_LENGTH",
    "PRICING_FIELDS",
    "PUBLIC_STATUSES",
    "SEAT_ID_PATTERN",
    "SEAT_ID_RULE",
    "SELLING_STATUSES",
    "Actor",
    "ChangeStatus",
    "Conflict",
    "CreateEvent",
    "CreateVenue",
    "DuplicateTicketType",
    "EventCategory",
    "EventDetails",
    "EventNotEditable",
    "EventStatus",
    "ExpectedVersion",
    "GeneralAdmissionArea",
    "IllegalTransition",
    "InvalidInput",
    "InvalidSeatingMap",
    "NotReadyToPublish",
    "PermissionDenied",
    "PostReview",
    "PreconditionFailed",
    "Problem",
    "Row",
    "SaleContext",
    "Seat",
    "SeatingMap",
    "SeatingMapInUse",
    "SeatingSummary",
    "Section",
    "StaleIfMatch",
    "TicketKind",
    "TicketTypeSpec",
    "VenueDetails",
    "VersionConflict",
    "allowed_transitions",
    "authorize_management",
    "can_manage",
    "check_event_editable",
    "check_ready_to_publish",
    "check_review_allowed",
    "check_seating_replaceable",
    "check_still_ready",
    "check_ticket_type",
    "check_ticket_type_change",
    "check_transition",
    "check_version",
    "invalid",
    "is_time_zone",
    "normalize_tags",
    "price_range",
    "readiness_problems",
    "seat_ids_by_price_category",
    "seat_layout",
    "seating_map_from_document",
    "seating_map_to_document",
    "ticket_type_problems",
    "validate_cancellation_reason",
    "validate_event_details",
    "validate_reply",
    "validate_review",
    "validate_seating_map",
    "validate_venue_details",
]
