"""The episode: its phase (ACP 2017) and its start (HEDIS 180-day negative history), at the boundaries."""

from __future__ import annotations

from datetime import timedelta

from cds_service.domain.facts import Concept
from cds_service.rules.recommendations.back_pain import back_pain_episode, current_episode_start, is_back_pain, phase

from ..builders import condition, instant, patient_record

LBP = {"icd": "M54.50"}


def test_phase_is_acute_below_the_acute_limit_and_subacute_at_it(kb, limits):
    assert phase(limits.acute_phase_weeks.value - 0.01, kb) == "acute"
    assert phase(limits.acute_phase_weeks.value, kb) == "subacute"


def test_phase_is_subacute_at_the_chronic_limit_and_chronic_past_it(kb, limits):
    assert phase(limits.chronic_phase_weeks.value, kb) == "subacute"
    assert phase(limits.chronic_phase_weeks.value + 0.01, kb) == "chronic"


def test_phase_is_unknown_without_a_duration(kb):
    assert phase(None, kb) == "unknown"


def test_a_gap_of_exactly_the_new_episode_gap_keeps_one_episode(limits):
    first = instant(condition(days_ago=400, **LBP))
    gap = timedelta(days=limits.new_episode_gap_days.value)
    assert current_episode_start([first, first + gap], gap.days) == first


def test_a_gap_longer_than_the_new_episode_gap_starts_a_new_episode(limits):
    first = instant(condition(days_ago=400, **LBP))
    later = first + timedelta(days=limits.new_episode_gap_days.value, seconds=1)
    assert current_episode_start([later, first], limits.new_episode_gap_days.value) == later


def test_no_dates_no_start():
    assert current_episode_start([], 180) is None


def test_episode_weeks_and_phase_are_measured_from_the_current_start(kb, limits):
    old = condition(days_ago=900, status="resolved", **LBP)
    current = condition(days_ago=20, **LBP)
    now = instant(current, weeks=limits.chronic_phase_weeks.value + 1)
    episode = back_pain_episode(patient_record([old, current]), (), kb, now)
    assert episode is not None
    assert episode.onset == instant(current)
    assert episode.weeks == limits.chronic_phase_weeks.value + 1
    assert episode.phase == "chronic"
    assert episode.evidence == (f"Condition/{current['id']}",)
    assert episode.reason_condition == f"Condition/{current['id']}"


def test_only_resolved_back_pain_is_no_episode(kb):
    resolved = condition(days_ago=30, status="resolved", **LBP)
    assert back_pain_episode(patient_record([resolved]), (), kb, instant(resolved, days=30)) is None


def test_a_future_dated_entry_does_not_set_the_onset(kb):
    now_entry = condition(days_ago=0, **LBP)
    future = condition(days_ago=-30, **LBP)
    episode = back_pain_episode(patient_record([now_entry, future]), (), kb, instant(now_entry))
    assert episode is not None and episode.onset == instant(now_entry)


def test_an_order_reason_alone_makes_an_episode_with_unknown_onset(kb):
    from ..builders import lumbar_mri

    record = patient_record([], drafts=[lumbar_mri(reason={"text": "low back pain"})])
    episode = back_pain_episode(record, record.draft_orders, kb, instant(condition(**LBP)))
    assert episode is not None and episode.onset is None and episode.weeks is None
    assert episode.evidence == ("ServiceRequest/draft-mri",)


def test_back_pain_by_code_and_by_text_but_not_negated_text(kb):
    assert is_back_pain(
        Concept.from_json({"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M545"}]}), kb
    )
    assert is_back_pain(Concept.from_json({"text": "Lumbago"}), kb)
    assert not is_back_pain(Concept.from_json({"text": "denies back pain"}), kb)
    assert not is_back_pain(Concept.from_json({"text": "knee pain"}), kb)


def test_an_entry_dated_beyond_the_gap_in_the_future_does_not_start_a_new_episode(kb, limits):
    now_entry = condition(days_ago=0, **LBP)
    far_future = condition(days_ago=-(limits.new_episode_gap_days.value + 30), **LBP)
    episode = back_pain_episode(patient_record([now_entry, far_future]), (), kb, instant(now_entry))
    assert episode is not None and episode.onset == instant(now_entry)


def test_an_order_whose_reason_references_the_current_back_pain_is_evidence(kb):
    from ..builders import lumbar_mri

    lbp = condition(**LBP)
    order = lumbar_mri()
    order["reasonReference"] = [{"reference": f"Condition/{lbp['id']}"}]
    record = patient_record([lbp], drafts=[order])
    episode = back_pain_episode(record, record.draft_orders, kb, instant(lbp))
    assert episode is not None
    assert episode.evidence == (f"Condition/{lbp['id']}", "ServiceRequest/draft-mri")
