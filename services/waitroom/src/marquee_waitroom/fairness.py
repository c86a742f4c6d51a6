"""The pre-queue's fair order, and how anyone checks it.

Before the pre-queue opens the waitroom draws a 32-byte random **seed** and publishes its
**commitment**, ``SHA-256(seed)`` in hex. Fans join; each gets a random queue ticket. At
the sale start the pre-queue closes, the seed is revealed with the list of every
pre-queue ticket, and the order is::

    order = sorted(tickets, key=lambda ticket: SHA-256(seed ‖ ":" ‖ ticket))

Ticket number 1 is the first of ``order``. A fan checks three things, with nothing but
this page and ``sha256sum``: the revealed seed hashes to the commitment published before
the queue opened (so the seed was not picked after seeing who joined), their ticket is in
the list, and the list sorted by that key puts them where they were told.
``marquee waitroom verify`` does all of it. Sorting by a keyed hash is a uniformly
random permutation for a seed nobody could predict, and costs O(n log n) for any n.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable


def new_seed() -> bytes:
    return secrets.token_bytes(32)


def commitment(seed: bytes) -> str:
    """What is published before the pre-queue opens: ``SHA-256(seed)`` in hex."""
    return hashlib.sha256(seed).hexdigest()


def order_key(seed: bytes, ticket: str) -> bytes:
    return hashlib.sha256(seed + b":" + ticket.encode("ascii")).digest()


def shuffled(seed: bytes, tickets: Iterable[str]) -> list[str]:
    """The pre-queue in its fair order (first admitted first). Ties cannot happen between
    distinct tickets short of a SHA-256 collision; the ticket breaks them anyway."""
    return sorted(tickets, key=lambda ticket: (order_key(seed, ticket), ticket))


def seed_matches(seed_hex: str, commitment_hex: str) -> bool:
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        return False
    return hmac.compare_digest(commitment(seed), commitment_hex.lower())
