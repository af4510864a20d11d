"""Memory that changes behaviour: cards clinicians have already answered are not repeated.

- An override whose reason says the clinician knows better (knowledge/memory.json) holds back the same
  finding on the same target for the same patient for a configurable number of days: the same rule about
  the same order content and the same computed facts (fingerprint). A new or higher dose, another order,
  or a changed record that changes the finding shows the card again.
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

from cds_service.cds_hooks.protocol import HookRequest
from cds_service.domain.facts import Order
from cds_service.domain.findings import RED_FLAG_RULE, Finding
from cds_service.knowledge.loader import KNOWLEDGE_DIR, read_json
from cds_service.storage.store import Store


@dataclass(frozen=True)
class MemoryPolicy:
    suppression_days: float
    suppressing_reasons: Mapping[str, tuple[str, ...]]
    once_per_encounter: frozenset[str]

    @classmethod
    def load(cls, suppression_days: float, path: Path = KNOWLEDGE_DIR / "memory.json") -> MemoryPolicy:
        data = read_json(path)
        return cls(
            suppression_days=suppression_days,
            suppressing_reasons={rule: tuple(codes) for rule, codes in data["suppressing_reasons"].items()},
            once_per_encounter=frozenset(data["once_per_encounter"]),
        )


# Parts of an order that say who, when and which copy, not what: a re-order of the same medicine and dose in a
# later session is the same question; a changed dose or medicine is a new one.
BOOKKEEPING = frozenset(
    {"id", "meta", "text", "identifier", "status", "authoredOn", "subject", "encounter", "requester", "recorder"}
)


def _clinical_content(order: Order) -> dict[str, object]:
    return {k: v for k, v in order.resource.items() if k not in BOOKKEEPING}


def _digest(content: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]


def order_fingerprint(order: Order) -> str:
    """A digest of an order's clinical content (ids, dates and status left out): the same order across calls."""
    return _digest(_clinical_content(order))


def fingerprint(finding: Finding) -> str:
    """A digest of what the card is about: its rule, the clinical content of its target order, and the facts
    the rule computed (a daily dose, a variant). Ids and dates are left out, so the same finding about the
    same order content matches across calls and sessions."""
    content: dict[str, object] = {"rule": finding.rule, "facts": finding.facts}
    if finding.target is not None:
        content["target"] = _clinical_content(finding.target)
    return _digest(content)


class Memory:
    def __init__(self, store: Store, policy: MemoryPolicy) -> None:
        self.store = store
        self.policy = policy

    def hold_back(
        self, findings: list[Finding], prints: list[str], request: HookRequest, now: datetime
    ) -> dict[int, str]:
        """Index of each finding to hold back -> why. At most two queries per request, none without findings."""
        candidates = [i for i, f in enumerate(findings) if f.rule != RED_FLAG_RULE]  # a red flag is never hidden
        if not candidates:
            return {}
        since = now - timedelta(days=self.policy.suppression_days)
        overrides = self.store.overrides_since(request.caller, request.patient_id, since)
        history = self.store.encounter_history(request.caller, request.encounter_id) if request.encounter_id else None
        held: dict[int, str] = {}
        for i in candidates:
            finding = findings[i]
            print_ = prints[i]  # fingerprint(finding), computed once per call by the caller
            reason = next(
                (
                    r
                    for r in self.policy.suppressing_reasons.get(finding.rule, ())
                    if (finding.rule, r, print_) in overrides
                ),
                None,
            )
            if reason:
                held[i] = (
                    f"overridden for this patient and this {_target_word(finding)} with reason {reason!r} "
                    f"within {self.policy.suppression_days:g} days"
                )
            elif history is None:
                continue
            elif finding.rule in self.policy.once_per_encounter and finding.rule in history.shown_rules:
                held[i] = "already shown in this encounter"
            elif finding.target and (finding.rule, finding.target.ref, print_) in history.answered:
                held[i] = "already answered for this order in this encounter"
        return held


def _target_word(finding: Finding) -> str:
    return "order" if finding.target is not None else "finding"
