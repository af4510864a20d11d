"""Red flags carried by laboratory and measurement results (red_flags.json 'lab' signals): ESR, CRP, white cell
count and DXA T-score, each at and just past its threshold (thresholds.json), in the units laboratories send,
flagged abnormal by the laboratory with no number, within and beyond the results' window, and in a unit that
cannot be compared (a caution, never set aside)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds_service.knowledge.thresholds import default_windows
from cds_service.rules.recommendations.red_flags import assess_red_flags

from ..builders import observation, patient_record

INFLAMMATION = "raised-inflammatory-markers"
OSTEOPOROSIS = "osteoporosis-fracture"
NOW = datetime.now(UTC)
# (LOINC, display, threshold name, the threshold's unit as sent, category, one step towards normal). The side
# that counts is the source's: ESR 20 mm/h or more (Joines 2001), CRP above 10 mg/L and white cells above
# 11 x 10^9/L (the upper reference limits), a T-score of -2.5 or lower (WHO).
LABS = [
    ("4537-7", "Erythrocyte sedimentation rate by Westergren method", "esr_raised_mm_h", "mm/h", INFLAMMATION, -1),
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "crp_raised_mg_l", "mg/L", INFLAMMATION, -0.1),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "wbc_raised_10e9_l", "10*3/uL", INFLAMMATION, -0.1),
    ("80948-3", "DXA Femur-L T-score BMD", "osteoporosis_t_score", "{T-score}", OSTEOPOROSIS, 0.1),
]
INCLUSIVE = {
    "esr_raised_mm_h": True,
    "crp_raised_mg_l": False,
    "wbc_raised_10e9_l": False,
    "osteoporosis_t_score": True,
}


@pytest.fixture(scope="module")
def windows(kb):
    return default_windows(kb.thresholds)


def _flags(kb, windows, *resources):
    assessment = assess_red_flags(patient_record(list(resources)), (), kb, NOW, windows)
    return {f.category_id for f in assessment.flags}, assessment.cautions


def _lab(loinc: str, display: str, value: float | None, unit: str, **kw) -> dict:
    return observation(value=value, unit=unit, loinc=loinc, display=display, **kw)


def _red_flag_side(kb, name: str, step: float) -> float:
    """The first value on the red-flag side: the threshold itself where it counts, else one step past it."""
    limit = getattr(kb.thresholds, name).value
    return limit if INCLUSIVE[name] else limit - step


@pytest.mark.parametrize(("loinc", "display", "name", "unit", "category", "step"), LABS, ids=[x[2] for x in LABS])
def test_a_result_on_the_red_flag_side_of_its_threshold_is_a_red_flag(
    kb, windows, loinc, display, name, unit, category, step
):
    value = _red_flag_side(kb, name, step)
    found, _ = _flags(kb, windows, _lab(loinc, display, value, unit))
    assert found == {category}


@pytest.mark.parametrize(("loinc", "display", "name", "unit", "category", "step"), LABS, ids=[x[2] for x in LABS])
def test_a_result_one_step_on_the_normal_side_is_not(kb, windows, loinc, display, name, unit, category, step):
    value = _red_flag_side(kb, name, step) + step
    found, cautions = _flags(kb, windows, _lab(loinc, display, value, unit))
    assert found == set() and cautions == ()


def test_crp_in_mg_per_dl_is_converted_before_it_is_compared(kb, windows):
    limit = kb.thresholds.crp_raised_mg_l.value  # mg/L
    assert _flags(kb, windows, _lab("1988-5", "CRP", limit / 10 + 0.01, "mg/dL"))[0] == {INFLAMMATION}
    assert _flags(kb, windows, _lab("1988-5", "CRP", limit / 10, "mg/dL"))[0] == set()


def test_a_white_cell_count_per_microlitre_is_converted(kb, windows):
    limit = kb.thresholds.wbc_raised_10e9_l.value
    assert _flags(kb, windows, _lab("26464-8", "WBC", limit * 1000 + 100, "/uL"))[0] == {INFLAMMATION}
    assert _flags(kb, windows, _lab("26464-8", "WBC", limit * 1000, "/uL"))[0] == set()


def test_a_result_the_laboratory_flagged_high_with_no_number_is_a_red_flag(kb, windows):
    result = _lab("30341-2", "ESR", None, "")
    result["interpretation"] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}
    ]
    assert _flags(kb, windows, result)[0] == {INFLAMMATION}


def test_a_result_named_only_in_text_with_a_local_code_is_read(kb, windows):
    limit = kb.thresholds.esr_raised_mm_h.value
    local = observation(value=limit + 20, unit="mm/hr", text="Sed Rate (ESR)")
    assert _flags(kb, windows, local)[0] == {INFLAMMATION}


def test_white_cells_in_urine_are_not_a_blood_count(kb, windows):
    urine = observation(value=50, unit="/[HPF]", text="WBC, urine")
    assert _flags(kb, windows, urine) == (set(), ())


def test_a_result_in_a_unit_that_cannot_be_compared_is_a_caution(kb, windows):
    found, cautions = _flags(kb, windows, _lab("1988-5", "CRP", 3, "mg/mmol"))
    assert found == set() and len(cautions) == 1 and "unit could not be compared" in cautions[0].why


def test_a_raised_result_within_the_window_counts_and_one_past_it_is_a_caution(kb, windows):
    days = kb.thresholds.lab_recent_days.value
    high = kb.thresholds.esr_raised_mm_h.value + 30
    assert _flags(kb, windows, _lab("4537-7", "ESR", high, "mm/h", days_ago=days - 0.01))[0] == {INFLAMMATION}
    found, cautions = _flags(kb, windows, _lab("4537-7", "ESR", high, "mm/h", days_ago=days + 0.01))
    assert found == set() and "days old" in cautions[0].why


def test_an_osteoporotic_t_score_counts_whatever_its_age(kb, windows):
    old = _lab("80946-7", "DXA Hip-L T-score BMD", -3.1, "{T-score}", days_ago=3 * 365)
    assert _flags(kb, windows, old)[0] == {OSTEOPOROSIS}


def test_a_z_score_is_not_a_t_score(kb, windows):
    z = observation(value=-3.0, unit="{Z-score}", text="DXA lumbar spine Z-score")
    assert _flags(kb, windows, z) == (set(), ())


def test_a_cancelled_result_counts_for_nothing(kb, windows):
    result = _lab("4537-7", "ESR", 90, "mm/h") | {"status": "cancelled"}
    assert _flags(kb, windows, result) == (set(), ())


def test_the_window_is_measured_from_the_call_not_the_wall_clock(kb, windows):
    result = _lab("4537-7", "ESR", 90, "mm/h", days_ago=1)
    later = NOW + timedelta(days=kb.thresholds.lab_recent_days.value + 2)
    assessment = assess_red_flags(patient_record([result]), (), kb, later, windows)
    assert assessment.flags == () and assessment.cautions


def test_a_value_under_the_threshold_decides_even_when_the_laboratory_flagged_it_high(kb, windows):
    # High-sensitivity CRP reports flag H above cardiac-risk limits (3 mg/L), far under a raised CRP.
    hs_crp = _lab("30522-7", "hs-CRP", kb.thresholds.crp_raised_mg_l.value - 6, "mg/L")
    hs_crp["interpretation"] = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}
    ]
    assert _flags(kb, windows, hs_crp) == (set(), ())
