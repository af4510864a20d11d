"""Is this low back pain, and for how long?

Guideline: duration matters throughout ("90% of acute episodes resolve within 6 weeks"; STarT Back
"at 2 weeks from pain onset"; "review no later than 12 weeks").
When an active (or recurrent/relapsed) low back pain Condition is on the record, or an order being
placed gives low back pain as its reason, Then the patient has a low back pain episode; its duration
runs from the earliest onset (or recorded date) of those Conditions, and is unknown otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..record import Order, PatientRecord
from .findings import BackPainEpisode
from .knowledge import Knowledge

WEEK_SECONDS = 7 * 24 * 3600


def back_pain_episode(
    record: PatientRecord, orders: Iterable[Order], kb: Knowledge, now: datetime
) -> BackPainEpisode | None:
    lbp = kb.vs("low_back_pain")
    conditions = [c for c in record.conditions if c.is_active and lbp.matches(c.code.codings)]
    lbp_refs = {c.ref for c in conditions}
    order_evidence = [
        o.ref
        for o in orders
        if any(lbp.matches(r.codings) for r in o.reasons) or lbp_refs.intersection(getattr(o, "reason_refs", ()))
    ]
    if not conditions and not order_evidence:
        return None
    starts = [c.started for c in conditions if c.started is not None]
    onset = min(starts) if starts else None
    weeks = max(0.0, (now - onset).total_seconds() / WEEK_SECONDS) if onset else None
    return BackPainEpisode(
        evidence=tuple(c.ref for c in conditions) + tuple(order_evidence),
        onset=onset,
        weeks=weeks,
        reason_condition=conditions[0].ref if conditions else None,
    )
