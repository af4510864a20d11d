"""What a red flag says on the card: the entry's name (its text, else the value set's display and the code),
its status and date, and how it was recognised; each field of the flag exactly."""

from __future__ import annotations

import pytest

from cds_service.domain.facts import Quantity
from cds_service.domain.findings import RedFlag
from cds_service.knowledge.thresholds import default_windows
from cds_service.rules.recommendations.red_flags import assess_red_flags, celsius

from ..builders import condition, instant, medication, observation, patient_record, temperature


@pytest.fixture(scope="module")
def windows(kb):
    return default_windows(kb.thresholds)


def _category(kb, category_id):
    return next(c for c in kb.red_flags.categories if c.id == category_id)


def _flags(kb, windows, resources, orders=()):
    record = patient_record(resources, drafts=list(orders))
    return assess_red_flags(record, record.draft_orders, kb, instant(condition(days_ago=0)), windows).flags


def test_a_coded_entry_without_text_is_named_from_the_value_set(kb, windows):
    entry = condition(icd="R33.9", days_ago=3)
    (flag,) = _flags(kb, windows, [entry])
    category = _category(kb, "cauda-equina")
    since = entry["onsetDateTime"][:10]
    assert flag == RedFlag(
        "cauda-equina",
        category.label,
        "critical",
        category.advice,
        flag.signal,
        f"Condition/{entry['id']}",
        f"Retention of urine, unspecified (R33.9) (active, since {since})",
        summary=category.summary,
        critical=True,
        specific=False,
    )
    assert flag.signal.startswith("urinary retention")


def test_a_text_only_entry_says_it_was_recognised_from_its_text(kb, windows):
    entry = condition(text="Saddle anaesthesia", days_ago=None, status=None)
    (flag,) = _flags(kb, windows, [entry])
    assert flag.description == ("Saddle anaesthesia (status not recorded, date not recorded; recognised from its text)")
    assert flag.specific and flag.critical


def test_an_unconfirmed_entry_says_so(kb, windows):
    entry = condition(icd="C79.51", text="Bone metastases", verification="provisional", days_ago=3)
    (flag,) = _flags(kb, windows, [entry])
    assert flag.description == f"Bone metastases (active, provisional, since {entry['onsetDateTime'][:10]})"


def test_a_confirmed_entry_does_not_name_its_verification(kb, windows):
    entry = condition(icd="C79.51", text="Bone metastases", verification="confirmed", days_ago=3)
    (flag,) = _flags(kb, windows, [entry])
    assert flag.description == f"Bone metastases (active, since {entry['onsetDateTime'][:10]})"


def test_a_reason_on_the_order_is_a_red_flag_named_as_such(kb, windows):
    from ..builders import lumbar_mri

    (flag,) = _flags(kb, windows, [], orders=[lumbar_mri(reason={"text": "foot drop"})])
    assert flag.category_id == "neurologic-deficit"
    assert flag.evidence == "ServiceRequest/draft-mri"
    assert flag.description.startswith("foot drop (reason given on the order, since ")
    assert flag.description.endswith("; recognised from its text)")


def test_a_positive_observation_is_named_as_an_observation(kb, windows):
    sign = observation(snomed="449813001", display="Saddle anaesthesia", days_ago=2)
    (flag,) = _flags(kb, windows, [sign])
    assert flag.description == f"Saddle anaesthesia (observation, since {sign['effectiveDateTime'][:10]})"


def test_a_cancelled_observation_is_not_counted(kb, windows):
    sign = observation(snomed="449813001", display="Saddle anaesthesia", days_ago=2)
    sign["status"] = "cancelled"
    assert _flags(kb, windows, [sign]) == ()


def test_an_observation_answered_false_is_not_counted(kb, windows):
    sign = observation(snomed="449813001", days_ago=2)
    sign["valueBoolean"] = False
    assert _flags(kb, windows, [sign]) == ()


def test_a_fever_reading_is_named_with_its_value_in_celsius_and_date(kb, windows, limits):
    reading = temperature(101.3, "[degF]", days_ago=1)
    (flag,) = _flags(kb, windows, [reading])
    category = _category(kb, "spinal-infection")
    assert flag == RedFlag(
        "spinal-infection",
        category.label,
        category.indicator,
        category.advice,
        "recent body temperature at or above the fever threshold",
        f"Observation/{reading['id']}",
        f"{kb.vs('body_temperature').displays[('http://loinc.org', '8310-5')]} 38.5 °C on "
        f"{reading['effectiveDateTime'][:10]}",
        summary=category.summary,
    )


def test_a_fever_in_a_vital_signs_panel_counts(kb, windows):
    panel = temperature(38.6, "Cel", loinc="8331-1", panel=True)
    (flag,) = _flags(kb, windows, [panel])
    assert flag.evidence == f"Observation/{panel['id']}"


def test_a_steroid_course_is_described_with_its_orders_and_days(kb, windows, limits):
    days = limits.long_term_steroid_days.value
    course = medication(status="completed", days_ago=120, supply_days=days, text="prednisone 10 mg tablet")
    (flag,) = _flags(kb, windows, [course])
    assert flag.category_id == "prolonged-corticosteroids" and not flag.critical
    assert flag.description.startswith(f"prednisone 10 mg tablet: 1 order(s) since {course['authoredOn'][:10]}")


@pytest.mark.parametrize(
    ("unit", "value", "expected"),
    [
        ("Cel", 38.0, 38.0),
        ("C", 38.0, 38.0),
        ("°C", 38.0, 38.0),
        ("celsius", 38.0, 38.0),
        ("degC", 38.0, 38.0),
        ("[degF]", 100.4, 38.0),
        ("°F", 100.4, 38.0),
        ("F", 100.4, 38.0),
        ("fahrenheit", 100.4, 38.0),
        ("K", 311.15, 38.0),
        ("kelvin", 311.15, 38.0),
        (" Cel ", 38.0, 38.0),
    ],
)
def test_celsius_reads_every_spelling(unit, value, expected):
    assert celsius(Quantity(value, unit)) == pytest.approx(expected)


@pytest.mark.parametrize("unit", ["mV", "", "cm", "kg"])
def test_celsius_does_not_guess(unit):
    assert celsius(Quantity(38.0, unit)) is None
