"""Medicines for low back pain.

Guideline ("Second-Line: Pharmacologic Treatment"): "Ibuprofen 400 mg every 4-6 hours (maximum 3200 mg
daily ...)"; "add NSAIDs as first-line pharmacologic therapy"; "Duloxetine is the preferred second-line
agent when NSAIDs provide inadequate response"; "Tramadol is an alternative second-line option".

- When ibuprofen is ordered with a total daily dose above 3200 mg (dose x frequency / period, the top of
  a dose range, an "as needed" order's maximum), Then warn with the computed dose and offer a dose within
  range. When the daily dose cannot be computed from the dosage, Then say so instead of guessing.
- When an opioid is ordered for low back pain and no NSAID appears among the patient's medication
  orders, Then advise an NSAID first (duloxetine second line, tramadol an alternative).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..record import DoseFact, MedicationFact, Order, PatientRecord, Quantity
from ..terminology import ValueSet
from .findings import BackPainEpisode, Finding
from .knowledge import Knowledge

DOSE_RULE = "lbp-ibuprofen-dose"
DOSE_UNKNOWN_RULE = "lbp-ibuprofen-dose-unknown"
OPIOID_RULE = "lbp-opioid-before-nsaid"

MG_PER_UNIT = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}
TABLET_UNITS = frozenset({"tab", "tablet", "tablets", "{tbl}", "{tablet}", "{tab}", "caplet", "capsule", "{capsule}"})
DAYS_PER_UNIT = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0}


@dataclass(frozen=True)
class DailyDose:
    mg: float | None
    how: str  # how it was computed, shown on the card
    problem: str | None = None  # why it could not be computed


def is_medicine(med: MedicationFact, valueset: ValueSet, names: tuple[str, ...]) -> bool:
    """By code where the order is coded from the value set, else by ingredient name in its text."""
    return valueset.matches(med.medication.codings) is not None or any(
        n in med.medication.label().lower() for n in names
    )


def _mg(quantity: Quantity | None, strength: float | None) -> tuple[float | None, str | None]:
    if quantity is None:
        return None, "no structured dose quantity; the dosage is text only"
    unit = quantity.unit.strip().lower()
    if unit in MG_PER_UNIT:
        return quantity.value * MG_PER_UNIT[unit], None
    if unit in TABLET_UNITS or unit in {"1", ""}:
        if strength is None:
            return None, "dose given in tablets for a product whose strength is not known"
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


def daily_dose_mg(med: MedicationFact, kb: Knowledge) -> DailyDose:
    """The largest daily ibuprofen dose any dosage line allows, in mg."""
    if not med.dosage:
        return DailyDose(None, "", "no dosage instructions")
    strength = next(
        (kb.ibuprofen.strength_mg[c] for c in med.medication.codings if c in kb.ibuprofen.strength_mg), None
    )
    doses = [_per_day(d, strength) for d in med.dosage]
    computed = [d for d in doses if d.mg is not None]
    if not computed:
        return doses[0]
    return max(computed, key=lambda d: d.mg or 0.0)


def ibuprofen_doses(orders: tuple[Order, ...], episode: BackPainEpisode, kb: Knowledge, hook: str) -> list[Finding]:
    findings = []
    for order in orders:
        if not isinstance(order, MedicationFact):
            continue
        if not is_medicine(order, kb.ibuprofen.valueset, ("ibuprofen",)):
            continue
        dose = daily_dose_mg(order, kb)
        if dose.mg is not None and dose.mg > kb.ibuprofen.max_daily_mg:
            findings.append(
                Finding(
                    rule=DOSE_RULE,
                    indicator="warning",
                    target=order,
                    episode=episode,
                    evidence=(order.ref,),
                    facts={
                        "daily_mg": f"{dose.mg:,.0f}",
                        "how": dose.how,
                        "max_mg": f"{kb.ibuprofen.max_daily_mg:,.0f}",
                    },
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
                    facts={
                        "problem": dose.problem or "dosage not structured",
                        "max_mg": f"{kb.ibuprofen.max_daily_mg:,.0f}",
                    },
                )
            )
    return findings


def opioid_before_nsaid(
    orders: tuple[Order, ...], record: PatientRecord, episode: BackPainEpisode, kb: Knowledge
) -> list[Finding]:
    opioids = [
        o
        for o in orders
        if isinstance(o, MedicationFact) and kb.vs("opioids").matches(o.medication.codings) is not None
    ]
    if not opioids:
        return []
    every_medication = (*record.medications, *(o for o in record.draft_orders if isinstance(o, MedicationFact)))
    tried = [m for m in every_medication if is_medicine(m, kb.vs("nsaid"), kb.nsaid_names)]
    if tried:
        return []
    gap = record.gap("medicationRequests")
    not_checked = (f"{gap.what}: {gap.reason}",) if gap else ()
    return [
        Finding(
            rule=OPIOID_RULE,
            indicator="warning",
            target=order,
            episode=episode,
            evidence=(order.ref, *episode.evidence),
            checked=(f"{len(record.medications)} medication orders on record",),
            not_checked=not_checked,
        )
        for order in opioids
    ]
