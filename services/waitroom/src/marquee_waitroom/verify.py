"""Checking a pre-queue's order from what ``GET …/queue/fairness`` publishes.

This is the whole check, so anyone can read it (or redo it with ``sha256sum``)::

    commitment == sha256(seed)                                       # 1. the seed
    order == sorted(pre_queue, key=lambda t: sha256(seed + b":" + t))  # 2. the order
    ticket in pre_queue and order.index(ticket) + 1 == number          # 3. your place
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from marquee_waitroom import fairness


@dataclass(frozen=True)
class Verdict:
    seed_matches: bool
    order_matches: bool
    recomputed: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def fair(self) -> bool:
        return self.seed_matches and self.order_matches and not self.problems


def verify(
    *,
    seed_hex: str,
    commitment: str,
    pre_queue: Sequence[str],
    order: Sequence[str] | None = None,
    ticket: str | None = None,
    number: int | None = None,
) -> Verdict:
    """Recompute the order from the revealed seed and the pre-queue's tickets, and check it
    against the commitment, the published order and (optionally) one fan's number."""
    problems: list[str] = []
    seed_ok = fairness.seed_matches(seed_hex, commitment)
    if not seed_ok:
        problems.append(
            "the seed does not hash to the commitment published before the queue opened"
        )
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        return Verdict(False, False, [], [*problems, "the seed is not hex"])
    recomputed = fairness.shuffled(seed, pre_queue)
    order_ok = order is None or list(order) == recomputed
    if not order_ok:
        problems.append("the published order is not the one the seed gives")
    if ticket is not None:
        if ticket not in pre_queue:
            problems.append(f"ticket {ticket} is not in the pre-queue list")
        elif number is not None and recomputed.index(ticket) + 1 != number:
            problems.append(
                f"ticket {ticket} should be number {recomputed.index(ticket) + 1}, not {number}"
            )
    return Verdict(seed_ok, order_ok, recomputed, problems)
