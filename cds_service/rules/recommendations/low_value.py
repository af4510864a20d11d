"""Low-value interventions for axial low back pain.

Guideline ("Critical Pitfalls to Avoid"): "Epidural injections, facet joint injections, radiofrequency
ablation, or intramuscular trigger point injections for axial spine pain"; "TENS—shows no benefit
compared to sham"; "Lumbar supports—have not shown clear benefits".
When one of these is ordered for a patient with low back pain, Then advise against it and offer
exercise therapy; except an epidural injection when radicular pain is documented (on the problem
list or as the order's reason), which is not axial pain and a different question, and a lumbar support
for a vertebral fracture. An order whose reason is given and is not back pain, or whose body site is
given and is not the back (TENS for a knee), is not this guideline's question.
"""

from __future__ import annotations

from cds_service.domain.facts import Concept, Order, OrderFact, PatientRecord, as_list
from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.knowledge.model import Knowledge, LowValueIntervention
from cds_service.rules.catalog import ALL_HOOKS, register
from cds_service.rules.recommendations.back_pain import is_back_pain

RULE = register("lbp-low-value", hooks=ALL_HOOKS)


def intervention_for(order: Order, kb: Knowledge) -> LowValueIntervention | None:
    if not isinstance(order, OrderFact):
        return None
    coded = next((i for i in kb.low_value.interventions if i.valueset.matches(order.code.codings)), None)
    if coded is not None:
        return coded
    text = order.code.search_text.lower()
    return next((i for i in kb.low_value.interventions if i.text is not None and i.text.search(text)), None)


def low_value_interventions(
    orders: tuple[Order, ...], record: PatientRecord, episode: BackPainEpisode, kb: Knowledge
) -> list[Finding]:
    findings = []
    for order in orders:
        intervention = intervention_for(order, kb)
        if intervention is None or not isinstance(order, OrderFact):
            continue
        if intervention.not_when is not None and _documented(intervention, order, record):
            continue
        if not _for_the_back(order, kb):
            continue
        findings.append(
            Finding(
                rule=RULE,
                indicator="warning",
                target=order,
                episode=episode,
                evidence=(order.ref, *episode.evidence),
                facts={"intervention": intervention.label, "why": intervention.why, "citation": intervention.citation},
            )
        )
    return findings


def _documented(intervention: LowValueIntervention, order: OrderFact, record: PatientRecord) -> bool:
    vs = intervention.not_when
    assert vs is not None
    on_record = any(c.is_active and vs.matches(c.code.codings) for c in record.conditions)
    return on_record or any(vs.matches(r.codings) for r in order.reasons)


def _for_the_back(order: OrderFact, kb: Knowledge) -> bool:
    """Unless the order says otherwise: a reason that is not back pain, or a body site that is not the back."""
    if order.reasons and not any(is_back_pain(r, kb) for r in order.reasons):
        return False
    sites = [Concept.from_json(s) for s in as_list(order.resource.get("bodySite"))]
    named = [s.search_text for s in sites if s.search_text]
    return not named or any(kb.low_value.back_body_site.search(text) for text in named)
