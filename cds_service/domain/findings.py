"""What a rule concludes, before it becomes a card."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cds_service.domain.facts import Order

INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}
# The red-flag card's rule id: memory never holds it back (a red flag is never hidden).
RED_FLAG_RULE = "lbp-red-flag"


@dataclass(frozen=True)
class RedFlag:
    category_id: str
    category_label: str
    indicator: str
    advice: str
    signal: str
    evidence: str  # resource reference, e.g. "Condition/123"
    description: str  # what was found, for the card
    summary: str = ""  # the card summary when this is the most urgent flag
    critical: bool = False  # current and recent: an emergency today
    specific: bool = False  # enough on its own, with no back pain on the record


@dataclass(frozen=True)
class Caution:
    """Not a red flag, but a reason to be careful: named on the imaging card, and no one-click cancel."""

    label: str
    description: str
    evidence: str
    why: str


@dataclass(frozen=True)
class BackPainEpisode:
    evidence: tuple[str, ...]  # Conditions or orders that establish low back pain
    onset: datetime | None
    weeks: float | None
    phase: str = "unknown"  # acute, subacute or chronic (back_pain.phase)
    reason_condition: str | None = None  # a Condition to cite as the reason on a referral


@dataclass(frozen=True)
class Finding:
    rule: str  # stable topic code of the rule, e.g. "lbp-imaging-no-red-flag"
    indicator: str
    target: Order | None = None
    episode: BackPainEpisode | None = None
    red_flags: tuple[RedFlag, ...] = ()
    evidence: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()  # what the rule looked at, so the clinician sees it is not a blind alert
    not_checked: tuple[str, ...] = ()  # what it could not look at, and why
    facts: dict[str, str] = field(default_factory=dict)
    cautions: tuple[Caution, ...] = ()  # reasons to be careful that are not red flags
    notes: tuple[str, ...] = ()  # further context for the clinician (age, population)
    offer_cancel: bool = True  # False: no one-click cancel of the target (something could not be ruled out)
    offer_medicine: bool = True  # False: no one-click medicine order (a contraindication, or unchecked data)

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.rule, self.target.ref if self.target else "")
