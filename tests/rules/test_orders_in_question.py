"""Which orders a hook asks about, and unreadable drafts named instead of dropped."""

from __future__ import annotations

from cds_service.domain.findings import Finding
from cds_service.rules.engine import ORDER_NOT_CHECKED_RULE, is_selected, orders_in_question, unreadable_orders

from ..builders import lumbar_mri, medication, patient_record, service_order


def _drafts():
    broken = service_order(id="broken", text="MRI")
    broken["authoredOn"] = "yesterday"
    return [lumbar_mri(), service_order(id="xray", cpt="72100"), broken]


def test_is_selected_by_reference_or_bare_id_only():
    assert is_selected("ServiceRequest/a", ["ServiceRequest/a"])
    assert is_selected("ServiceRequest/a", ["a"])
    assert not is_selected("ServiceRequest/a", ["ServiceRequest/b", "b"])
    assert not is_selected("ServiceRequest/a/b", ["b"])  # only the type is taken off, once
    assert is_selected("ServiceRequest/a/b", ["a/b"])
    assert not is_selected("ServiceRequest/a", ["ServiceRequest"])


def test_order_select_asks_about_the_selected_drafts_only():
    record = patient_record([], drafts=_drafts())
    assert [o.ref for o in orders_in_question("order-select", record, ["ServiceRequest/xray"])] == [
        "ServiceRequest/xray"
    ]


def test_order_sign_asks_about_every_draft():
    record = patient_record([], drafts=_drafts())
    assert [o.ref for o in orders_in_question("order-sign", record, [])] == [
        "ServiceRequest/draft-mri",
        "ServiceRequest/xray",
    ]


def test_patient_view_asks_about_open_orders_on_the_chart():
    active = medication(status="active", id="open-med", rxnorm="197807")
    stopped = medication(status="stopped", id="old-med", rxnorm="197807")
    record = patient_record([active, stopped], drafts=_drafts())
    assert [o.ref for o in orders_in_question("patient-view", record, [])] == ["MedicationRequest/open-med"]


def test_an_unreadable_draft_is_named_with_its_problems():
    record = patient_record([], drafts=_drafts())
    (finding,) = unreadable_orders("order-sign", record, [])
    assert finding == Finding(
        rule=ORDER_NOT_CHECKED_RULE,
        indicator="info",
        evidence=("ServiceRequest/broken",),
        facts={"unreadable_order": "MRI", "problems": finding.facts["problems"]},
    )
    assert "authoredOn" in finding.facts["problems"]


def test_unreadable_drafts_on_order_select_only_when_selected_and_never_on_patient_view():
    record = patient_record([], drafts=_drafts())
    assert unreadable_orders("order-select", record, ["ServiceRequest/xray"]) == []
    assert len(unreadable_orders("order-select", record, ["broken"])) == 1
    assert unreadable_orders("patient-view", record, []) == []
