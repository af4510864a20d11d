"""Orders however EHRs write them: lumbar imaging and the low-value interventions recognised by code in any
system the value sets hold (CPT, LOINC also under its OID, SNOMED CT, HCPCS) and, where the code is local or
missing, by their words with the abbreviations clinicians type (orders.json 'lumbar_imaging', low_value.json
'text'). Guided procedures are not imaging studies, and a knee brace is not a lumbar support."""

from __future__ import annotations

import pytest

from cds_service.rules.recommendations.low_value import intervention_for
from cds_service.rules.recommendations.orders import is_lumbar_imaging

from ..builders import patient_record, service_order

LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.2.696580"  # an Epic-style local procedure code system


def _order(kind: str = "ServiceRequest", **code):
    (order,) = patient_record([], drafts=[service_order(kind, **code)]).draft_orders
    return order


def _local(text: str, kind: str = "ServiceRequest"):
    resource = service_order(kind, text=text)
    element = "code" if kind == "ServiceRequest" else "codeCodeableConcept"
    resource[element]["coding"] = [{"system": LOCAL, "code": "IMG1234", "display": text}]
    (order,) = patient_record([], drafts=[resource]).draft_orders
    return order


@pytest.mark.parametrize(
    "text",
    [
        "MRI L-spine w/o contrast",
        "LS spine XR 2 views",
        "XR lumbosacral spine",
        "CT lumbar spine without contrast",
        "MR LUMBAR SPINE WO IV CONTRAST",
        "X-ray L/S spine AP and lateral",
        "Lumbar spine radiograph",
        "MRI L4-L5",
        "MRI L spine",
        "XR sacrum and coccyx",
    ],
)
def test_lumbar_imaging_written_in_words_is_lumbar_imaging(kb, text):
    assert is_lumbar_imaging(_local(text), kb)


@pytest.mark.parametrize(
    "text",
    [
        "CT guided lumbar epidural injection",
        "Fluoroscopy guided lumbar puncture",
        "MRI cervical spine",
        "XR knee 3 views",
        "Lumbar spine physiotherapy",
        "CT-guided biopsy of L3 lesion",
    ],
)
def test_other_orders_in_words_are_not_lumbar_imaging(kb, text):
    assert not is_lumbar_imaging(_local(text), kb)


def test_lumbar_imaging_by_snomed_ct_and_by_loinc_under_its_oid(kb):
    assert is_lumbar_imaging(_order(snomed="394451000119106"), kb)  # MRI of lumbar spine without contrast
    resource = service_order(text="")
    resource["code"] = {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": "30679-5"}]}
    (order,) = patient_record([], drafts=[resource]).draft_orders
    assert is_lumbar_imaging(order, kb)


@pytest.mark.parametrize(
    ("text", "intervention"),
    [
        ("Lumbar corset", "lumbar-support"),
        ("Back brace, lumbar", "lumbar-support"),
        ("Lumbar support belt", "lumbar-support"),
        ("LSO custom fitted", "lumbar-support"),
        ("Lumbar ESI L5-S1", "epidural-injection"),
        ("TENS unit for home use", "tens"),
        ("Medial branch block L4-L5", "facet-injection"),
        ("Radiofrequency ablation lumbar facets", "radiofrequency-ablation"),
    ],
)
def test_a_low_value_intervention_written_in_words_is_recognised(kb, text, intervention):
    found = intervention_for(
        _local(text, "DeviceRequest" if intervention == "lumbar-support" else "ServiceRequest"), kb
    )
    assert found is not None and found.id == intervention


@pytest.mark.parametrize("text", ["Knee brace", "Wrist support", "Ankle support belt", "Physiotherapy referral"])
def test_supports_for_other_joints_are_not_lumbar_supports(kb, text):
    assert intervention_for(_local(text, "DeviceRequest"), kb) is None
