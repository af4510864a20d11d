"""Red flags at their thresholds: fever_celsius and fever_days, long_term_steroid_days over
steroid_lookback_days, and each signal's own recency window from red_flags.json; what counts as critical."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.domain.facts import Quantity
from cds_service.knowledge.model import knowledge
from cds_service.knowledge.thresholds import default_windows
from cds_service.rules.recommendations.red_flags import assess_red_flags, celsius

from ..builders import condition, instant, medication, observation, patient_record, temperature


@pytest.fixture(scope="module")
def windows(kb):
    return default_windows(kb.thresholds)


def _assess(kb, windows, resources, now):
    return assess_red_flags(patient_record(resources), (), kb, now, windows)


def _categories(assessment) -> set[str]:
    return {f.category_id for f in assessment.flags}


def test_a_temperature_at_the_fever_threshold_is_a_red_flag(kb, limits, windows):
    reading = temperature(limits.fever_celsius.value, "Cel")
    assert _categories(_assess(kb, windows, [reading], instant(reading))) == {"spinal-infection"}


def test_a_temperature_just_under_the_fever_threshold_is_not(kb, limits, windows):
    reading = temperature(limits.fever_celsius.value - 0.1, "Cel")
    assert _assess(kb, windows, [reading], instant(reading)).flags == ()


def test_a_fever_exactly_fever_days_old_counts_and_one_second_older_does_not(kb, limits, windows):
    reading = temperature(limits.fever_celsius.value + 1, "Cel")
    at_edge = instant(reading, days=limits.fever_days.value)
    assert _categories(_assess(kb, windows, [reading], at_edge)) == {"spinal-infection"}
    assert _assess(kb, windows, [reading], at_edge + timedelta(seconds=1)).flags == ()


@pytest.mark.parametrize(("value", "unit", "expected"), [(100.4, "[degF]", 38.0), (311.15, "K", 38.0), (38, "Cel", 38)])
def test_temperatures_are_read_in_celsius(value, unit, expected):
    assert celsius(Quantity(value, unit)) == pytest.approx(expected)


def test_a_temperature_in_an_unknown_unit_is_not_guessed():
    assert celsius(Quantity(38, "mV")) is None


def test_a_coded_fever_follows_the_fever_window(kb, limits, windows):
    fever = condition(icd="R50.9", days_ago=1)
    assert _categories(_assess(kb, windows, [fever], instant(fever, days=limits.fever_days.value))) == {
        "spinal-infection"
    }
    assert _assess(kb, windows, [fever], instant(fever, days=limits.fever_days.value, seconds=1)).flags == ()


def _prednisone(days_ago: float, supply_days: float) -> dict:
    return medication(status="completed", days_ago=days_ago, supply_days=supply_days, text="prednisone 10 mg tablet")


def test_steroid_courses_adding_up_to_the_threshold_are_a_red_flag(kb, limits, windows):
    half = limits.long_term_steroid_days.value / 2
    orders = [_prednisone(200, half), _prednisone(100, half)]
    assert _categories(_assess(kb, windows, orders, instant(orders[1]))) == {"prolonged-corticosteroids"}


def test_steroid_courses_one_day_short_are_not(kb, limits, windows):
    half = limits.long_term_steroid_days.value / 2
    orders = [_prednisone(200, half), _prednisone(100, half - 1)]
    assert _assess(kb, windows, orders, instant(orders[1])).flags == ()


def test_a_course_older_than_the_lookback_does_not_count(kb, limits, windows):
    course = _prednisone(400, limits.long_term_steroid_days.value)
    lookback = limits.steroid_lookback_days.value
    assert _categories(_assess(kb, windows, [course], instant(course, days=lookback))) == {"prolonged-corticosteroids"}
    assert _assess(kb, windows, [course], instant(course, days=lookback, seconds=1)).flags == ()


def test_an_inhaled_steroid_is_not_a_systemic_course(kb, limits, windows):
    inhaler = medication(days_ago=10, supply_days=400, text="fluticasone inhaler")
    assert _assess(kb, windows, [inhaler], instant(inhaler)).flags == ()


SHORTHAND = {"http://hl7.org/fhir/sid/icd-10-cm": "icd", "http://snomed.info/sct": "snomed"}


def _windowed_signals():
    """Every signal with a window of its own in red_flags.json, with one of its codes."""
    for category in knowledge().red_flags.categories:
        for signal in category.signals:
            if isinstance(signal.recent_days, int) and signal.valueset is not None:
                system, code = sorted(c for c in signal.valueset.codes if c[0] in SHORTHAND)[0]
                yield pytest.param(category.id, signal, {SHORTHAND[system]: code}, id=f"{category.id}:{signal.key}")


@pytest.mark.parametrize(("category_id", "signal", "code"), list(_windowed_signals()))
def test_each_signal_counts_up_to_its_window_and_not_after(kb, windows, category_id, signal, code):
    entry = condition(status="resolved" if signal.any_status else "active", days_ago=1, **code)
    at_edge = instant(entry, days=signal.recent_days)
    assert category_id in _categories(_assess(kb, windows, [entry], at_edge))
    older = _assess(kb, windows, [entry], at_edge + timedelta(seconds=1))
    if signal.window_for_active or entry["clinicalStatus"]["coding"][0]["code"] != "active":
        assert category_id not in _categories(older)
        assert bool(older.cautions) == (signal.when_older == "caution")


def test_cauda_equina_signs_are_critical_only_while_active(kb, windows):
    active = condition(icd="R33.9", days_ago=1)
    (flag,) = _assess(kb, windows, [active], instant(active)).flags
    assert flag.critical and flag.indicator == "critical"
    assert _assess(kb, windows, [condition(icd="R33.9", status="resolved")], instant(active)).flags == ()
    history = condition(icd="G83.4", status="resolved", days_ago=1)  # a past cauda equina syndrome
    (flag,) = _assess(kb, windows, [history], instant(history)).flags
    assert not flag.critical and flag.indicator == "warning"


def test_an_undated_sign_counts_as_recent(kb, windows):
    undated = condition(icd="R33.9", days_ago=None)
    assert _categories(_assess(kb, windows, [undated], instant(condition(days_ago=1)))) == {"cauda-equina"}


def test_a_negative_observation_is_not_a_red_flag(kb, windows):
    absent = observation(snomed="449813001", answer={"snomed": "373067005", "display": "No"}, days_ago=1)
    present = observation(snomed="449813001", answer={"snomed": "373066001", "display": "Yes"}, days_ago=1)
    assert _assess(kb, windows, [absent], instant(absent)).flags == ()
    assert _categories(_assess(kb, windows, [present], instant(present))) == {"cauda-equina"}  # answered yes


def test_negated_text_is_not_a_red_flag_and_plain_text_is(kb, windows):
    negated = condition(text="no saddle anaesthesia", days_ago=1)
    plain = condition(text="saddle anaesthesia", days_ago=1)
    assert _assess(kb, windows, [negated], instant(negated)).flags == ()
    assert _categories(_assess(kb, windows, [plain], instant(plain))) == {"cauda-equina"}


def test_orders_that_do_not_count_are_skipped_and_the_rest_still_summed(kb, limits, windows):
    half = limits.long_term_steroid_days.value / 2
    cancelled = medication(status="cancelled", days_ago=250, supply_days=400, text="prednisone 10 mg tablet")
    other = medication(status="completed", days_ago=240, supply_days=400, text="lisinopril 10 mg tablet")
    other["medicationCodeableConcept"] = {"text": "prednisolone eye drops"}  # a steroid name, not systemic
    orders = [cancelled, other, _prednisone(200, half), _prednisone(100, half)]
    assert _categories(_assess(kb, windows, orders, instant(orders[-1]))) == {"prolonged-corticosteroids"}


def test_an_open_order_counts_the_days_it_has_run(kb, limits, windows):
    running = medication(status="active", days_ago=10, text="prednisone 5 mg tablet")
    days = limits.long_term_steroid_days.value
    assert _categories(_assess(kb, windows, [running], instant(running, days=days))) == {"prolonged-corticosteroids"}
    assert _assess(kb, windows, [running], instant(running, days=days - 1)).flags == ()


def test_an_order_without_a_supply_counts_no_days(kb, windows):
    no_supply = [medication(status="completed", days_ago=d, text="prednisone 5 mg tablet") for d in range(10, 200, 2)]
    assert _assess(kb, windows, no_supply, instant(no_supply[0])).flags == ()


def test_an_old_sign_is_a_caution_that_says_what_and_why(kb, windows):
    from cds_service.domain.findings import Caution

    old = condition(icd="M21.372", text="Foot drop, left", days_ago=400)
    assessment = _assess(kb, windows, [old], instant(old, days=400))
    assert assessment.flags == ()
    (caution,) = assessment.cautions
    signal = next(s for c in kb.red_flags.categories if c.id == "neurologic-deficit" for s in c.signals)
    assert caution == Caution(
        signal.label,
        f"Foot drop, left (active, since {old['onsetDateTime'][:10]})",
        f"Condition/{old['id']}",
        f"began more than {signal.recent_days:g} days ago, so not counted as a new red flag; ask whether it is new or worse",
    )


def test_a_non_specific_symptom_is_a_caution_with_its_reason(kb, windows):
    vague = condition(icd="R20.2", text="Paresthesia of skin", days_ago=3)
    (caution,) = _assess(kb, windows, [vague], instant(vague)).cautions
    signal = kb.red_flags.cautions[0]
    assert (caution.label, caution.evidence, caution.why) == (signal.label, f"Condition/{vague['id']}", signal.why)
    assert caution.description.startswith("Paresthesia of skin (active, since ")
