"""Review and referral.

Guideline: "Review no later than 12 weeks—if no improvement, consider referral to specialist pain
center"; "Refer to multidisciplinary pain management if pain persists despite optimized
nonpharmacologic and pharmacologic therapy over 3-6 months".
"Improvement" is read from pain intensity scores (LOINC 72514-3, 0-10) within the episode: improved
when the latest is at least 2 points below the first (a clinically important change), judged only
with two or more scores at least four weeks apart.
- When 12 weeks have passed and the scores show no improvement, Then suggest a specialist pain service.
- When 13 weeks (3 months) have passed without improvement and both exercise therapy / physiotherapy
  and an NSAID or duloxetine appear in the record, Then suggest multidisciplinary pain management.
- When 12 weeks have passed and improvement cannot be judged, Then say a review is due and why.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cds_service.domain.facts import PatientRecord
from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.knowledge.model import Knowledge
from cds_service.rules.catalog import PATIENT_VIEW, register
from cds_service.rules.recommendations.medicines import is_medicine

RULE = register(
    "lbp-review",
    hooks=PATIENT_VIEW,
    thresholds=("review_weeks", "multidisciplinary_weeks", "important_change_points", "pain_score_min_span_weeks"),
)


def _pain_scores(record: PatientRecord, episode: BackPainEpisode, kb: Knowledge) -> list[tuple[datetime, float, str]]:
    codes = kb.orders.observation_codes["pain_score"]
    scores = []
    for obs in record.observations:
        if not codes.intersection(obs.code.codings) or obs.effective is None:
            continue
        value = obs.value_integer if obs.value_integer is not None else (obs.quantity.value if obs.quantity else None)
        if value is None or (episode.onset and obs.effective < episode.onset):
            continue
        scores.append((obs.effective, float(value), obs.ref))
    return sorted(scores)


def _tried(record: PatientRecord, kb: Knowledge) -> tuple[bool, bool]:
    exercise = any(kb.vs("exercise_therapy").matches(o.code.codings) for o in record.orders)
    medicine = any(
        is_medicine(m, kb.medicines.nsaids, kb.medicines.nsaid_names)
        or is_medicine(m, kb.medicines.second_line, kb.medicines.second_line_names)
        for m in record.medications
    )
    return exercise, medicine


def review_and_referral(record: PatientRecord, episode: BackPainEpisode, kb: Knowledge) -> Finding | None:
    limits = kb.thresholds
    if episode.weeks is None or episode.weeks < limits.review_weeks.value:
        return None
    scores = _pain_scores(record, episode, kb)
    if len(scores) >= 2 and scores[-1][0] - scores[0][0] >= timedelta(weeks=limits.pain_score_min_span_weeks.value):
        first, last = scores[0], scores[-1]
        if first[1] - last[1] >= limits.important_change_points.value:
            return None
        basis = (
            f"pain score {first[1]:g}/10 on {first[0].date().isoformat()} and "
            f"{last[1]:g}/10 on {last[0].date().isoformat()}"
        )
        exercise, medicine = _tried(record, kb)
        variant = (
            "multidisciplinary"
            if episode.weeks >= limits.multidisciplinary_weeks.value and exercise and medicine
            else "specialist"
        )
        return Finding(
            rule=RULE,
            indicator="info",
            episode=episode,
            evidence=(first[2], last[2], *episode.evidence),
            facts={"variant": variant, "basis": basis},
        )
    why = "no pain scores recorded" if not scores else "too few pain scores over too short a time"
    if record.gap(kb.sources["pain_scores"]):
        why = "pain scores could not be read"
    return Finding(
        rule=RULE,
        indicator="info",
        episode=episode,
        evidence=episode.evidence,
        facts={"variant": "unknown", "basis": why},
    )
