"""Review and referral: due from review_weeks; improved when the first score minus the latest is at least
important_change_points over at least pain_score_min_span_weeks; multidisciplinary from
multidisciplinary_weeks when exercise and a medicine were both tried."""

from __future__ import annotations

from datetime import timedelta

from cds_service.domain.findings import BackPainEpisode
from cds_service.rules.recommendations.review import review_and_referral

from ..builders import instant, medication, observation, patient_record, service_order

ONSET_DAYS = 200


def _score(value: float, days_ago: float) -> dict:
    return observation(loinc="72514-3", value=value, unit="{score}", days_ago=days_ago)


def _episode(weeks: float, onset) -> BackPainEpisode:
    return BackPainEpisode(evidence=("Condition/lbp",), onset=onset, weeks=weeks)


def _onset():
    return instant(_score(0, ONSET_DAYS))


def _review(kb, weeks, resources, gaps=()):
    return review_and_referral(patient_record(resources, gaps=gaps), _episode(weeks, _onset()), kb)


def _two_scores(first: float, drop: float, span_days: float) -> list[dict]:
    return [_score(first, 100), _score(first - drop, 100 - span_days)]


def test_no_review_card_just_before_review_weeks(kb, limits):
    assert _review(kb, limits.review_weeks.value - 0.01, []) is None


def test_review_card_at_review_weeks(kb, limits):
    finding = _review(kb, limits.review_weeks.value, [])
    assert finding is not None and finding.facts == {"variant": "unknown", "basis": "no pain scores recorded"}


def test_a_drop_of_the_important_change_is_improvement(kb, limits):
    span = limits.pain_score_min_span_weeks.value * 7
    assert _review(kb, 20, _two_scores(7, limits.important_change_points.value, span)) is None


def test_a_drop_just_under_the_important_change_is_no_improvement(kb, limits):
    span = limits.pain_score_min_span_weeks.value * 7
    finding = _review(kb, 20, _two_scores(7, limits.important_change_points.value - 0.5, span))
    assert finding is not None and finding.facts["variant"] == "specialist"
    assert finding.facts["basis"].startswith("pain score 7/10 on ")
    assert len(finding.evidence) == 3  # both scores and the episode


def test_scores_exactly_the_minimum_span_apart_are_judged(kb, limits):
    span = limits.pain_score_min_span_weeks.value * 7
    finding = _review(kb, 20, _two_scores(7, 0, span))
    assert finding is not None and finding.facts["variant"] == "specialist"


def test_scores_closer_than_the_minimum_span_cannot_judge_improvement(kb, limits):
    span = limits.pain_score_min_span_weeks.value * 7 - 1
    finding = _review(kb, 20, _two_scores(7, 5, span))
    assert finding is not None
    assert finding.facts == {"variant": "unknown", "basis": "too few pain scores over too short a time"}


def test_one_score_cannot_judge_improvement(kb):
    finding = _review(kb, 20, [_score(7, 50)])
    assert finding is not None and finding.facts["basis"] == "too few pain scores over too short a time"


def test_scores_before_the_onset_are_not_counted(kb):
    before = _score(9, ONSET_DAYS + 30)
    finding = _review(kb, 20, [before, _score(8, 10)])
    assert finding is not None and finding.facts["variant"] == "unknown"


def test_unreadable_observations_are_named(kb):
    finding = _review(kb, 20, [], gaps=("observations",))
    assert finding is not None and finding.facts["basis"] == "pain scores could not be read"


def _tried_everything() -> list[dict]:
    exercise = service_order(id="pt-1", snomed="229065009")
    exercise["status"] = "completed"
    return [exercise, medication(rxnorm="197805")]


def test_multidisciplinary_from_its_week_when_exercise_and_medicine_were_tried(kb, limits):
    scores = _two_scores(7, 0, 60)
    assert _review(kb, limits.multidisciplinary_weeks.value, scores + _tried_everything()).facts["variant"] == (
        "multidisciplinary"
    )


def test_specialist_just_before_the_multidisciplinary_week(kb, limits):
    scores = _two_scores(7, 0, 60)
    weeks = limits.multidisciplinary_weeks.value - 0.01
    assert _review(kb, weeks, scores + _tried_everything()).facts["variant"] == "specialist"


def test_specialist_when_only_exercise_or_only_medicine_was_tried(kb, limits):
    scores = _two_scores(7, 0, 60)
    exercise, medicine = _tried_everything()
    weeks = limits.multidisciplinary_weeks.value + 5
    assert _review(kb, weeks, [*scores, exercise]).facts["variant"] == "specialist"
    assert _review(kb, weeks, [*scores, medicine]).facts["variant"] == "specialist"
    assert _review(kb, weeks, [*scores, exercise, medication(rxnorm="596926")]).facts["variant"] == "multidisciplinary"


def test_the_latest_score_is_compared_with_the_first(kb, limits):
    # 8, then 3 (improved), then back to 8: the latest against the first shows no improvement.
    scores = [_score(8, 100), _score(3, 70), _score(8, 40)]
    assert _review(kb, 20, scores).facts["variant"] == "specialist"
    assert timedelta(days=60) >= timedelta(weeks=limits.pain_score_min_span_weeks.value)
