"""Red flags: findings that make imaging and specialist review appropriate.

Guideline: "Do not obtain routine imaging unless red flags are present (progressive neurological
deficits, cauda equina syndrome, suspected infection, or malignancy)" and "Immediate specialist
consultation for red flags"; the NCQA HEDIS imaging measure adds its exclusions (recent trauma, IV drug
use, HIV, transplant, prolonged steroids, osteoporosis or fracture, lumbar surgery, spondylopathy).
Categories, signals, windows and text terms live in knowledge/red_flags.json.
When any Condition, positive Observation or reason on an order matches a signal (by code in any
supported code system, or by un-negated text), within its time window, Then that red flag is present,
with the resource that shows it; an entry outside its window is a caution, or ignored, as the data say.
When systemic steroid orders of the past year add up to the threshold, or a body temperature reaches the
fever threshold within the fever window, Then that red flag is present too.
A missing clinical status counts as current, unconfirmed diagnoses count, an undated entry counts as
recent: a red flag is never hidden by incomplete data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.domain.facts import (
    Concept,
    ConditionFact,
    MedicationFact,
    ObservationFact,
    Order,
    PatientRecord,
    ProcedureFact,
    Quantity,
)
from cds_service.domain.findings import Caution, RedFlag
from cds_service.domain.text_match import names_a_medicine
from cds_service.domain.windows import ClinicalWindows
from cds_service.knowledge.model import (
    Knowledge,
    LabCriterion,
    MedicineCriterion,
    RedFlagCategory,
    RedFlagSignal,
)
from cds_service.rules.catalog import reads_thresholds

COUNTING_OBSERVATION_STATUSES = frozenset({"preliminary", "final", "amended", "corrected", None})
# Orders that were never given do not add to a steroid course.
UNGIVEN_MEDICATION_STATUSES = frozenset({"cancelled", "entered-in-error", "draft", "not-taken"})
reads_thresholds("red flags", ("fever_celsius", "fever_days", "long_term_steroid_days", "steroid_lookback_days"))


@dataclass(frozen=True)
class RedFlagAssessment:
    flags: tuple[RedFlag, ...]
    cautions: tuple[Caution, ...]


@dataclass(frozen=True)
class _Entry:
    """One dated, coded or written statement about the patient: a Condition, Observation or order reason."""

    ref: str
    concept: Concept
    active: bool
    started: datetime | None
    where: str  # how it reached us, for the card
    ended: datetime | None = None  # a resolved entry's end: its window counts from then


def assess_red_flags(
    record: PatientRecord, orders: Iterable[Order], kb: Knowledge, now: datetime, windows: ClinicalWindows
) -> RedFlagAssessment:
    entries = [_condition_entry(c) for c in record.conditions]
    entries += [_procedure_entry(p) for p in record.procedures if p.done]
    entries += [
        _Entry(e.ref, reason, True, e.start, "reason for a visit") for e in record.encounters for reason in e.reasons
    ]
    entries += [_Entry(a.ref, a.concept, True, a.authored, "answered in a questionnaire") for a in record.answers]
    entries += [_observation_entry(o) for o in record.observations if _observation_is_positive(o, kb)]
    entries += [_Entry(o.ref, reason, True, now, "reason given on the order") for o in orders for reason in o.reasons]
    flags: list[RedFlag] = []
    cautions: list[Caution] = []
    for entry in entries:
        text = entry.concept.search_text
        hits = kb.text.find(text)
        # One dictionary look-up per coding finds the signals a code belongs to; text adds its own.
        keys = {key for coding in entry.concept.codings for key in kb.red_flags.signals_by_code.get(coding, ())}
        keys |= hits.intersection(kb.red_flags.signals_by_key)
        if not keys:
            continue
        for key in sorted(keys):
            category, signal = kb.red_flags.signals_by_key[key]
            if category is not None:
                _judge(entry, hits, category, signal, now, windows, flags, cautions)
            elif entry.active or signal.any_status:
                cautions.append(Caution(signal.label, _describe(entry, signal), entry.ref, signal.why))
    for category in kb.red_flags.categories:
        for signal in category.signals:
            if signal.fever_observation:
                flags.extend(_fever(category, signal, record.observations, kb, now, windows))
            if signal.steroid_medication:
                flags.extend(
                    _steroid_course(category, signal, record.medications, kb, now, windows.long_term_steroid_days)
                )
            if signal.lab is not None:
                _lab_results(category, signal, signal.lab, record.observations, now, flags, cautions)
            if signal.medicine is not None:
                drafts = (o for o in orders if isinstance(o, MedicationFact))
                flags.extend(_medicines(category, signal, signal.medicine, (*record.medications, *drafts), now))
    return RedFlagAssessment(tuple(_unique_flags(flags)), tuple(_unique_cautions(cautions)))


def _judge(
    entry: _Entry,
    hits: frozenset[str],
    category: RedFlagCategory,
    signal: RedFlagSignal,
    now: datetime,
    windows: ClinicalWindows,
    flags: list[RedFlag],
    cautions: list[Caution],
) -> None:
    if not (entry.active or signal.any_status):
        return
    window = windows.fever_days if signal.recent_days == "fever" else signal.recent_days
    if entry.active and not signal.window_for_active:
        window = None
    description = _describe(entry, signal)
    # An undated entry counts as recent: its age cannot be shown, so it cannot be set aside. A resolved one
    # counts from when it ended, where the record says (years of steroid use that stopped last month).
    latest = entry.ended or entry.started
    if isinstance(window, int | float) and latest is not None and latest < now - timedelta(days=window):
        if signal.when_older == "caution":
            why = (
                f"began more than {window:g} days ago, so not counted as a new red flag; ask whether it is new or worse"
            )
            cautions.append(Caution(signal.label, description, entry.ref, why))
        return
    critical = signal.critical and entry.active
    flags.append(
        RedFlag(
            category.id,
            category.label,
            category.indicator if critical else _non_critical(category.indicator),
            category.advice,
            signal.label,
            entry.ref,
            description,
            summary=category.summary if critical or category.indicator != "critical" else category.summary_not_critical,
            critical=critical,
            specific=signal.specific,
        )
    )


def _non_critical(indicator: str) -> str:
    return "warning" if indicator == "critical" else indicator


def _describe(entry: _Entry, signal: RedFlagSignal) -> str:
    when = f", since {entry.started.date().isoformat()}" if entry.started else ", date not recorded"
    code = signal.valueset.matches(entry.concept.codings) if signal.valueset is not None else None
    how = "" if code else "; recognised from its text"
    name = entry.concept.text
    if not name and code is not None and signal.valueset is not None:
        # A code sent without display text: name it from the value set, with the code, so it is recognisable.
        name = f"{signal.valueset.displays.get(code) or 'coded entry'} ({code[1]})"
    return f"{name or entry.concept.label()} ({entry.where}{when}{how})"


def _condition_entry(condition: ConditionFact) -> _Entry:
    status = condition.clinical_status or "status not recorded"
    if condition.verification_status in {"unconfirmed", "provisional", "differential"}:
        status += f", {condition.verification_status}"
    ended = None if condition.is_active else condition.abated
    return _Entry(condition.ref, condition.code, condition.is_active, condition.started, status, ended)


def _procedure_entry(procedure: ProcedureFact) -> _Entry:
    return _Entry(
        procedure.ref,
        procedure.code,
        True,
        procedure.performed,
        f"procedure, {procedure.status or 'status not recorded'}",
    )


def _observation_entry(observation: ObservationFact) -> _Entry:
    return _Entry(observation.ref, observation.code, True, observation.effective, "observation")


def _observation_is_positive(observation: ObservationFact, kb: Knowledge) -> bool:
    if observation.status not in COUNTING_OBSERVATION_STATUSES:
        return False
    if observation.value_boolean is False:
        return False
    return not (observation.value_code and any(c in kb.answers.no.codes for c in observation.value_code.codings))


def celsius(quantity: Quantity) -> float | None:
    """A temperature in °C, or None when the unit is not one we can read without guessing."""
    unit = quantity.unit.strip().lower().replace("°", "").replace("deg", "").replace("[", "").replace("]", "")
    if unit in {"cel", "c", "celsius"}:
        return quantity.value
    if unit in {"f", "fahrenheit"}:
        return (quantity.value - 32) * 5 / 9
    if unit in {"k", "kelvin"}:
        return quantity.value - 273.15
    return None


def _temperatures(obs: ObservationFact, codes: frozenset[tuple[str, str]]) -> list[Quantity]:
    """Body temperatures in an Observation: its own value, or components such as a vital-signs panel's."""
    found = []
    if obs.quantity is not None and codes.intersection(obs.code.codings):
        found.append(obs.quantity)
    found += [c.quantity for c in obs.components if c.quantity is not None and codes.intersection(c.code.codings)]
    return found


def _fever(
    category: RedFlagCategory,
    signal: RedFlagSignal,
    observations: Iterable[ObservationFact],
    kb: Knowledge,
    now: datetime,
    windows: ClinicalWindows,
) -> list[RedFlag]:
    since = now - timedelta(days=windows.fever_days)
    found = []
    for obs in observations:
        if obs.status not in COUNTING_OBSERVATION_STATUSES or obs.effective is None or obs.effective < since:
            continue
        for quantity in _temperatures(obs, kb.red_flags.body_temperature):
            value = celsius(quantity)
            if value is not None and value >= windows.fever_celsius:
                when = obs.effective.date().isoformat()
                description = f"{_temperature_name(obs, kb)} {value:.1f} °C on {when}"
                found.append(_computed_flag(category, signal, obs.ref, description))
                break
    return found


def _temperature_name(obs: ObservationFact, kb: Knowledge) -> str:
    """The reading's own text, else the value set's display for its code ("Body temperature"), never a bare
    code and system on the card."""
    if obs.code.text:
        return obs.code.text
    displays = kb.vs("body_temperature").displays
    named = next((displays[c] for c in obs.code.codings if c in displays), None)
    return named or obs.code.label()


def _computed_flag(category: RedFlagCategory, signal: RedFlagSignal, ref: str, description: str) -> RedFlag:
    return RedFlag(
        category.id,
        category.label,
        _non_critical(category.indicator),
        category.advice,
        signal.label,
        ref,
        description,
        summary=category.summary if category.indicator != "critical" else category.summary_not_critical,
    )


def _lab_results(
    category: RedFlagCategory,
    signal: RedFlagSignal,
    lab: LabCriterion,
    observations: Iterable[ObservationFact],
    now: datetime,
    flags: list[RedFlag],
    cautions: list[Caution],
) -> None:
    """A result beyond its threshold, or flagged abnormal by the laboratory where no value can be compared,
    within its window: a red flag.
    One older than the window, or in a unit that cannot be compared, is a caution; never set aside."""
    for obs in observations:
        if obs.status not in COUNTING_OBSERVATION_STATUSES or not lab.recognises(
            obs.code.codings, obs.code.search_text
        ):
            continue
        name = obs.code.label()
        when = obs.effective.date().isoformat() if obs.effective else "date not recorded"
        flagged = sorted(lab.abnormal_interpretations.intersection(obs.interpretation))
        value = None
        if obs.quantity is not None and (factor := lab.units.get(obs.quantity.unit.strip().lower())) is not None:
            value = obs.quantity.value * factor
        # A value that can be compared decides (a high-sensitivity CRP flagged H against cardiac-risk limits is
        # not a raised CRP); the laboratory's flag decides when no value can be compared.
        if value is not None:
            if not lab.beyond(value):
                continue
            reading = f"{value:g} {lab.threshold.unit} ({lab.direction} {lab.threshold} {lab.threshold.unit})"
        elif flagged:
            shown = f"{obs.quantity.value:g} {obs.quantity.unit}, " if obs.quantity else ""
            reading = f"{shown}flagged {'/'.join(flagged)} by the laboratory"
        elif obs.quantity is not None:  # a value in a unit the factors do not convert
            description = f"{name} {obs.quantity.value:g} {obs.quantity.unit or '(no unit)'} on {when}"
            why = f"its unit could not be compared with {lab.direction} {lab.threshold} {lab.threshold.unit}; read it"
            cautions.append(Caution(signal.label, description, obs.ref, why))
            continue
        else:
            continue
        description = f"{name} {reading} on {when}"
        window = lab.window.value if lab.window else None
        if window is not None and obs.effective is not None and obs.effective < now - timedelta(days=window):
            why = f"more than {window:g} days old, so not counted as a new red flag; ask whether it was followed up"
            cautions.append(Caution(signal.label, description, obs.ref, why))
            continue
        flags.append(_computed_flag(category, signal, obs.ref, description))


def _medicines(
    category: RedFlagCategory,
    signal: RedFlagSignal,
    medicine: MedicineCriterion,
    medications: Iterable[MedicationFact],
    now: datetime,
) -> list[RedFlag]:
    """A medicine that implies the red flag, taken within the window: an open order or active statement counts
    as taken now; a stopped one from the day it was last taken."""
    since = now - timedelta(days=medicine.window.value)
    found = []
    for med in medications:
        if med.status in UNGIVEN_MEDICATION_STATUSES and not med.is_draft:  # the drafts being signed count
            continue
        name = medicine.names_it(med.medication.codings, med.medication.search_text)
        if name is None:
            continue
        last = now if med.is_open else med.last_taken
        if last is not None and last < since:
            continue
        how = "reported as taken" if med.is_statement else ("being ordered" if med.is_draft else "ordered")
        started = f", since {med.authored.date().isoformat()}" if med.authored else ""
        description = f"{med.medication.label()} ({how}{started}; {name})"
        found.append(_computed_flag(category, signal, med.ref, description))
    return found


def is_systemic_steroid(medication: MedicationFact, kb: Knowledge) -> bool:
    if kb.red_flags.systemic_steroids.matches(medication.medication.codings) is not None:
        return True
    name = medication.medication.label().lower()
    if any(t in name for t in kb.red_flags.non_systemic_terms):
        return False
    if medication.medication.codings:
        return any(i in name for i in kb.red_flags.steroid_ingredients)
    return names_a_medicine(name, kb.red_flags.steroid_ingredients)  # uncoded text, read with negation


def _steroid_course(
    category: RedFlagCategory,
    signal: RedFlagSignal,
    medications: Iterable[MedicationFact],
    kb: Knowledge,
    now: datetime,
    threshold_days: float,
) -> list[RedFlag]:
    """Days of systemic steroid in the past year, summed over every order and statement: monthly prescriptions
    of 30 days each make a long course even though no single order is long, and years of use recorded as one
    statement count for the part of them that falls in the past year."""
    since = now - timedelta(days=kb.thresholds.steroid_lookback_days.value)
    total = 0.0
    counted: list[MedicationFact] = []
    for med in medications:
        if med.status in UNGIVEN_MEDICATION_STATUSES or med.authored is None or med.authored > now:
            continue
        if not is_systemic_steroid(med, kb):
            continue
        days = med.supply_days or 0.0
        if med.is_open:
            # An open order has run at least since it was written, whatever supply it names.
            days = max(days, (now - med.authored).total_seconds() / 86400)
        if med.authored < since:  # only the part of the course inside the look-back
            days = max(0.0, days - (since - med.authored).total_seconds() / 86400)
        if days:
            total += days
            counted.append(med)
    if total < threshold_days or not counted:
        return []
    first = min(m.authored for m in counted if m.authored).date().isoformat()
    description = (
        f"{counted[0].medication.label()}: {len(counted)} order(s) since {first}, "
        f"about {total:.0f} days of systemic steroid in the past year"
    )
    return [_computed_flag(category, signal, counted[0].ref, description)]


def _unique_flags(flags: list[RedFlag]) -> list[RedFlag]:
    """One flag per category and resource; when two signals of a category match, the critical one stays."""
    best: dict[tuple[str, str], RedFlag] = {}
    for flag in flags:
        key = (flag.category_id, flag.evidence)
        if key not in best or (flag.critical and not best[key].critical):
            best[key] = flag
    return list(best.values())


def _unique_cautions(cautions: list[Caution]) -> list[Caution]:
    seen: set[tuple[str, str]] = set()
    out = []
    for caution in cautions:
        if (caution.label, caution.evidence) not in seen:
            seen.add((caution.label, caution.evidence))
            out.append(caution)
    return out
