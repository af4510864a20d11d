"""The engine's own decisions: adult_min_age, the red-flag card with and without back pain on record,
what is named as checked, one card per rule and order, most urgent first."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from cds_service.rules.engine import RED_FLAG_RULE, evaluate, orders_in_question
from cds_service.rules.recommendations.imaging import RULE as IMAGING_RULE

from ..builders import condition, lumbar_mri, patient, patient_record, service_order

LBP = {"icd": "M54.50"}


def _rules(findings) -> list[str]:
    return [f.rule for f in findings]


def _evaluate(kb, hook, resources, drafts=(), gaps=()):
    record = patient_record(resources, drafts=list(drafts), gaps=gaps)
    orders = orders_in_question(hook, record, [])
    return evaluate(hook, record, orders, kb, datetime.now(UTC))  # ages are built from today


def test_a_patient_one_year_under_the_adult_age_gets_no_adult_advice(kb, limits):
    child = patient(limits.adult_min_age.value - 0.5)
    assert _evaluate(kb, "order-sign", [child, condition(**LBP)], drafts=[lumbar_mri()]) == []


def test_a_patient_at_the_adult_age_gets_the_imaging_card(kb, limits):
    adult = patient(limits.adult_min_age.value + 0.01)
    assert _rules(_evaluate(kb, "order-sign", [adult, condition(**LBP)], drafts=[lumbar_mri()])) == [IMAGING_RULE]


def test_a_child_with_a_red_flag_still_gets_the_red_flag_card(kb, limits):
    child = patient(limits.adult_min_age.value - 1)
    findings = _evaluate(kb, "order-sign", [child, condition(**LBP), condition(icd="G83.4")], drafts=[lumbar_mri()])
    assert _rules(findings) == [RED_FLAG_RULE]


def test_a_red_flag_never_comes_with_advice_against_imaging(kb):
    findings = _evaluate(kb, "order-sign", [patient(40), condition(**LBP), condition(icd="C79.51")], [lumbar_mri()])
    assert _rules(findings) == [RED_FLAG_RULE]
    assert findings[0].target is not None and findings[0].target.ref == "ServiceRequest/draft-mri"
    assert findings[0].facts["urgency"] == "urgent" and findings[0].indicator == "warning"


def test_critical_flag_without_back_pain_raises_the_card_only_with_imaging_or_a_specific_sign(kb):
    retention = condition(icd="R33.9")
    assert _rules(_evaluate(kb, "order-sign", [patient(40), retention], [lumbar_mri()])) == [RED_FLAG_RULE]
    assert _evaluate(kb, "patient-view", [patient(40), retention]) == []
    syndrome = condition(icd="G83.4")
    (finding,) = _evaluate(kb, "patient-view", [patient(40), syndrome])
    assert (finding.rule, finding.indicator, finding.facts["urgency"]) == (RED_FLAG_RULE, "critical", "stat")


def test_no_back_pain_no_red_flag_no_cards(kb):
    assert _evaluate(kb, "order-sign", [patient(40), condition(icd="J45.909")], [lumbar_mri()]) == []


def test_checked_names_the_configured_windows_and_leaves_out_unread_sources(kb, limits):
    (finding,) = _evaluate(kb, "order-sign", [patient(40), condition(**LBP)], [lumbar_mri()])
    fever = f"Body temperature ≥ {limits.fever_celsius.value:.1f} °C in the last {limits.fever_days}"
    assert any(item.startswith(fever) for item in finding.checked)
    (unread,) = _evaluate(kb, "order-sign", [patient(40), condition(**LBP)], [lumbar_mri()], gaps=("observations",))
    assert not any(item.startswith("Body temperature") for item in unread.checked)
    assert any(item.startswith("observations") for item in unread.not_checked)


def test_patient_view_without_urgent_findings_gives_the_first_line_plan(kb):
    assert _rules(_evaluate(kb, "patient-view", [patient(40), condition(days_ago=3, **LBP)])) == ["lbp-first-line"]


def test_most_urgent_card_first(kb):
    findings = _evaluate(kb, "patient-view", [patient(40), condition(days_ago=3, **LBP), condition(icd="G83.4")])
    assert findings[0].indicator == "critical"
    assert [f.indicator for f in findings] == sorted(
        (f.indicator for f in findings), key=["critical", "warning", "info"].index
    )


def test_known_axial_spondyloarthritis_replaces_mechanical_advice(kb):
    known = condition(icd="M45.6", text="Ankylosing spondylitis")
    findings = _evaluate(kb, "order-sign", [patient(40), condition(**LBP), known], [lumbar_mri()])
    assert _rules(findings) == ["lbp-inflammatory"]
    assert _rules(_evaluate(kb, "patient-view", [patient(40), condition(days_ago=30, **LBP), known])) == [
        "lbp-inflammatory"
    ]  # no STarT Back screen and no first-line plan for inflammatory disease


def test_the_inflammatory_screen_shows_on_patient_view_only(kb, limits):
    chronic_days = (limits.inflammatory_chronic_weeks.value + 4) * 7
    young = [patient(30), condition(days_ago=chronic_days, **LBP)]
    assert "lbp-inflammatory" in _rules(_evaluate(kb, "patient-view", young))
    assert "lbp-inflammatory" not in _rules(_evaluate(kb, "order-sign", young, [lumbar_mri()]))


def test_red_flag_card_carries_the_episode_and_the_imaging_order(kb):
    lbp = condition(**LBP)
    findings = _evaluate(kb, "order-sign", [patient(40), lbp, condition(icd="C79.51")], [lumbar_mri()])
    assert findings[0].episode is not None and findings[0].episode.evidence == (f"Condition/{lbp['id']}",)
    (no_episode,) = _evaluate(kb, "order-sign", [patient(40), condition(icd="R33.9")], [lumbar_mri()])
    assert no_episode.target is not None and no_episode.target.ref == "ServiceRequest/draft-mri"
    assert no_episode.episode is None


def test_the_red_flag_card_lists_the_most_urgent_flag_first(kb):
    flags = [condition(icd="C79.51"), condition(icd="R33.9")]
    (finding,) = _evaluate(kb, "patient-view", [patient(40), condition(**LBP), *flags])
    assert finding.red_flags[0].category_id == "cauda-equina"
    assert finding.evidence == tuple(dict.fromkeys(f.evidence for f in finding.red_flags))


def test_ibuprofen_dose_checked_within_evaluate_while_ordering_only_for_unknown_doses(kb):
    from ..builders import dose, medication

    text_only = medication(status="draft", id="ibu", rxnorm="197807", dosage=[{"text": "as directed"}])
    lbp = condition(**LBP)
    findings = _evaluate(kb, "order-sign", [patient(40), lbp], [text_only])
    assert _rules(findings) == ["lbp-ibuprofen-dose-unknown"]
    high = medication(status="draft", id="ibu", rxnorm="197807", dosage=[dose(1200, per=3)])
    (finding,) = _evaluate(kb, "order-sign", [patient(40), lbp], [high])
    assert finding.episode is not None and finding.episode.evidence == (f"Condition/{lbp['id']}",)


def test_patient_view_without_an_urgent_card_keeps_the_first_line_plan_beside_info_cards(kb, limits):
    days = (limits.startback_screen_weeks.value + 1) * 7
    findings = _evaluate(kb, "patient-view", [patient(60), condition(days_ago=days, **LBP)])
    assert _rules(findings) == ["lbp-startback-screen", "lbp-first-line"]


def test_an_urgent_card_on_patient_view_drops_the_first_line_plan(kb):
    bed_rest = {**service_order(id="bed", text="Bed rest"), "status": "active"}  # on the chart, not a draft
    findings = _evaluate(kb, "patient-view", [patient(40), condition(days_ago=3, **LBP), bed_rest])
    assert "lbp-bed-rest" in _rules(findings) and "lbp-first-line" not in _rules(findings)


def test_checked_names_steroid_orders_unless_medications_were_unread(kb, limits):
    (finding,) = _evaluate(kb, "order-sign", [patient(40), condition(**LBP)], [lumbar_mri()])
    steroid = f"Systemic steroid orders adding up to {limits.long_term_steroid_days} days or more in the past year"
    assert steroid in finding.checked
    assert set(c.label for c in kb.red_flags.categories) <= set(finding.checked)
    (unread,) = _evaluate(
        kb, "order-sign", [patient(40), condition(**LBP)], [lumbar_mri()], gaps=("medicationRequests",)
    )
    assert steroid not in unread.checked


# Back pain for 13 weeks with no STarT Back result: the screening card (2 weeks) and the review (12) are due.
ROUTINE_DUE = {"days_ago": 91, **LBP}


def test_without_a_red_flag_weeks_of_back_pain_get_the_routine_cards(kb):
    rules = _rules(_evaluate(kb, "patient-view", [patient(40), condition(**ROUTINE_DUE)]))
    assert {"lbp-startback-screen", "lbp-review", "lbp-inflammatory"} <= set(rules)  # began before 45


@pytest.mark.parametrize(
    ("flag", "indicator"),
    [({"icd": "G83.4"}, "critical"), ({"icd": "C79.51"}, "warning")],
    ids=["cauda-equina", "metastasis"],
)
def test_a_red_flag_of_any_urgency_holds_back_the_routine_cards(kb, flag, indicator):
    findings = _evaluate(kb, "patient-view", [patient(40), condition(**ROUTINE_DUE), condition(**flag)])
    assert [(f.rule, f.indicator) for f in findings] == [(RED_FLAG_RULE, indicator)]


def test_which_cards_a_red_flag_holds_back_is_read_from_the_knowledge(kb):
    assert kb.red_flags.silences == {
        "lbp-first-line",
        "lbp-startback-screen",
        "lbp-startback-risk",
        "lbp-review",
        "lbp-inflammatory",
    }
    unsilenced = dataclasses.replace(
        kb, red_flags=dataclasses.replace(kb.red_flags, silences=frozenset({"lbp-first-line"}))
    )
    resources = [patient(40), condition(**ROUTINE_DUE), condition(icd="C79.51")]
    shown = set(_rules(_evaluate(unsilenced, "patient-view", resources)))
    assert {RED_FLAG_RULE, "lbp-startback-screen", "lbp-review", "lbp-inflammatory"} <= shown


def test_a_red_flag_keeps_the_advice_about_the_order_being_placed(kb):
    findings = _evaluate(
        kb,
        "order-sign",
        [patient(40), condition(**LBP), condition(icd="C79.51")],
        [service_order(id="bed", text="bed rest")],
    )
    assert set(_rules(findings)) == {RED_FLAG_RULE, "lbp-bed-rest"}
