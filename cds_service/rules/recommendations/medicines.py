"""Medicines for low back pain.

Guideline ("Second-Line: Pharmacologic Treatment"): "Ibuprofen 400 mg every 4-6 hours (maximum 3200 mg
daily ...)"; "add NSAIDs as first-line pharmacologic therapy"; "Duloxetine is the preferred second-line
agent when NSAIDs provide inadequate response"; "Tramadol is an alternative second-line option".

- When ibuprofen is ordered with a total daily dose above 3200 mg (dose x frequency / period, the top of
  a dose range, an "as needed" order's maximum; concurrent dosage lines summed; the patient's other
  open ibuprofen orders added), Then warn with the computed dose and offer a dose within range, unless
  an NSAID contraindication is recorded or could not be checked. When the daily dose cannot be computed
  from the dosage, Then say so instead of guessing.
- When an opioid is ordered for low back pain (not for opioid use disorder, cough, or another reason
  given on the order) and no NSAID appears among the patient's medication orders, Then advise an NSAID
  first (duloxetine second line, tramadol an alternative), offering ibuprofen in one click only when no
  NSAID contraindication is recorded and every source of them could be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from cds_service.domain.facts import DoseFact, MedicationFact, Order, PatientRecord, Quantity
from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.domain.text_match import names_a_medicine
from cds_service.knowledge.model import Knowledge
from cds_service.knowledge.terminology import ValueSet
from cds_service.rules.catalog import ALL_HOOKS, ORDER_HOOKS, register
from cds_service.rules.recommendations.medicine_safety import SafetyCheck, nsaid_safety, opioid_is_for_back_pain

DOSE_RULE = register("lbp-ibuprofen-dose", hooks=ALL_HOOKS, thresholds=("ibuprofen_max_daily_mg",))
DOSE_UNKNOWN_RULE = register("lbp-ibuprofen-dose-unknown", hooks=ORDER_HOOKS, thresholds=("ibuprofen_max_daily_mg",))
OPIOID_RULE = register("lbp-opioid-before-nsaid", hooks=ALL_HOOKS)

MG_PER_UNIT = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}
# Count units: a number of tablets, capsules or pills, converted through the product's strength. UCUM
# writes them as annotations ("{pill}", what the CDS Hooks sandbox sends; "{tbl}"); EHRs also send words.
COUNT_UNITS = frozenset(
    {"1", "", "tab", "tabs", "tablet", "tablets", "caplet", "caplets", "capsule", "capsules", "cap", "caps", "pill"}
    | {"pills", "each", "ea", "dose", "doses", "unit", "units"}
)
STRENGTH_IN_NAME = re.compile(r"\b(\d+(?:\.\d+)?)\s*mg\b(?!\s*/\s*m?l)", re.IGNORECASE)
DAYS_PER_UNIT = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0}


@dataclass(frozen=True)
class DailyDose:
    mg: float | None
    how: str  # how it was computed, shown on the card
    problem: str | None = None  # why it could not be computed


def is_medicine(med: MedicationFact, valueset: ValueSet, names: tuple[str, ...]) -> bool:
    """By code where the order is coded from the value set, else by ingredient name in its text; an
    uncoded order's text is read with negation ("no ibuprofen - allergy" is not ibuprofen)."""
    if valueset.matches(med.medication.codings) is not None:
        return True
    label = med.medication.label().lower()
    if med.medication.codings:
        return any(n in label for n in names)  # a coded product's name: no negation in a product name
    return names_a_medicine(label, names)


def _mg(quantity: Quantity | None, strength: float | None) -> tuple[float | None, str | None]:
    if quantity is None:
        return None, "no structured dose quantity; the dosage is text only"
    unit = quantity.unit.strip().lower()
    if unit in MG_PER_UNIT:
        return quantity.value * MG_PER_UNIT[unit], None
    if unit in COUNT_UNITS or (unit.startswith("{") and unit.endswith("}")):
        if strength is None:
            return (
                None,
                f"dose given as a count ({quantity.unit or 'no unit'}) of a product whose strength is not known",
            )
        return quantity.value * strength, None
    return None, f"dose unit {quantity.unit!r} not understood"


def _per_day(dose: DoseFact, strength: float | None) -> DailyDose:
    if dose.max_per_period is not None:
        numerator, denominator, unit = dose.max_per_period
        mg, problem = _mg(numerator, strength)
        days = denominator * DAYS_PER_UNIT.get(unit.lower(), 0)
        if mg is not None and days > 0:
            return DailyDose(mg / days, f"maximum {numerator.value:g} {numerator.unit} per {denominator:g} {unit}")
        if problem:
            return DailyDose(None, "", problem)
    mg, problem = _mg(dose.dose_high, strength)
    if mg is None:
        return DailyDose(None, "", problem or "no dose")
    if dose.period is None or dose.period_unit not in DAYS_PER_UNIT or dose.period <= 0:
        return DailyDose(None, "", "no structured frequency (timing.repeat)")
    times = dose.frequency_max or dose.frequency or 1
    per_day = mg * times / (dose.period * DAYS_PER_UNIT[dose.period_unit])
    every = (
        f"every {dose.period:g} {dose.period_unit}"
        if times == 1
        else f"{times} times per {dose.period:g} {dose.period_unit}"
    )
    prn = " as needed, if taken as often as allowed" if dose.as_needed else ""
    return DailyDose(per_day, f"{mg:g} mg {every}{prn}")


def strength_mg(med: MedicationFact, kb: Knowledge) -> float | None:
    """mg per tablet: from the product code where known, else from the product's name ("Ibuprofen 800 MG
    Oral Tablet"); a liquid ("100 mg/5 mL") has no per-unit strength here."""
    coded = next(
        (
            kb.medicines.ibuprofen.strength_mg[c]
            for c in med.medication.codings
            if c in kb.medicines.ibuprofen.strength_mg
        ),
        None,
    )
    if coded is not None:
        return coded
    found = {float(m.group(1)) for m in STRENGTH_IN_NAME.finditer(med.medication.label())}
    return found.pop() if len(found) == 1 else None


def daily_dose_mg(med: MedicationFact, kb: Knowledge) -> DailyDose:
    """The largest daily ibuprofen dose the order allows, in mg. Dosage lines with the same `sequence`
    (or none) apply together and are summed (FHIR Dosage.sequence); different sequences follow one
    another, and the largest day counts."""
    if not med.dosage:
        return DailyDose(None, "", "no dosage instructions")
    strength = strength_mg(med, kb)
    groups: dict[int | None, list[DailyDose]] = {}
    for dose in med.dosage:
        groups.setdefault(dose.sequence, []).append(_per_day(dose, strength))
    totals = []
    for lines in groups.values():
        unknown = next((d for d in lines if d.mg is None), None)
        if unknown is not None:
            return unknown  # one unreadable line makes the day's total unknown
        how = " plus ".join(d.how for d in lines)
        totals.append(DailyDose(sum(d.mg or 0.0 for d in lines), how))
    return max(totals, key=lambda d: d.mg or 0.0)


def _with_other_orders(dose: DailyDose, order: MedicationFact, record: PatientRecord, kb: Knowledge) -> DailyDose:
    """Add the patient's other open ibuprofen orders: two prescriptions taken together are one daily dose."""
    if dose.mg is None:
        return dose
    total, parts = dose.mg, [dose.how]
    for other in (*record.medications, *(d for d in record.draft_orders if isinstance(d, MedicationFact))):
        if (
            other.ref == order.ref
            or not other.is_open
            or not is_medicine(other, kb.medicines.ibuprofen.valueset, ("ibuprofen",))
        ):
            continue
        extra = daily_dose_mg(other, kb)
        if extra.mg is not None:
            total += extra.mg
            parts.append(f"{extra.how} ({other.ref}, also open)")
    return replace(dose, mg=total, how="; ".join(parts))


def ibuprofen_doses(
    orders: tuple[Order, ...], record: PatientRecord, episode: BackPainEpisode, kb: Knowledge, hook: str, now: datetime
) -> list[Finding]:
    findings = []
    safety: SafetyCheck | None = None
    for order in orders:
        if not isinstance(order, MedicationFact):
            continue
        if not is_medicine(order, kb.medicines.ibuprofen.valueset, ("ibuprofen",)):
            continue
        dose = _with_other_orders(daily_dose_mg(order, kb), order, record, kb)
        if dose.mg is not None and dose.mg > kb.thresholds.ibuprofen_max_daily_mg.value:
            safety = safety or nsaid_safety(record, kb, now)
            findings.append(
                Finding(
                    rule=DOSE_RULE,
                    indicator="warning",
                    target=order,
                    episode=episode,
                    evidence=(order.ref, *safety.evidence),
                    facts={"daily_mg": f"{dose.mg:,.0f}", "how": dose.how},
                    notes=safety.notes(kb.notes),
                    offer_medicine=safety.safe_to_offer,
                )
            )
        elif dose.mg is None and hook != "patient-view":
            # Only while ordering: a chart full of free-text sigs should not produce a card per visit.
            findings.append(
                Finding(
                    rule=DOSE_UNKNOWN_RULE,
                    indicator="info",
                    target=order,
                    episode=episode,
                    evidence=(order.ref,),
                    facts={"problem": dose.problem or "dosage not structured"},
                )
            )
    return findings


def opioid_before_nsaid(
    orders: tuple[Order, ...], record: PatientRecord, episode: BackPainEpisode, kb: Knowledge, now: datetime
) -> list[Finding]:
    opioids = [
        o
        for o in orders
        if isinstance(o, MedicationFact)
        and kb.medicines.opioids.matches(o.medication.codings) is not None
        and opioid_is_for_back_pain(o, kb)
    ]
    if not opioids:
        return []
    every_medication = (*record.medications, *(o for o in record.draft_orders if isinstance(o, MedicationFact)))
    tried = [m for m in every_medication if is_medicine(m, kb.medicines.nsaids, kb.medicines.nsaid_names)]
    if tried:
        return []
    gap = record.gap(kb.sources["nsaid_history"])
    not_checked = (f"{gap.what}: {gap.reason}",) if gap else ()
    safety = nsaid_safety(record, kb, now)
    # With an NSAID contraindication the card's premise ("an NSAID first") does not hold: it informs,
    # names the contraindication, and offers neither the NSAID nor cancelling the only analgesic.
    contraindicated = bool(safety.found)
    return [
        Finding(
            rule=OPIOID_RULE,
            indicator="info" if contraindicated else "warning",
            target=order,
            episode=episode,
            evidence=(order.ref, *episode.evidence, *safety.evidence),
            checked=("the patient's medication orders on record, in any status",),
            not_checked=not_checked,
            notes=safety.notes(kb.notes),
            offer_medicine=safety.safe_to_offer,
            offer_cancel=not contraindicated,
        )
        for order in opioids
    ]
