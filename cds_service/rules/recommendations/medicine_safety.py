"""Before a medicine is offered in one click: its contraindications, and what an opioid is for.

Safety rule: no one-click medicine order for a patient with a recorded contraindication to it, and none
when the data needed to check were not available. Contraindications and their sources live in
knowledge/medicine_safety.json, each with a citation.
When any NSAID contraindication is recorded (allergy, pregnancy, severe kidney disease, peptic ulcer or GI
bleeding, anticoagulant or antiplatelet therapy, heart failure), Then the card names it and offers no
NSAID order; when a source could not be read, Then the card says which and offers none.
When an opioid is a medicine for opioid use disorder, an antitussive, or is ordered for a reason other
than back pain, Then the "NSAID first" advice does not apply to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.domain.facts import Concept, MedicationFact, ObservationFact, PatientRecord
from cds_service.domain.text_match import TextMatcher
from cds_service.knowledge.medicine_safety import Contraindication, OlderAdult
from cds_service.knowledge.model import Knowledge
from cds_service.knowledge.terminology import ValueSet
from cds_service.rules.recommendations.back_pain import is_back_pain


@dataclass(frozen=True)
class SafetyCheck:
    """What stands against a one-click NSAID: contraindications found, and sources that could not be read."""

    found: tuple[str, ...]  # "pregnancy: Pregnant state (Condition/12, since 2026-09-01)"
    not_checked: tuple[str, ...]
    evidence: tuple[str, ...]

    @property
    def safe_to_offer(self) -> bool:
        return not self.found and not self.not_checked

    def notes(self, wording: Mapping[str, str]) -> tuple[str, ...]:
        """`wording`: Knowledge.notes."""
        notes = [wording["not_offered_found"].format(item=item) for item in self.found]
        notes += [wording["not_offered_not_checked"].format(item=item) for item in self.not_checked]
        return tuple(notes)


def _text_says(matcher: TextMatcher, key: str, concept: Concept) -> bool:
    return bool(key) and key in matcher.find(concept.search_text, (key,))


def _recent(started: datetime | None, days: int | None, now: datetime) -> bool:
    return days is None or started is None or started >= now - timedelta(days=days)


def nsaid_safety(record: PatientRecord, kb: Knowledge, now: datetime) -> SafetyCheck:
    found: list[str] = []
    evidence: list[str] = []
    for rule in kb.medicines.safety.nsaid:
        hit = _first_hit(rule, record, now, kb.text)
        if hit is not None:
            found.append(f"{rule.label}: {hit[1]} ({hit[0]})")
            evidence.append(hit[0])
    not_checked = tuple(
        f"{what} ({gap.reason})"
        for key, what in kb.medicines.safety.sources.items()
        if (gap := record.gap(key)) is not None
    )
    unread = tuple(
        f"{gap.what} ({gap.reason})"
        for gap in record.gaps
        if gap.key in kb.medicines.safety.sources and "/" in gap.what
    )
    older = kb.medicines.safety.older_adult
    age = record.age_on(now.date())
    renal: tuple[str, ...] = ()
    if age is not None and age >= older.min_age.value:
        found.append(older.label.format(age=age, min_age=older.min_age))
        if not _renal_result(older, record, now):
            renal = (older.no_renal_result,)
    return SafetyCheck(tuple(found), tuple(dict.fromkeys((*not_checked, *unread, *renal))), tuple(evidence))


def _renal_result(older: OlderAdult, record: PatientRecord, now: datetime) -> bool:
    return any(
        any(vs.matches(o.code.codings) for vs in older.renal) and _recent(o.effective, older.renal_recent_days, now)
        for o in record.observations
        if o.effective is not None
    )


def _first_hit(
    rule: Contraindication, record: PatientRecord, now: datetime, text: TextMatcher
) -> tuple[str, str] | None:
    for condition in record.conditions:
        if not (condition.is_active or rule.condition_any_status):
            continue
        coded = rule.condition_valueset is not None and rule.condition_valueset.matches(condition.code.codings)
        if (coded or _text_says(text, rule.text_key, condition.code)) and _recent(
            condition.started, rule.recent_days, now
        ):
            return condition.ref, condition.code.label()
    for allergy in record.allergies:
        if not allergy.is_active:
            continue
        coded = rule.allergy_valueset is not None and rule.allergy_valueset.matches(allergy.code.codings)
        if rule.allergy_valueset is not None and (coded or _text_says(text, rule.text_key, allergy.code)):
            return allergy.ref, f"allergy or intolerance to {allergy.code.label()}"
    for medication in record.medications:
        if not medication.is_open or medication.is_draft:
            continue
        if _is_named_medicine(medication, rule.medication_valueset, rule.medication_names):
            return medication.ref, medication.medication.label()
    for observation in record.observations:
        if (
            rule.observation_valueset is not None
            and rule.observation_valueset.matches(observation.code.codings)
            and _recent(observation.effective, rule.recent_days, now)
            and _says_yes(observation, rule.positive_answers)
        ):
            return observation.ref, f"{observation.code.label()} recorded"
    if rule.egfr_valueset is not None and rule.egfr_below is not None:
        return _low_egfr(rule, record, now)
    return None


def _says_yes(observation: ObservationFact, positive: frozenset[tuple[str, str]]) -> bool:
    """A measured value (weeks of gestation), or a coded answer that is one of the positive answers."""
    if observation.value_code is not None:
        return bool(positive.intersection(observation.value_code.codings))
    return observation.quantity is not None or observation.value_boolean is True


def _low_egfr(rule: Contraindication, record: PatientRecord, now: datetime) -> tuple[str, str] | None:
    """The latest eGFR of the window decides: an old low value followed by a normal one is not current."""
    assert rule.egfr_valueset is not None and rule.egfr_below is not None
    readings = [
        o
        for o in record.observations
        if rule.egfr_valueset.matches(o.code.codings)
        and o.quantity is not None
        and o.effective is not None
        and _recent(o.effective, rule.egfr_recent_days, now)
    ]
    if not readings:
        return None
    latest = max(readings, key=lambda o: o.effective)  # type: ignore[arg-type,return-value]
    assert latest.quantity is not None and latest.effective is not None
    if latest.quantity.value < rule.egfr_below:
        when = latest.effective.date().isoformat()
        return latest.ref, f"eGFR {latest.quantity.value:g} {latest.quantity.unit} on {when}"
    return None


def _is_named_medicine(medication: MedicationFact, valueset: ValueSet | None, names: tuple[str, ...]) -> bool:
    if valueset is not None and valueset.matches(medication.medication.codings):
        return True
    label = medication.medication.label().lower()
    return any(re.search(rf"\b{re.escape(name)}\b", label) for name in names)


def opioid_is_for_back_pain(order: MedicationFact, kb: Knowledge) -> bool:
    """Plausibly for back pain: not an opioid use disorder medicine or a cough medicine, and either no
    reason on the order or a back pain reason (a reason that is something else decides)."""
    rules = kb.medicines.safety.opioid
    label = order.medication.label().lower()
    if rules.other_medicines.matches(order.medication.codings) or any(n in label for n in rules.other_names):
        return False
    if any(t in label for t in rules.antitussive_terms):
        return False
    if any(rules.other_reasons.matches(r.codings) for r in order.reasons):
        return False
    return not order.reasons or any(is_back_pain(r, kb) for r in order.reasons)
