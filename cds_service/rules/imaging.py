"""Lumbar imaging for low back pain.

Guideline ("Critical Pitfalls to Avoid"): "Do not obtain routine imaging unless red flags are present
(progressive neurological deficits, cauda equina syndrome, suspected infection, or malignancy)";
("Expected Outcomes"): "90% of acute episodes resolve within 6 weeks".
When a lumbar imaging order is placed for a patient with low back pain and no red flag is found,
Then advise against routine imaging: a warning in the first six weeks (or when the onset is unknown),
information after six weeks (imaging only if its result would change management).
A red flag present means no such advice at all (see red_flag_card in engine).
"""

from __future__ import annotations

from ..record import Order, PatientRecord
from .findings import BackPainEpisode, Finding

RULE = "lbp-imaging-no-red-flag"
SIX_WEEKS = 6.0
# Where red flags are read from: a gap in any of these is named on the card.
RED_FLAG_SOURCES = frozenset({"conditions", "observations", "medicationRequests"})


def imaging_without_red_flags(
    order: Order, episode: BackPainEpisode, record: PatientRecord, checked: tuple[str, ...]
) -> Finding:
    early = episode.weeks is None or episode.weeks < SIX_WEEKS
    return Finding(
        rule=RULE,
        indicator="warning" if early else "info",
        target=order,
        episode=episode,
        evidence=(order.ref, *episode.evidence),
        checked=checked,
        not_checked=tuple(f"{gap.what}: {gap.reason}" for gap in record.gaps if gap.key in RED_FLAG_SOURCES),
        facts={"variant": "early" if early else "late"},
    )
