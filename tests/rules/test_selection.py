"""The relevance filter in front of validation: a resource a rule could act on is always kept (a dropped one
could be the red flag); one no rule reads is dropped (large records stay fast)."""

from __future__ import annotations

import pytest

from cds_service.domain.clock import wall_clock
from cds_service.fhir.selection import selector_for

from ..builders import allergy, condition, medication, observation, service_order, temperature


@pytest.fixture(scope="module")
def relevant(kb):
    return selector_for(kb, int(kb.thresholds.fever_days.value), wall_clock).is_relevant


@pytest.mark.parametrize(
    "resource",
    [
        condition(icd="G83.4"),
        condition(icd="G834"),  # undotted
        condition(icd_oid="G83.4"),  # ICD-10-CM named by its OID
        condition(icd="M54.50"),
        condition(text="possible cauda equina"),
        condition(snomed="999999999", text="Discitis L4/5"),  # unknown code, telling text
        temperature(38.5, "Cel", days_ago=1),
        temperature(38.5, "Cel", loinc="8331-1", days_ago=1, panel=True),
        observation(loinc="72514-3", value=6, unit="{score}"),
        service_order(text="Strict bed rest for 3 days"),
        service_order(cpt="72148"),
        medication(text="prednisone 20 mg"),
        medication(text="Naproxen 500 mg"),
        medication(rxnorm="197807"),
        allergy(text="anything at all"),
    ],
    ids=lambda r: f"{r['resourceType']}:{str(r.get('code') or r.get('medicationCodeableConcept'))[:60]}",
)
def test_kept(relevant, resource):
    assert relevant(resource)


@pytest.mark.parametrize(
    "resource",
    [
        condition(icd="J45.909"),
        condition(text="Seasonal allergies"),
        service_order(text="Complete blood count"),
        medication(text="Lisinopril 10 mg"),
        medication(rxnorm="314076"),  # lisinopril 10 MG Oral Tablet
        observation(loinc="8867-4", value=70, unit="/min"),  # heart rate
        {"resourceType": "Procedure", "id": "p1", "status": "completed", "subject": {"reference": "Patient/x"}},
    ],
    ids=lambda r: f"{r['resourceType']}:{str(r.get('code') or r.get('medicationCodeableConcept'))[:60]}",
)
def test_dropped(relevant, resource):
    assert not relevant(resource)


def test_a_temperature_inside_the_fever_window_is_kept_and_older_is_dropped(relevant, limits):
    window = limits.fever_days.value
    assert relevant(temperature(39, "Cel", days_ago=window - 0.01))
    assert not relevant(temperature(39, "Cel", days_ago=window + 0.01))
    assert not relevant(temperature(39, "Cel", loinc="8331-1", days_ago=window + 0.01, panel=True))


def test_an_undated_temperature_is_kept(relevant):
    reading = temperature(39, "Cel")
    del reading["effectiveDateTime"]
    assert relevant(reading)


def test_a_medication_named_only_through_a_reference_is_kept(relevant):
    order = medication(text="x")
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "#med1"}
    assert relevant(order)


def test_codings_that_are_not_strings_are_skipped_not_fatal(relevant):
    odd = condition(icd="G83.4")
    odd["code"]["coding"].insert(0, {"system": 5, "code": None})
    odd["code"]["coding"].insert(0, "not a coding")
    assert relevant(odd)
    assert not relevant({"resourceType": "Condition", "code": "G83.4"})


def test_a_bed_rest_device_request_is_kept_by_its_text(relevant):
    device = service_order("DeviceRequest", id="d1", text="Hospital bed for strict bed rest")
    assert relevant(device)
    device["codeCodeableConcept"] = {"text": "Walker"}
    assert not relevant(device)


def test_a_temperature_dated_only_by_issued_follows_the_fever_window(relevant, limits):
    old = temperature(39, "Cel", days_ago=limits.fever_days.value + 1)
    old["issued"] = old.pop("effectiveDateTime")
    assert not relevant(old)


def test_a_remembered_text_verdict_is_the_verdict_for_that_text_only(kb):
    selector = selector_for(kb, int(kb.thresholds.fever_days.value), wall_clock)
    bed_rest, other = service_order(text="Strict bed rest for 3 days"), service_order(text="Physiotherapy referral")
    for _ in range(2):  # the second round answers from what the first remembered
        assert selector.is_relevant(bed_rest) and not selector.is_relevant(other)
        assert selector.is_relevant(medication(text="prednisone 20 mg"))
        assert not selector.is_relevant(medication(text="amoxicillin 500 mg"))
    assert selector.names_an_order.answers == {"Strict bed rest for 3 days": True, "Physiotherapy referral": False}


def test_the_remembered_text_verdicts_stay_bounded(kb, monkeypatch):
    selector = selector_for(kb, int(kb.thresholds.fever_days.value), wall_clock)
    monkeypatch.setattr(selector.names_a_medicine, "limit", 3)
    for n in range(5):
        selector.is_relevant(medication(text=f"vitamin {n}"))
    assert len(selector.names_a_medicine.answers) == 3
    assert selector.is_relevant(medication(text="Naproxen 500 mg"))  # still read correctly once full


@pytest.mark.parametrize(
    "text", ["MRI L-spine w/o contrast", "LS spine XR 2 views", "Lumbar corset", "Lumbar ESI L5-S1", "TENS unit"]
)
def test_an_order_named_only_in_words_is_read(relevant, text):
    assert relevant(service_order(text=text)) and relevant(service_order("DeviceRequest", text=text))
