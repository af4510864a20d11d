"""Memory that changes behaviour: cards clinicians have already answered are not repeated.

- An override whose reason says the clinician knows better for this patient (knowledge/memory.json)
  holds the same rule back for the same patient for a configurable number of days.
- Within one encounter, a card already shown and answered for the same, unchanged order is not shown
  again on the next hook (order-select, then order-sign). An unanswered card is shown again.
- Some cards (the first-line plan) appear at most once per encounter.
A held-back card is logged as suppressed, with why, so it can be audited. A red-flag card is never held
back: that is enforced here, not left to configuration.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .protocol import HookRequest
from .rules.engine import RED_FLAG_RULE
from .rules.findings import Finding
from .storage import Store

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"


@dataclass(frozen=True)
class MemoryPolicy:
    suppression_days: float
    suppressing_reasons: Mapping[str, tuple[str, ...]]
    once_per_encounter: frozenset[str]

    @classmethod
    def load(cls, suppression_days: float, path: Path = KNOWLEDGE_DIR / "memory.json") -> MemoryPolicy:
        data = json.loads(path.read_text())
        return cls(
            suppression_days=suppression_days,
            suppressing_reasons={rule: tuple(codes) for rule, codes in data["suppressing_reasons"].items()},
            once_per_encounter=frozenset(data["once_per_encounter"]),
        )


def fingerprint(finding: Finding) -> str | None:
    """A digest of the order the card is about, so that a changed order counts as a new question."""
    if finding.target is None:
        return None
    resource = {k: v for k, v in finding.target.resource.items() if k != "meta"}
    return hashlib.sha256(json.dumps(resource, sort_keys=True, default=str).encode()).hexdigest()[:32]


class Memory:
    def __init__(self, store: Store, policy: MemoryPolicy) -> None:
        self.store = store
        self.policy = policy

    def why_suppressed(self, finding: Finding, request: HookRequest, now: datetime) -> str | None:
        if finding.rule == RED_FLAG_RULE:
            return None  # safety invariant: a red flag is never hidden
        reasons = self.policy.suppressing_reasons.get(finding.rule, ())
        since = now - timedelta(days=self.policy.suppression_days)
        overridden = self.store.recent_override(request.patient_id, finding.rule, reasons, since)
        if overridden:
            return (
                f"overridden for this patient with reason {overridden!r} within {self.policy.suppression_days:g} days"
            )
        encounter = request.encounter_id
        if encounter is None:
            return None
        if finding.rule in self.policy.once_per_encounter and self.store.shown_in_encounter(encounter, finding.rule):
            return "already shown in this encounter"
        target = finding.target.ref if finding.target else None
        if target and self.store.answered_in_encounter(encounter, finding.rule, target, fingerprint(finding)):
            return "already answered for this order in this encounter"
        return None
