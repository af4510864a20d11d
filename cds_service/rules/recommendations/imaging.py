"""Lumbar imaging for low back pain.

Guideline ("Critical Pitfalls to Avoid"): "Do not obtain routine imaging unless red flags are present
(progressive neurological deficits, cauda equina syndrome, suspected infection, or malignancy)";
("Expected Outcomes"): "90% of acute episodes resolve within 6 weeks".
When a lumbar imaging order is placed for a patient with low back pain and no red flag is found,
Then advise against routine imaging: a warning in the first six weeks (or when the onset is unknown),
information after six weeks (imaging only if its result would change management).
A red flag present means no such advice at all (see red_flag_card in engine).
When a source of red flags could not be read, or something that is not a red flag still calls for care
(an old cauda equina sign, non-specific neurological symptoms), Then the card says what, and offers no
one-click cancel. Age over the risk age (ACP/APS 2007) or over the measure's population is named.
"""

from __future__ import annotations

from collections.abc import Mapping

from cds_service.domain.facts import Order, PatientRecord
from cds_service.domain.findings import BackPainEpisode, Caution, Finding
from cds_service.knowledge.thresholds import Thresholds
from cds_service.rules.catalog import ALL_HOOKS, register

RULE = register(
    "lbp-imaging-no-red-flag",
    hooks=ALL_HOOKS,
    thresholds=("imaging_early_weeks", "older_risk_age", "measure_max_age"),
)


def imaging_without_red_flags(
    order: Order,
    episode: BackPainEpisode,
    record: PatientRecord,
    checked: tuple[str, ...],
    cautions: tuple[Caution, ...],
    age: int | None,
    limits: Thresholds,
    sources: frozenset[str],
    wording: Mapping[str, str],
) -> Finding:
    """`sources`: the prefetch keys red flags are read from; a gap in any of them withholds the cancel.
    `wording`: Knowledge.notes."""
    early = episode.weeks is None or episode.weeks < limits.imaging_early_weeks.value
    unread = tuple(f"{gap.what}: {gap.reason}" for gap in record.gaps if gap.key in sources)
    notes = []
    if age is None:
        notes.append(wording["age_not_checked"])
    else:
        if age > limits.older_risk_age.value:
            older = limits.older_risk_age
            notes.append(
                wording["age_cancer_risk"].format(age=age, older_risk_age=older, older_risk_age_source=older.source)
            )
        if age > limits.measure_max_age.value:
            source = limits.measure_max_age.source
            notes.append(wording["age_outside_measure"].format(age=age, measure_max_age_source=source))
    return Finding(
        rule=RULE,
        indicator="warning" if early else "info",
        target=order,
        episode=episode,
        evidence=(order.ref, *episode.evidence, *dict.fromkeys(c.evidence for c in cautions)),
        checked=checked,
        not_checked=unread,
        facts={"variant": "early" if early else "late"},
        cautions=cautions,
        notes=tuple(notes),
        # When in doubt, no one-click cancel: an unread source could hold the red flag.
        offer_cancel=not unread and not cautions,
    )
