"""What a rule concludes, before it becomes a card."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..record import Order

INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class RedFlag:
    category_id: str
    category_label: str
    indicator: str
    advice: str
    signal: str
    evidence: str  # resource reference, e.g. "Condition/123"
    description: str  # what was found, for the card


@dataclass(frozen=True)
class BackPainEpisode:
    evidence: tuple[str, ...]  # Conditions or orders that establish low back pain
    onset: datetime | None
    weeks: float | None
    reason_condition: str | None = None  # a Condition to cite as the reason on a referral

    @property
    def phase(self) -> str:
        if self.weeks is None:
            return "unknown"
        if self.weeks < 4:
            return "acute"
        if self.weeks <= 12:
            return "subacute"
        return "chronic"


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

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.rule, self.target.ref if self.target else "")
