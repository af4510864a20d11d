"""The appropriateness rating of each lumbar imaging order (issue 31, item 3), as the reference PAMA imaging
service of the CDS Hooks sandbox gives it, from the same findings the cards show, so the rating on the order
and the card beside it always agree:

- a red flag on the record: **appropriate** (guideline: "Do not obtain routine imaging unless red flags are
  present"; NICE NG59 and ACP 2017, knowledge/citations.json);
- the imaging card's late variant (pain beyond `imaging_early_weeks`): **appropriate**, as the guideline
  allows imaging for persistent symptoms (the card asks whether the result would change management);
- the imaging card's early variant, every red-flag source read and no caution: **not-appropriate**;
- no guideline statement applies (no low back pain on the record, a child): **no-guidelines-apply**.

When the card withholds its cancel (a red-flag source could not be read, a caution) or the onset is not
recorded, no rating is given: "not appropriate" is never claimed on a record the service could not read whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cds_service.domain.facts import Order
from cds_service.domain.findings import RED_FLAG_RULE, Finding
from cds_service.knowledge.model import Knowledge
from cds_service.rules.catalog import ORDER_HOOKS
from cds_service.rules.recommendations.imaging import RULE as IMAGING_RULE
from cds_service.rules.recommendations.orders import is_lumbar_imaging

APPROPRIATE, NOT_APPROPRIATE, NO_GUIDELINES_APPLY = "appropriate", "not-appropriate", "no-guidelines-apply"


@dataclass(frozen=True)
class Rating:
    order: Order
    code: str  # appropriate | not-appropriate | no-guidelines-apply (the PAMA rating code system's codes)


def rate_imaging(hook: str, orders: Iterable[Order], findings: list[Finding], kb: Knowledge) -> tuple[Rating, ...]:
    """A rating for each lumbar imaging order drafted in this ordering session (order hooks only)."""
    if hook not in ORDER_HOOKS:
        return ()
    red_flag = any(f.rule == RED_FLAG_RULE for f in findings)
    cards = {f.target.ref: f for f in findings if f.rule == IMAGING_RULE and f.target is not None}
    ratings = []
    for order in orders:
        if not order.is_draft or not is_lumbar_imaging(order, kb):
            continue
        code = _code(red_flag, cards.get(order.ref))
        if code is not None:
            ratings.append(Rating(order, code))
    return tuple(ratings)


def _code(red_flag: bool, card: Finding | None) -> str | None:
    if red_flag:
        return APPROPRIATE
    if card is None:
        return NO_GUIDELINES_APPLY
    if card.facts.get("variant") == "late":
        return APPROPRIATE
    if not card.offer_cancel or card.episode is None or card.episode.weeks is None:
        return None  # the card says what could not be checked; the order gets no verdict
    return NOT_APPROPRIATE
