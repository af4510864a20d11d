"""NSAID contraindications at their windows and limits (medicine_safety.json), with the exact words the
card shows, and sources that could not be read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_service.rules.recommendations.medicine_safety import SafetyCheck, nsaid_safety, opioid_is_for_back_pain

from ..builders import allergy, condition, instant, medication, observation, patient, patient_record


def _rule(kb, rule_id):
    return next(r for r in kb.medicines.safety.nsaid if r.id == rule_id)


def _check(kb, resources, now, gaps=()):
    return nsaid_safety(patient_record(resources, gaps=gaps), kb, now)


def _egfr(value: float, days_ago: float) -> dict:
    return observation(loinc="48642-3", value=value, unit="mL/min/{1.73_m2}", days_ago=days_ago)


def test_nothing_found_is_safe_to_offer(kb):
    check = _check(kb, [condition(icd="M54.50")], instant(condition()))
    assert check == SafetyCheck((), (), ())
    assert check.safe_to_offer and check.notes(kb.notes) == ()


def test_an_egfr_just_under_the_limit_is_a_contraindication_and_at_the_limit_is_not(kb):
    limit = _rule(kb, "severe-kidney-disease").egfr_below
    low = _egfr(limit - 1, 10)
    check = _check(kb, [low], instant(low))
    assert check.found == (
        f"severe kidney disease (eGFR below 30 or CKD stage 4-5): eGFR {limit - 1:g} mL/min/{{1.73_m2}} on "
        f"{low['effectiveDateTime'][:10]} (Observation/{low['id']})",
    )
    assert check.evidence == (f"Observation/{low['id']}",)
    assert not check.safe_to_offer
    assert check.notes(kb.notes) == (f"**Not offered in one click: {check.found[0]}.**",)
    at_limit = _egfr(limit, 10)
    assert _check(kb, [at_limit], instant(at_limit)).found == ()


def test_the_latest_egfr_in_its_window_decides(kb):
    rule = _rule(kb, "severe-kidney-disease")
    old_low, new_normal = _egfr(20, 100), _egfr(60, 10)
    assert _check(kb, [old_low, new_normal], instant(new_normal)).found == ()
    assert _check(kb, [new_normal, _egfr(20, 5)], instant(new_normal)).found  # the newest is low
    window = rule.egfr_recent_days
    assert _check(kb, [old_low], instant(old_low, days=window)).found
    assert _check(kb, [old_low], instant(old_low, days=window, seconds=1)).found == ()


def test_pregnancy_counts_within_its_window_and_not_after(kb):
    days = _rule(kb, "pregnancy").recent_days
    pregnant = condition(icd="Z33.1", days_ago=10)
    assert _check(kb, [pregnant], instant(pregnant, days=days)).evidence == (f"Condition/{pregnant['id']}",)
    assert _check(kb, [pregnant], instant(pregnant, days=days, seconds=1)).found == ()


def test_a_gestational_age_measured_or_a_positive_pregnancy_answer_counts(kb):
    weeks = observation(loinc="11884-4", value=22, unit="wk", days_ago=3)
    check = _check(kb, [weeks], instant(weeks))
    assert check.found == (f"pregnancy: 11884-4 (http://loinc.org) recorded (Observation/{weeks['id']})",)
    no_value = observation(loinc="11884-4", days_ago=3)
    assert _check(kb, [no_value], instant(no_value)).found == ()
    yes = observation(loinc="11884-4", answer={"snomed": "77386006"}, days_ago=3)
    no = observation(loinc="11884-4", answer={"snomed": "60001007"}, days_ago=3)
    assert _check(kb, [yes], instant(yes)).found
    assert _check(kb, [no], instant(no)).found == ()


def test_a_past_ulcer_counts_within_its_window_whatever_its_status(kb):
    rule = _rule(kb, "gi-bleeding-or-ulcer")
    ulcer = condition(icd="K25.9", status="resolved", days_ago=1)
    assert _check(kb, [ulcer], instant(ulcer, days=rule.recent_days)).found
    assert _check(kb, [ulcer], instant(ulcer, days=rule.recent_days, seconds=1)).found == ()


def test_a_resolved_heart_failure_does_not_count_and_an_active_one_does(kb):
    active = condition(icd="I50.9", days_ago=2000)
    assert _check(kb, [active], instant(active, days=2000)).found
    resolved = condition(icd="I50.9", status="resolved", days_ago=20)
    assert _check(kb, [resolved], instant(resolved)).found == ()


def test_an_open_anticoagulant_order_counts_by_name_and_a_stopped_one_does_not(kb):
    warfarin = medication(status="active", text="Warfarin 5 mg tablet")
    check = _check(kb, [warfarin], instant(warfarin))
    assert check.found == (
        f"anticoagulant or antiplatelet therapy: Warfarin 5 mg tablet (MedicationRequest/{warfarin['id']})",
    )
    stopped = medication(status="stopped", text="Warfarin 5 mg tablet")
    assert _check(kb, [stopped], instant(stopped)).found == ()
    not_a_word = medication(status="active", text="Aspirinex cream")  # a whole word is needed
    assert _check(kb, [not_a_word], instant(not_a_word)).found == ()


def test_an_allergy_counts_while_active_and_not_once_resolved(kb):
    active = allergy(rxnorm="5640", text="Ibuprofen")
    check = _check(kb, [active], instant(condition()))
    assert check.found == (
        f"NSAID or aspirin allergy or intolerance: allergy or intolerance to Ibuprofen (AllergyIntolerance/{active['id']})",
    )
    assert _check(kb, [allergy(text="Ibuprofen", status="resolved")], instant(condition())).found == ()
    assert _check(kb, [allergy(text="Penicillin")], instant(condition())).found == ()


@pytest.mark.parametrize(
    ("gap", "named"),
    [
        ("conditions", "problem list"),
        ("observations", "eGFR and pregnancy observations"),
        ("medicationRequests", "medication orders (anticoagulants, antiplatelets)"),
        ("allergyIntolerances", "allergies and intolerances"),
    ],
)
def test_an_unread_source_is_named_and_blocks_the_one_click_order(kb, gap, named):
    check = _check(kb, [], instant(condition()), gaps=(gap,))
    assert check.not_checked == (f"{named} (could not be read (test))",)
    assert not check.safe_to_offer
    assert check.notes(kb.notes) == (f"**Not offered in one click:** could not check {check.not_checked[0]}.",)


def test_an_unrelated_unread_source_is_not_named(kb):
    assert _check(kb, [], instant(condition()), gaps=("serviceRequests",)).not_checked == ()


@pytest.mark.parametrize(
    ("order", "for_back_pain"),
    [
        (medication(status="draft", rxnorm="1049621"), True),
        (medication(status="draft", rxnorm="1049621", reason={"icd": "M54.50"}), True),
        (medication(status="draft", rxnorm="1049621", reason={"icd": "C50.911"}), False),
        (medication(status="draft", rxnorm="1049621", reason={"icd": "J45.909"}), False),
        (medication(status="draft", text="Buprenorphine/naloxone 8 mg/2 mg film"), False),
        (medication(status="draft", text="Promethazine with codeine syrup"), False),
    ],
)
def test_what_an_opioid_is_for(kb, order, for_back_pain):
    (draft,) = patient_record([], drafts=[order]).draft_orders
    assert opioid_is_for_back_pain(draft, kb) is for_back_pain


def test_entries_that_do_not_count_do_not_stop_the_search(kb):
    resolved_ckd = condition(icd="N18.4", status="resolved", days_ago=30)
    inactive_allergy = allergy(text="Ibuprofen", status="inactive")
    stopped = medication(status="stopped", text="Warfarin 5 mg tablet")
    active = [
        condition(icd="N18.5", days_ago=30),
        allergy(text="Aspirin"),
        medication(status="active", text="Apixaban 5 mg"),
    ]
    check = _check(kb, [resolved_ckd, inactive_allergy, stopped, *active], instant(active[0]))
    assert [f.split(":")[0] for f in check.found] == [
        "NSAID or aspirin allergy or intolerance",
        "severe kidney disease (eGFR below 30 or CKD stage 4-5)",
        "anticoagulant or antiplatelet therapy",
    ]


def test_a_coded_allergy_and_a_coded_anticoagulant_count_without_text(kb):
    coded_allergy = allergy(rxnorm="5640")  # ibuprofen ingredient
    assert _check(kb, [coded_allergy], instant(condition())).evidence == (f"AllergyIntolerance/{coded_allergy['id']}",)
    code = sorted(c for c in kb.vs("anticoagulant_or_antiplatelet").codes if c[0].endswith("rxnorm"))[0][1]
    coded_drug = medication(status="active", rxnorm=code)
    coded_drug["medicationCodeableConcept"].pop("text", None)
    assert _check(kb, [coded_drug], instant(condition())).evidence == (f"MedicationRequest/{coded_drug['id']}",)


def test_a_pregnancy_observation_older_than_the_window_does_not_count(kb):
    days = _rule(kb, "pregnancy").recent_days
    weeks = observation(loinc="11884-4", value=22, unit="wk", days_ago=5)
    assert _check(kb, [weeks], instant(weeks, days=days)).found
    assert _check(kb, [weeks], instant(weeks, days=days, seconds=1)).found == ()


def test_an_older_adult_gets_no_one_click_nsaid_and_the_card_says_why(kb, limits):
    age = int(limits.nsaid_older_adult_age.value)
    older = _check(kb, [patient(age + 0.01), _egfr(80, 30)], datetime.now(UTC))
    assert not older.safe_to_offer
    assert older.found == (
        f"age {age}: an older adult (AGS Beers Criteria 2023: avoid long-term NSAIDs from {age}; "
        "weigh a short course with a gastroprotective agent)",
    )
    assert older.not_checked == ()  # the eGFR is on record


def test_a_day_before_the_age_of_the_criteria_the_nsaid_can_be_offered(kb, limits):
    younger = _check(kb, [patient(limits.nsaid_older_adult_age.value - 0.01)], datetime.now(UTC))
    assert younger.safe_to_offer


def test_an_older_adult_with_no_renal_function_result_is_named_as_not_checked(kb, limits):
    age = limits.nsaid_older_adult_age.value + 15
    check = _check(kb, [patient(age)], datetime.now(UTC))
    assert any(item.startswith("renal function (no eGFR or creatinine") for item in check.not_checked)
    creatinine = observation(loinc="2160-0", value=0.9, unit="mg/dL", days_ago=100)
    assert _check(kb, [patient(age), creatinine], datetime.now(UTC)).not_checked == ()
