"""STarT Back: low when the total is at most startback_low_max_total; otherwise high when the distress
subscale is at least startback_high_min_distress, else medium; item 9 counts from
startback_item9_positive_min; screening suggested from startback_screen_weeks when no result exists."""

from __future__ import annotations

import pytest

from cds_service.domain.findings import BackPainEpisode
from cds_service.rules.recommendations.stratified_care import RISK_RULE, SCREEN_RULE, startback_result, stratified_care

from ..builders import observation, patient_record

LOINC = "http://loinc.org"


def _scores(kb, total: float, distress: float) -> list[dict]:
    return [
        observation(loinc=kb.startback.total[1], value=total, unit="{score}"),
        observation(loinc=kb.startback.distress[1], value=distress, unit="{score}"),
    ]


def _result(kb, resources):
    return startback_result(patient_record(resources), kb.startback, kb.thresholds)


def test_total_at_the_low_limit_is_low_and_one_more_is_not(kb, limits):
    low = limits.startback_low_max_total.value
    assert _result(kb, _scores(kb, low, 0)).risk == "low"
    assert _result(kb, _scores(kb, low + 1, 0)).risk == "medium"


def test_distress_at_the_high_limit_is_high_and_one_less_is_medium(kb, limits):
    total = limits.startback_low_max_total.value + 3
    high = limits.startback_high_min_distress.value
    assert _result(kb, _scores(kb, total, high)).risk == "high"
    assert _result(kb, _scores(kb, total, high - 1)).risk == "medium"


def test_a_low_total_is_low_whatever_the_distress(kb, limits):
    low = limits.startback_low_max_total.value
    assert _result(kb, _scores(kb, low, limits.startback_high_min_distress.value)).risk == "low"


def _items(kb, agree: list[bool], item9: dict) -> list[dict]:
    answers = [
        observation(loinc=code[1], answer={"text": "Agree" if yes else "Disagree"})
        for code, yes in zip(kb.startback.items[:8], agree, strict=True)
    ]
    item9_code = kb.startback.items[8][1]
    answers.append(observation(loinc=item9_code, **item9))
    return answers


def test_item_9_counts_from_its_threshold_answer_and_not_below(kb, limits):
    # Items 1-4 agree (4) and items 5-8 agree (4): the distress subscale is 4 + item 9.
    at = int(limits.startback_item9_positive_min.value)
    counted = _result(kb, _items(kb, [True] * 8, {"value": at, "unit": "{score}"}))
    assert counted.how == "scored from the nine answers: total 9, distress subscore 5"
    not_counted = _result(kb, _items(kb, [True] * 8, {"value": at - 1, "unit": "{score}"}))
    assert not_counted.how == "scored from the nine answers: total 8, distress subscore 4"


def test_item_9_read_from_its_answer_text(kb):
    assert "total 9" in _result(kb, _items(kb, [True] * 8, {"answer": {"text": "Extremely"}})).how
    assert "total 8" in _result(kb, _items(kb, [True] * 8, {"answer": {"text": "Slightly"}})).how


def test_scored_from_items_low_medium_high(kb):
    none9 = {"answer": {"text": "Not at all"}}
    assert _result(kb, _items(kb, [True, True, True] + [False] * 5, none9)).risk == "low"
    assert _result(kb, _items(kb, [True] * 4 + [False] * 4, none9)).risk == "medium"
    assert _result(kb, _items(kb, [True] * 8, none9)).risk == "high"


def test_a_missing_item_gives_no_result(kb):
    answers = _items(kb, [True] * 8, {"value": 4, "unit": "{score}"})
    assert _result(kb, answers[:-1]) is None


def test_a_recorded_risk_level_wins(kb):
    level = observation(loinc=kb.startback.risk_level[1], answer={"loinc": "LA9193-9", "display": "High risk"})
    result = _result(kb, [level, *_scores(kb, 0, 0)])
    assert (result.risk, result.how) == ("high", "recorded risk level")


def _episode(weeks):
    return BackPainEpisode(evidence=("Condition/lbp",), onset=None, weeks=weeks)


def test_screening_suggested_at_the_screen_week_and_not_before(kb, limits):
    at = limits.startback_screen_weeks.value
    finding = stratified_care(patient_record([]), _episode(at), kb)
    assert finding is not None and finding.rule == SCREEN_RULE
    assert stratified_care(patient_record([]), _episode(at - 0.01), kb) is None


def test_a_result_gives_the_risk_card_not_the_screen(kb):
    finding = stratified_care(patient_record(_scores(kb, 6, 5)), _episode(1), kb)
    assert finding is not None and finding.rule == RISK_RULE and finding.facts["variant"] == "high"


def test_unreadable_observations_give_no_stratified_card(kb):
    assert stratified_care(patient_record([], gaps=("observations",)), _episode(10), kb) is None


def _questionnaire(kb, agree: list[bool], item9: str, *, linked: bool) -> dict:
    """The STarT Back panel (LOINC 91349-1) as a QuestionnaireResponse whose linkIds are the items' LOINC codes,
    bare or as LHC-Forms writes them ("/91349-1/91340-0")."""

    def item(code: str, text: str) -> dict:
        answer = {"valueCoding": {"system": LOINC, "code": "LA-x", "display": text}}
        return {"linkId": f"/91349-1/{code}" if linked else code, "answer": [answer]}

    items = [item(c[1], "Agree" if yes else "Disagree") for c, yes in zip(kb.startback.items[:8], agree, strict=True)]
    items.append(item(kb.startback.items[8][1], item9))
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "startback-1",
        "status": "completed",
        "subject": {"reference": "Patient/built-patient"},
        "authored": "2026-11-20T10:00:00Z",
        "item": [{"linkId": "/91349-1", "item": items}],
    }


@pytest.mark.parametrize("linked", [False, True], ids=["loinc-linkids", "lhc-forms-paths"])
def test_a_startback_questionnaire_response_is_scored_like_the_observations(kb, linked):
    high = _questionnaire(kb, [True] * 8, "Extremely", linked=linked)
    low = _questionnaire(kb, [True, True, True] + [False] * 5, "Not at all", linked=linked)
    assert _result(kb, [high]).risk == "high"
    assert _result(kb, [low]).risk == "low"
