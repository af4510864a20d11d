"""Red flags: findings that make imaging and specialist review appropriate.

Guideline: "Do not obtain routine imaging unless red flags are present (progressive neurological
deficits, cauda equina syndrome, suspected infection, or malignancy)" and "Immediate specialist
consultation for red flags". Categories and codes live in knowledge/red_flags.json.
When any Condition, Observation, order reason, recent fever or long-term systemic steroid matches a
red-flag signal, Then that red flag is present, with the resource that shows it.
A missing clinical status counts as current and unconfirmed diagnoses count: a red flag is never
hidden by incomplete data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from ..record import MedicationFact, ObservationFact, Order, PatientRecord, Quantity
from .findings import RedFlag
from .knowledge import Knowledge, RedFlagCategory, RedFlagSignal

NEGATIVE_ANSWERS = frozenset({("http://snomed.info/sct", "373067005"), ("http://loinc.org", "LA32-8")})
COUNTING_OBSERVATION_STATUSES = frozenset({"preliminary", "final", "amended", "corrected", None})


def find_red_flags(
    record: PatientRecord,
    orders: Iterable[Order],
    kb: Knowledge,
    now: datetime,
    *,
    fever_days: int = 14,
    fever_celsius: float = 38.0,
    steroid_days: int = 90,
) -> tuple[RedFlag, ...]:
    flags: list[RedFlag] = []
    orders = list(orders)
    for category in kb.red_flag_categories:
        for signal in category.signals:
            flags.extend(_coded(category, signal, record, orders))
            if signal.fever_observation:
                flags.extend(_fever(category, signal, record.observations, kb, now, fever_days, fever_celsius))
            if signal.steroid_medication:
                flags.extend(_steroids(category, signal, record.medications, kb, now, steroid_days))
    return tuple(_unique(flags))


def _flag(category: RedFlagCategory, signal: RedFlagSignal, evidence: str, description: str) -> RedFlag:
    return RedFlag(
        category.id, category.label, category.indicator, category.advice, signal.label, evidence, description
    )


def _coded(
    category: RedFlagCategory, signal: RedFlagSignal, record: PatientRecord, orders: list[Order]
) -> list[RedFlag]:
    vs = signal.valueset
    if vs is None:
        return []
    found = []
    for condition in record.conditions:
        if (condition.is_active or signal.include_resolved) and vs.matches(condition.code.codings):
            status = condition.clinical_status or "status not recorded"
            found.append(_flag(category, signal, condition.ref, f"{condition.code.label()} ({status})"))
    for observation in record.observations:
        if vs.matches(observation.code.codings) and _observation_is_positive(observation):
            found.append(_flag(category, signal, observation.ref, f"{observation.code.label()} (observation)"))
    for order in orders:
        for reason in order.reasons:
            if vs.matches(reason.codings):
                found.append(_flag(category, signal, order.ref, f"{reason.label()} (reason given on the order)"))
    return found


def _observation_is_positive(observation: ObservationFact) -> bool:
    if observation.status not in COUNTING_OBSERVATION_STATUSES:
        return False
    if observation.value_boolean is False:
        return False
    return not (observation.value_code and any(c in NEGATIVE_ANSWERS for c in observation.value_code.codings))


def celsius(quantity: Quantity) -> float | None:
    """A temperature in °C, or None when the unit is not one we can read without guessing."""
    unit = quantity.unit.strip().lower().replace("°", "").replace("deg", "")
    if unit in {"cel", "c"}:
        return quantity.value
    if unit in {"[f]", "f"}:
        return (quantity.value - 32) * 5 / 9
    return None


def _fever(
    category: RedFlagCategory,
    signal: RedFlagSignal,
    observations: Iterable[ObservationFact],
    kb: Knowledge,
    now: datetime,
    days: int,
    threshold: float,
) -> list[RedFlag]:
    codes = kb.observation_codes["body_temperature"]
    since = now - timedelta(days=days)
    found = []
    for obs in observations:
        if not codes.intersection(obs.code.codings) or obs.status not in COUNTING_OBSERVATION_STATUSES:
            continue
        if obs.quantity is None or obs.effective is None or obs.effective < since:
            continue
        value = celsius(obs.quantity)
        if value is not None and value >= threshold:
            when = obs.effective.date().isoformat()
            found.append(_flag(category, signal, obs.ref, f"body temperature {value:.1f} °C on {when}"))
    return found


def is_systemic_steroid(medication: MedicationFact, kb: Knowledge) -> bool:
    name = medication.medication.label().lower()
    return any(i in name for i in kb.steroid_ingredients) and not any(t in name for t in kb.non_systemic_terms)


def _steroids(
    category: RedFlagCategory,
    signal: RedFlagSignal,
    medications: Iterable[MedicationFact],
    kb: Knowledge,
    now: datetime,
    days: int,
) -> list[RedFlag]:
    found = []
    for med in medications:
        if not med.is_open or not is_systemic_steroid(med, kb) or med.authored is None:
            continue
        if now - med.authored >= timedelta(days=days):
            since = med.authored.date().isoformat()
            found.append(_flag(category, signal, med.ref, f"{med.medication.label()} since {since}"))
    return found


def _unique(flags: list[RedFlag]) -> list[RedFlag]:
    seen: set[tuple[str, str]] = set()
    out = []
    for flag in flags:
        key = (flag.category_id, flag.evidence)
        if key not in seen:
            seen.add(key)
            out.append(flag)
    return out
