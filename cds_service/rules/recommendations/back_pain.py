"""Is this low back pain, and since when?

Guideline: duration matters throughout ("90% of acute episodes resolve within 6 weeks"; STarT Back
"at 2 weeks from pain onset"; "review no later than 12 weeks").
When an active (or recurrent/relapsed, or status-less) Condition is low back pain (by code, ICD-10-CM
hierarchy included, or by un-negated text), or an order being placed gives low back pain as its reason,
Then the patient has a low back pain episode.
Its onset is the current episode's, not the oldest entry's: entries (active or not) are taken in date
order, and a gap longer than the data's new-episode gap (HEDIS: 180 days without a low back pain
diagnosis) starts a new episode. With no dated entry, the onset is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import pairwise

from cds_service.domain.facts import Concept, ConditionFact, Order, PatientRecord
from cds_service.domain.findings import BackPainEpisode
from cds_service.knowledge.model import Knowledge
from cds_service.rules.catalog import reads_thresholds

WEEK_SECONDS = 7 * 24 * 3600
reads_thresholds("episode", ("acute_phase_weeks", "chronic_phase_weeks", "new_episode_gap_days"))


def is_back_pain(concept: Concept, kb: Knowledge) -> bool:
    if kb.episode.valueset.matches(concept.codings) is not None:
        return True
    text = concept.search_text
    return bool(text) and kb.episode.text_key in kb.text.find(text, (kb.episode.text_key,))


def current_episode_start(dates: Iterable[datetime], gap_days: float) -> datetime | None:
    """The first date of the last run of dates in which no two neighbours are more than ``gap_days`` apart."""
    ordered = sorted(dates)
    if not ordered:
        return None
    start = ordered[0]
    for earlier, later in pairwise(ordered):
        if later - earlier > timedelta(days=gap_days):
            start = later
    return start


def phase(weeks: float | None, kb: Knowledge) -> str:
    """ACP 2017: acute under 4 weeks, subacute 4 to 12, chronic over 12 (thresholds.json)."""
    if weeks is None:
        return "unknown"
    if weeks < kb.thresholds.acute_phase_weeks.value:
        return "acute"
    if weeks <= kb.thresholds.chronic_phase_weeks.value:
        return "subacute"
    return "chronic"


def back_pain_episode(
    record: PatientRecord, orders: Iterable[Order], kb: Knowledge, now: datetime
) -> BackPainEpisode | None:
    entries: list[ConditionFact] = [c for c in record.conditions if is_back_pain(c.code, kb)]
    current = [c for c in entries if c.is_active]
    current_refs = {c.ref for c in current}
    order_evidence = [
        o.ref
        for o in orders
        if any(is_back_pain(r, kb) for r in o.reasons) or current_refs.intersection(getattr(o, "reason_refs", ()))
    ]
    if not current and not order_evidence:
        return None
    dates = [c.started for c in entries if c.started is not None and c.started <= now]
    onset = current_episode_start(dates, kb.thresholds.new_episode_gap_days.value)
    weeks = max(0.0, (now - onset).total_seconds() / WEEK_SECONDS) if onset else None
    latest = max(current, key=lambda c: c.started or datetime.min.replace(tzinfo=now.tzinfo), default=None)
    return BackPainEpisode(
        evidence=tuple(c.ref for c in current) + tuple(order_evidence),
        onset=onset,
        weeks=weeks,
        phase=phase(weeks, kb),
        reason_condition=latest.ref if latest else None,
    )
