"""Inflammatory back pain: a screen when back pain has lasted more than inflammatory_chronic_weeks and began
before inflammatory_onset_age (ASAS entry criteria); known axial spondyloarthritis is named whatever the age."""

from __future__ import annotations

from datetime import timedelta

from cds_service.domain.findings import BackPainEpisode
from cds_service.rules.recommendations.inflammatory import inflammatory_back_pain

from ..builders import condition, instant, patient, patient_record


def _check(kb, weeks: float, age_at_onset_years: int | None, extra=()):
    person = patient(None)
    onset = instant(condition(days_ago=3 * 365))
    if age_at_onset_years is not None:
        born = onset.date().replace(year=onset.year - age_at_onset_years) - timedelta(days=1)
        person["birthDate"] = born.isoformat()
    episode = BackPainEpisode(evidence=("Condition/lbp",), onset=onset, weeks=weeks)
    return inflammatory_back_pain(patient_record([person, *extra]), episode, kb)


def test_no_screen_at_exactly_the_chronic_limit(kb, limits):
    assert _check(kb, limits.inflammatory_chronic_weeks.value, 30) is None


def test_screen_just_past_the_chronic_limit_with_an_early_onset(kb, limits):
    finding = _check(kb, limits.inflammatory_chronic_weeks.value + 0.01, 30)
    assert finding is not None
    assert finding.facts == {"variant": "screen", "age_at_onset": "30"}
    assert finding.evidence[0] == "Patient/built-patient"


def test_onset_one_year_under_the_age_limit_is_screened_and_at_the_limit_is_not(kb, limits):
    limit = int(limits.inflammatory_onset_age.value)
    weeks = limits.inflammatory_chronic_weeks.value + 1
    below = _check(kb, weeks, limit - 1)
    assert below is not None and below.facts["age_at_onset"] == str(limit - 1)
    assert _check(kb, weeks, limit) is None


def test_no_birth_date_no_screen(kb, limits):
    assert _check(kb, limits.inflammatory_chronic_weeks.value + 1, None) is None


def test_known_axial_spondyloarthritis_is_named_whatever_the_duration(kb):
    known = condition(icd="M45.6")
    finding = _check(kb, 1, 60, extra=[known])
    assert finding is not None and finding.facts["variant"] == "known"
    assert finding.evidence == (f"Condition/{known['id']}",)


def test_resolved_axial_spondyloarthritis_is_not_known_disease(kb):
    assert _check(kb, 1, 60, extra=[condition(icd="M45.6", status="resolved")]) is None
