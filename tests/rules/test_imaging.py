"""The imaging rule: early (warning) below imaging_early_weeks, late (info) from it; the age notes at
older_risk_age and measure_max_age; no one-click cancel when a red-flag source is unread or a caution
stands."""

from __future__ import annotations

import pytest

from cds_service.domain.findings import BackPainEpisode, Caution
from cds_service.knowledge.model import knowledge
from cds_service.rules.recommendations.imaging import imaging_without_red_flags

from ..builders import lumbar_mri, patient_record


def _finding(limits, weeks, *, age=40, gaps=(), cautions=()):
    record = patient_record([], drafts=[lumbar_mri()], gaps=gaps)
    episode = BackPainEpisode(evidence=("Condition/lbp",), onset=None, weeks=weeks)
    sources = knowledge().red_flags.sources
    return imaging_without_red_flags(
        record.draft_orders[0], episode, record, ("checked",), cautions, age, limits, sources, knowledge().notes
    )


def test_just_before_the_imaging_window_ends_the_card_is_an_early_warning(limits):
    finding = _finding(limits, limits.imaging_early_weeks.value - 0.01)
    assert (finding.indicator, finding.facts["variant"]) == ("warning", "early")


def test_at_the_end_of_the_imaging_window_the_card_is_late_information(limits):
    finding = _finding(limits, limits.imaging_early_weeks.value)
    assert (finding.indicator, finding.facts["variant"]) == ("info", "late")


def test_unknown_duration_is_treated_as_early(limits):
    assert _finding(limits, None).facts["variant"] == "early"


def test_age_at_the_risk_age_is_not_named_and_one_year_over_is(limits):
    at = int(limits.older_risk_age.value)
    assert _finding(limits, 1, age=at).notes == ()
    (note,) = _finding(limits, 1, age=at + 1).notes
    assert note.startswith(f"Age {at + 1}: over {at} is a risk factor for cancer")


def test_age_at_the_measure_limit_is_inside_it_and_one_year_over_is_outside(limits):
    at = int(limits.measure_max_age.value)
    assert not any("outside the imaging measure" in n for n in _finding(limits, 1, age=at).notes)
    assert any("outside the imaging measure" in n for n in _finding(limits, 1, age=at + 1).notes)


def test_no_birth_date_is_named(limits):
    assert _finding(limits, 1, age=None).notes == ("Age not checked: no birth date was available.",)


def test_cancel_is_offered_only_when_every_red_flag_source_was_read_and_no_caution_stands(limits):
    assert _finding(limits, 1).offer_cancel
    for source in ("conditions", "observations", "medicationRequests"):
        unread = _finding(limits, 1, gaps=(source,))
        assert not unread.offer_cancel
        assert unread.not_checked == (f"{source}: could not be read (test)",)
    assert _finding(limits, 1, gaps=("allergyIntolerances",)).offer_cancel  # not a red-flag source
    caution = Caution("history", "old foot drop", "Condition/old", "began long ago")
    assert not _finding(limits, 1, cautions=(caution,)).offer_cancel


def test_the_card_targets_the_order_and_cites_the_episode_and_cautions(limits):
    caution = Caution("history", "old foot drop", "Condition/old", "began long ago")
    finding = _finding(limits, 1, cautions=(caution, caution))
    assert finding.target is not None and finding.target.ref == "ServiceRequest/draft-mri"
    assert finding.evidence == ("ServiceRequest/draft-mri", "Condition/lbp", "Condition/old")
    assert finding.checked == ("checked",)


@pytest.mark.parametrize(
    "source", ["conditions", "observations", "medicationRequests", "medicationStatements", "procedures"]
)
def test_any_unread_red_flag_source_withholds_the_cancel(limits, source):
    finding = _finding(limits, 1, gaps=(source,))
    assert not finding.offer_cancel and finding.not_checked


def test_an_unread_allergy_list_does_not_withhold_the_imaging_cancel(limits):
    assert _finding(limits, 1, gaps=("allergyIntolerances",)).offer_cancel
