"""Red flags recorded only as a medicine or a procedure: immunosuppressants, biologics and cancer treatment
ordered or reported taken (MedicationRequest, MedicationStatement, the drafts being signed) within
medicine_recent_days; years of steroid use in one statement, or a coded long-term use resolved lately;
spinal surgery, transplant and chemotherapy as Procedure resources."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_service.knowledge.thresholds import default_windows
from cds_service.rules.recommendations.red_flags import assess_red_flags

from ..builders import condition, medication, patient_record, procedure, questionnaire_response, statement

NOW = datetime.now(UTC)
IMMUNO = "transplant-immunosuppression"


@pytest.fixture(scope="module")
def windows(kb):
    return default_windows(kb.thresholds)


def _categories(kb, windows, resources, drafts=()):
    record = patient_record(list(resources), drafts=list(drafts))
    orders = record.draft_orders
    return {f.category_id for f in assess_red_flags(record, orders, kb, NOW, windows).flags}


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ({"rxnorm": "105586", "display": "methotrexate 2.5 MG Oral Tablet"}, IMMUNO),
        ({"rxnorm": "197388", "display": "Azathioprine 50 MG Oral Tablet"}, IMMUNO),
        ({"text": "Humira 40 mg/0.4 mL pen (adalimumab)"}, IMMUNO),
        ({"text": "tacrolimus 1 mg capsule"}, IMMUNO),
        ({"text": "capecitabine 500 mg tablet"}, "malignancy"),
        ({"text": "anastrozole 1 mg tablet"}, "malignancy"),
    ],
    ids=["methotrexate", "azathioprine", "adalimumab-brand", "tacrolimus-text", "capecitabine", "anastrozole"],
)
def test_a_medicine_that_implies_the_red_flag_is_one_when_ordered_or_reported(kb, windows, code, category):
    assert category in _categories(kb, windows, [medication(status="active", days_ago=40, **code)])
    assert category in _categories(kb, windows, [statement(started_days_ago=400, **code)])


def test_a_medicine_being_signed_counts_as_well(kb, windows):
    draft = medication(status="draft", days_ago=0, text="methotrexate 2.5 mg weekly", id="draft-mtx")
    assert IMMUNO in _categories(kb, windows, [], drafts=[draft])


def test_hydroxychloroquine_is_not_an_immunosuppressant_here(kb, windows):
    assert _categories(kb, windows, [statement(text="hydroxychloroquine 200 mg tablet")]) == set()


def test_a_medicine_last_taken_within_the_window_counts_and_one_past_it_does_not(kb, windows):
    days = kb.thresholds.medicine_recent_days.value
    inside = statement(status="completed", started_days_ago=days + 200, ended_days_ago=days - 1, text="rituximab")
    outside = statement(status="completed", started_days_ago=days + 200, ended_days_ago=days + 1, text="rituximab")
    assert IMMUNO in _categories(kb, windows, [inside])
    assert _categories(kb, windows, [outside]) == set()


def test_a_completed_order_counts_until_its_supply_ends_plus_the_window(kb, windows):
    days = kb.thresholds.medicine_recent_days.value
    recent = medication(status="completed", days_ago=days + 20, supply_days=30, text="azathioprine 50 mg")
    old = medication(status="completed", days_ago=days + 40, supply_days=30, text="azathioprine 50 mg")
    assert IMMUNO in _categories(kb, windows, [recent])
    assert _categories(kb, windows, [old]) == set()


def test_a_medicine_not_taken_or_cancelled_counts_for_nothing(kb, windows):
    assert _categories(kb, windows, [statement(status="not-taken", text="methotrexate")]) == set()
    assert _categories(kb, windows, [medication(status="cancelled", text="methotrexate")]) == set()


def test_years_of_prednisone_in_one_statement_are_a_prolonged_steroid_course(kb, windows):
    years = statement(started_days_ago=4 * 365, rxnorm="312617", display="predniSONE 5 MG Oral Tablet")
    assert "prolonged-corticosteroids" in _categories(kb, windows, [years])


def test_only_the_part_of_a_course_inside_the_look_back_counts(kb, windows):
    lookback = kb.thresholds.steroid_lookback_days.value
    threshold = kb.thresholds.long_term_steroid_days.value

    # A course that began long before the look-back counts only from its start: the threshold (and a moment
    # more) inside the look-back counts, a day less does not.
    def course(inside_days: float) -> dict:
        ended = lookback - inside_days
        return statement(status="completed", started_days_ago=lookback + 200, ended_days_ago=ended, text="prednisone")

    enough, short = course(threshold + 0.01), course(threshold - 1)
    assert "prolonged-corticosteroids" in _categories(kb, windows, [enough])
    assert _categories(kb, windows, [short]) == set()


def test_coded_long_term_steroid_use_resolved_lately_still_counts_and_long_ago_does_not(kb, windows):
    lately = condition(icd="Z79.52", status="resolved", days_ago=6 * 365)
    lately["abatementDateTime"] = _days_ago(75)
    long_ago = condition(icd="Z79.52", status="resolved", days_ago=12 * 365)
    long_ago["abatementDateTime"] = _days_ago(6 * 365)
    assert "prolonged-corticosteroids" in _categories(kb, windows, [lately])
    assert _categories(kb, windows, [long_ago]) == set()


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ({"cpt": "22612", "display": "Arthrodesis, posterior technique, lumbar"}, "lumbar-surgery"),
        ({"text": "L4-5 microdiscectomy"}, "lumbar-surgery"),
        ({"cpt": "96413", "display": "Chemotherapy administration, IV infusion"}, "malignancy"),
        ({"cpt": "50360", "display": "Renal allotransplantation, implantation of graft"}, IMMUNO),
    ],
    ids=["lumbar-fusion", "microdiscectomy-text", "chemotherapy", "kidney-transplant"],
)
def test_a_red_flag_recorded_only_as_a_procedure_is_found(kb, windows, code, category):
    assert category in _categories(kb, windows, [procedure(days_ago=60, **code)])


def test_a_procedure_not_done_counts_for_nothing(kb, windows):
    assert _categories(kb, windows, [procedure(status="not-done", cpt="22612")]) == set()


def test_a_knee_arthroscopy_is_not_spinal_surgery(kb, windows):
    assert _categories(kb, windows, [procedure(cpt="29881", display="Arthroscopy, knee, with meniscectomy")]) == set()


def _days_ago(days: float) -> str:
    from ..builders import when

    return when(days)


@pytest.mark.parametrize(
    ("rxnorm", "category"),
    [("1431980", IMMUNO), ("200328", "malignancy")],
    ids=["tacrolimus-er-vsac-immunosuppressive", "capecitabine-vsac-chemotherapy"],
)
def test_a_medicine_sent_as_a_bare_rxnorm_code_is_recognised_by_its_vsac_value_set(kb, windows, rxnorm, category):
    bare = medication(status="active", days_ago=10, rxnorm=rxnorm)
    assert "display" not in bare["medicationCodeableConcept"]["coding"][0]
    assert category in _categories(kb, windows, [bare])


def test_methotrexate_counts_as_immunosuppression_not_as_cancer_treatment(kb, windows):
    found = _categories(
        kb, windows, [medication(status="active", rxnorm="105585", display="methotrexate 2.5 MG Oral Tablet")]
    )
    assert found == {IMMUNO}


def test_a_prednisone_course_is_left_to_the_steroid_rule_not_called_immunosuppression(kb, windows):
    short = medication(
        status="completed", days_ago=20, supply_days=5, rxnorm="312617", display="predniSONE 5 MG Oral Tablet"
    )
    assert _categories(kb, windows, [short]) == set()


def test_chemotherapy_recorded_as_a_snomed_procedure_is_a_malignancy_red_flag(kb, windows):
    regimen = procedure(snomed="1172516002", display="High-dose chemotherapy with stem cell transplant (procedure)")
    assert "malignancy" in _categories(kb, windows, [regimen])


def test_every_question_answered_yes_in_one_questionnaire_counts(kb, windows):
    intake = questionnaire_response(
        [
            ("Have you ever had cancer?", {"valueBoolean": True}),
            ("Have you ever injected drugs?", {"valueBoolean": True}),
            ("Do you have HIV?", {"valueBoolean": False}),
        ],
        days_ago=1,
    )
    assert _categories(kb, windows, [intake]) == {"malignancy", "iv-drug-use"}
