"""The small rules, each Finding compared whole: low-value interventions (reason and body site decide),
bed rest, the first-line plan, and the review, inflammatory and STarT Back findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.rules.recommendations.bed_rest import bed_rest_ordered
from cds_service.rules.recommendations.first_line import first_line_plan
from cds_service.rules.recommendations.inflammatory import inflammatory_back_pain
from cds_service.rules.recommendations.low_value import low_value_interventions
from cds_service.rules.recommendations.review import review_and_referral
from cds_service.rules.recommendations.stratified_care import stratified_care

from ..builders import condition, instant, observation, patient, patient_record, procedure, service_order

EPISODE = BackPainEpisode(evidence=("Condition/lbp",), onset=None, weeks=3, phase="acute")


def _low_value(kb, order, resources=()):
    record = patient_record(list(resources), drafts=[order])
    return low_value_interventions(record.draft_orders, record, EPISODE, kb)


def test_a_facet_injection_for_the_back_is_a_low_value_warning(kb):
    (finding,) = _low_value(kb, service_order(id="facet", cpt="64493"))
    intervention = next(i for i in kb.low_value.interventions if i.id == "facet-injection")
    assert finding == Finding(
        rule="lbp-low-value",
        indicator="warning",
        target=finding.target,
        episode=EPISODE,
        evidence=("ServiceRequest/facet", "Condition/lbp"),
        facts={"intervention": intervention.label, "why": intervention.why, "citation": intervention.citation},
    )
    assert finding.target is not None and finding.target.ref == "ServiceRequest/facet"


def test_every_low_value_order_in_a_call_gets_its_card(kb):
    record = patient_record([], drafts=[service_order(id="a", cpt="64493"), service_order(id="b", cpt="64550")])
    findings = low_value_interventions(record.draft_orders, record, EPISODE, kb)
    assert [f.target.ref for f in findings if f.target] == ["ServiceRequest/a", "ServiceRequest/b"]


def test_an_epidural_with_documented_radicular_pain_is_not_flagged(kb):
    epidural = service_order(id="epi", cpt="62323")
    assert len(_low_value(kb, epidural)) == 1
    assert _low_value(kb, epidural, [condition(icd="M51.16")]) == []
    assert _low_value(kb, epidural, [condition(icd="M51.16", status="resolved")]) != []
    assert _low_value(kb, service_order(id="epi", cpt="62323", reason={"icd": "M51.16"})) == []


@pytest.mark.parametrize(
    "radicular",
    ["M47.26", "M51.17", "M54.16", "M54.41", "M50.12"],
    ids=["spondylosis-with-radiculopathy", "disc-with-radiculopathy", "radiculopathy", "sciatica", "cervical-disc"],
)
def test_an_epidural_for_any_radiculopathy_category_is_not_called_axial(kb, radicular):
    epidural = service_order(id="epi", cpt="64483")
    assert _low_value(kb, epidural, [condition(icd=radicular)]) == []


@pytest.mark.parametrize("axial", ["M47.816", "M51.36", "M54.50"], ids=["spondylosis", "disc-degeneration", "lbp"])
def test_an_epidural_for_axial_pain_only_is_low_value(kb, axial):
    assert len(_low_value(kb, service_order(id="epi", cpt="64483"), [condition(icd=axial)])) == 1


def test_reason_and_body_site_decide_whether_the_advice_applies(kb):
    assert _low_value(kb, service_order(cpt="64550", reason={"text": "knee osteoarthritis"})) == []
    assert len(_low_value(kb, service_order(cpt="64550", reason={"icd": "M54.50"}))) == 1
    assert _low_value(kb, service_order(cpt="64550", body_site="Left knee")) == []
    assert len(_low_value(kb, service_order(cpt="64550", body_site="Lumbar spine"))) == 1
    assert len(_low_value(kb, service_order(cpt="64550", body_site="L4"))) == 1


def test_bed_rest_and_first_line_findings(kb):
    (draft,) = patient_record([], drafts=[service_order(id="bed", text="bed rest")]).draft_orders
    assert bed_rest_ordered(draft, EPISODE, patient_record([]), kb, datetime.now(UTC)) == Finding(
        rule="lbp-bed-rest",
        indicator="warning",
        target=draft,
        episode=EPISODE,
        evidence=("ServiceRequest/bed", "Condition/lbp"),
    )
    assert first_line_plan(EPISODE) == Finding(
        rule="lbp-first-line", indicator="info", episode=EPISODE, evidence=("Condition/lbp",)
    )


def test_the_review_finding_whole(kb, limits):
    first, last = (
        observation(loinc="72514-3", value=7, unit="{score}", days_ago=80),
        observation(loinc="72514-3", value=6.5, unit="{score}", days_ago=10),
    )
    onset = instant(first) - timedelta(days=10)
    episode = BackPainEpisode(evidence=("Condition/lbp",), onset=onset, weeks=limits.review_weeks.value)
    finding = review_and_referral(patient_record([first, last]), episode, kb)
    assert finding == Finding(
        rule="lbp-review",
        indicator="info",
        episode=episode,
        evidence=(f"Observation/{first['id']}", f"Observation/{last['id']}", "Condition/lbp"),
        facts={
            "variant": "specialist",
            "basis": f"pain score 7/10 on {first['effectiveDateTime'][:10]} and "
            f"6.5/10 on {last['effectiveDateTime'][:10]}",
        },
    )
    unknown = review_and_referral(patient_record([]), episode, kb)
    assert unknown == Finding(
        rule="lbp-review",
        indicator="info",
        episode=episode,
        evidence=("Condition/lbp",),
        facts={"variant": "unknown", "basis": "no pain scores recorded"},
    )


def test_a_score_on_the_onset_counts_and_an_integer_score_is_read(kb):
    onset_score = observation(loinc="72514-3", days_ago=80)
    onset_score["valueInteger"] = 8
    later = observation(loinc="72514-3", value=8, unit="{score}", days_ago=10)
    episode = BackPainEpisode(evidence=("Condition/lbp",), onset=instant(onset_score), weeks=20)
    finding = review_and_referral(patient_record([onset_score, later]), episode, kb)
    assert finding is not None and finding.facts["variant"] == "specialist"
    assert finding.facts["basis"].startswith("pain score 8/10 on ")


def test_a_score_without_a_value_or_date_is_not_counted(kb):
    undated = observation(loinc="72514-3", value=9, unit="{score}")
    del undated["effectiveDateTime"]
    valueless = observation(loinc="72514-3", days_ago=70)
    other = observation(loinc="8867-4", value=9, unit="/min", days_ago=70)
    scored = observation(loinc="72514-3", value=2, unit="{score}", days_ago=10)
    episode = BackPainEpisode(evidence=("Condition/lbp",), onset=None, weeks=20)
    finding = review_and_referral(patient_record([undated, valueless, other, scored]), episode, kb)
    assert finding is not None and finding.facts["basis"] == "too few pain scores over too short a time"


def test_the_inflammatory_findings_whole(kb, limits):
    person = patient(None)
    onset = instant(condition(days_ago=400))
    person["birthDate"] = onset.date().replace(year=onset.year - 30).isoformat()  # 30th birthday at onset
    episode = BackPainEpisode(
        evidence=("Condition/lbp",), onset=onset, weeks=limits.inflammatory_chronic_weeks.value + 1
    )
    assert inflammatory_back_pain(patient_record([person]), episode, kb) == Finding(
        rule="lbp-inflammatory",
        indicator="info",
        episode=episode,
        evidence=("Patient/built-patient", "Condition/lbp"),
        facts={"variant": "screen", "age_at_onset": "30"},
    )
    person["birthDate"] = (onset.date().replace(year=onset.year - 30) + timedelta(days=1)).isoformat()
    assert inflammatory_back_pain(patient_record([person]), episode, kb).facts["age_at_onset"] == "29"
    known = condition(icd="M45.6", text="Ankylosing spondylitis of lumbar region")
    assert inflammatory_back_pain(patient_record([person, known]), episode, kb) == Finding(
        rule="lbp-inflammatory",
        indicator="info",
        episode=episode,
        evidence=(f"Condition/{known['id']}",),
        facts={"variant": "known", "diagnosis": "Ankylosing spondylitis of lumbar region"},
    )


def test_the_stratified_findings_whole(kb, limits):
    scores = [
        observation(loinc=kb.startback.total[1], value=2, unit="{score}"),
        observation(loinc=kb.startback.distress[1], value=1, unit="{score}"),
    ]
    episode = BackPainEpisode(evidence=("Condition/lbp",), onset=None, weeks=limits.startback_screen_weeks.value)
    assert stratified_care(patient_record(scores), episode, kb) == Finding(
        rule="lbp-startback-risk",
        indicator="info",
        episode=episode,
        evidence=(f"Observation/{scores[0]['id']}", f"Observation/{scores[1]['id']}"),
        facts={"variant": "low", "how": "total score 2, distress subscore 1"},
    )
    assert stratified_care(patient_record([]), episode, kb) == Finding(
        rule="lbp-startback-screen", indicator="info", episode=episode, evidence=("Condition/lbp",)
    )
    assert stratified_care(patient_record([]), BackPainEpisode(("Condition/lbp",), None, None), kb) is None


def test_startback_answers_in_a_panel_and_the_latest_answer_wins(kb):
    items = kb.startback.items
    panel = observation(loinc="91349-1", days_ago=5)
    panel["component"] = [
        {"code": {"coding": [{"system": "http://loinc.org", "code": c[1]}]}, "valueInteger": 1} for c in items[:8]
    ] + [{"code": {"coding": [{"system": "http://loinc.org", "code": items[8][1]}]}, "valueInteger": 4}]
    panel_only = stratified_care(patient_record([panel]), EPISODE, kb)
    assert (
        panel_only is not None
        and panel_only.facts["how"] == "scored from the nine answers: total 9, distress subscore 5"
    )
    assert panel_only.evidence == (f"Observation/{panel['id']}",)
    later_total = observation(loinc=kb.startback.total[1], value=1, unit="{score}", days_ago=1)
    later_distress = observation(loinc=kb.startback.distress[1], value=1, unit="{score}", days_ago=1)
    older_total = observation(loinc=kb.startback.total[1], value=8, unit="{score}", days_ago=30)
    finding = stratified_care(patient_record([older_total, later_total, later_distress]), EPISODE, kb)
    assert finding is not None and finding.facts == {"variant": "low", "how": "total score 1, distress subscore 1"}


def test_startback_item_answers_as_booleans_and_integers(kb):
    items = kb.startback.items
    answers = []
    for i, code in enumerate(items[:8]):
        obs = observation(loinc=code[1], days_ago=2)
        if i % 2:
            obs["valueBoolean"] = True
        else:
            obs["valueInteger"] = 0
        answers.append(obs)
    answers.append(observation(loinc=items[8][1], answer={"text": "Very much"}, days_ago=2))
    finding = stratified_care(patient_record(answers), EPISODE, kb)
    assert finding is not None and finding.facts["how"] == "scored from the nine answers: total 5, distress subscore 3"


def _bed_rest_after(kb, resources):
    record = patient_record(resources, drafts=[service_order(id="bed", text="Bed rest x 24h, flat")])
    return bed_rest_ordered(record.draft_orders[0], EPISODE, record, kb, datetime.now(UTC))


def test_bed_rest_within_the_post_operative_window_of_spinal_surgery_offers_no_cancel(kb, limits):
    days = limits.post_operative_days.value
    fusion = procedure(cpt="22612", display="Arthrodesis, posterior technique, lumbar", days_ago=days - 1)
    finding = _bed_rest_after(kb, [fusion])
    assert not finding.offer_cancel and "surgical team" in finding.notes[0] and fusion["id"] in finding.notes[0]


def test_bed_rest_past_the_post_operative_window_is_the_ordinary_advice(kb, limits):
    fusion = procedure(cpt="22612", days_ago=limits.post_operative_days.value + 1)
    assert _bed_rest_after(kb, [fusion]).offer_cancel


def test_a_dural_tear_coded_or_written_makes_bed_rest_post_operative(kb):
    assert not _bed_rest_after(kb, [condition(icd="G97.41", days_ago=3)]).offer_cancel
    assert not _bed_rest_after(kb, [condition(text="Incidental durotomy at L4-5 repaired", days_ago=2)]).offer_cancel


def test_a_knee_operation_does_not_make_bed_rest_post_operative(kb):
    knee = procedure(cpt="29881", display="Arthroscopy, knee, with meniscectomy", days_ago=3)
    assert _bed_rest_after(kb, [knee]).offer_cancel
