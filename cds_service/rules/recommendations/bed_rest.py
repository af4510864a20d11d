"""Bed rest for low back pain.

Guideline: "avoid bed rest entirely" ("First-Line Treatment"); "Bed rest—leads to deconditioning and
worsens outcomes" ("Critical Pitfalls to Avoid"); "Continue ordinary activities within pain limits".
When a bed-rest order is placed (or is active on the chart) for a patient with low back pain,
Then advise against it and offer exercise therapy instead.
When the order comes within post_operative_days of spinal surgery or a dural tear (orders.json
'post_operative'), Then the card says so and offers no one-click cancel: post-operative activity orders
are the surgical team's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cds_service.domain.facts import Concept, Order, PatientRecord
from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.knowledge.model import Knowledge
from cds_service.rules.catalog import ALL_HOOKS, register

RULE = register("lbp-bed-rest", hooks=ALL_HOOKS)  # its window is named in orders.json


def bed_rest_ordered(
    order: Order, episode: BackPainEpisode, record: PatientRecord, kb: Knowledge, now: datetime
) -> Finding:
    surgery = recent_spinal_surgery(record, kb, now)
    if surgery is None:
        return Finding(
            rule=RULE, indicator="warning", target=order, episode=episode, evidence=(order.ref, *episode.evidence)
        )
    ref, what, when = surgery
    note = (
        f"Ordered after {what} ({ref}, {when}), within {kb.orders.post_operative.window} days: post-operative "
        "activity orders are the surgical team's; ask them before changing it."
    )
    return Finding(
        rule=RULE,
        indicator="warning",
        target=order,
        episode=episode,
        evidence=(order.ref, ref, *episode.evidence),
        notes=(note,),
        offer_cancel=False,
    )


def recent_spinal_surgery(record: PatientRecord, kb: Knowledge, now: datetime) -> tuple[str, str, str] | None:
    """(reference, name, date) of spinal surgery or a dural tear within the post-operative window."""
    context = kb.orders.post_operative
    since = now - timedelta(days=context.window.value)
    dated = [(p.ref, p.code, p.performed) for p in record.procedures if p.done]
    dated += [(c.ref, c.code, c.started) for c in record.conditions]
    for ref, code, when in dated:
        if when is not None and since <= when <= now and _is_spinal_surgery(code, kb):
            return ref, code.label(), when.date().isoformat()
    return None


def _is_spinal_surgery(code: Concept, kb: Knowledge) -> bool:
    if any(vs.matches(code.codings) for vs in kb.orders.post_operative.valuesets):
        return True
    return kb.orders.post_operative.text_key in kb.text.find(code.search_text)
