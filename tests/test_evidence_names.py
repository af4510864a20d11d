"""Cards name the record entries they are based on in words (issue 30, item 6): the entry's text, its kind and
its date, never its FHIR id."""

from __future__ import annotations

from datetime import UTC, datetime

from cds_service.domain.evidence import name_entries
from cds_service.domain.facts import AnswerFact, Concept, ConditionFact, OrderFact, PatientRecord

ONSET = datetime(2026, 11, 22, tzinfo=UTC)


def _condition(ref: str, text: str, onset: datetime | None = ONSET, recorded: datetime | None = None) -> ConditionFact:
    return ConditionFact(ref, Concept((), text, (text,)), "active", None, onset, recorded)


def _order(ref: str, text: str, *, draft: bool, authored: datetime | None) -> OrderFact:
    return OrderFact(ref, "ServiceRequest", "draft", "order", Concept((), text), (), (), authored, draft)


def test_a_condition_is_named_by_its_text_and_onset_without_the_snomed_semantic_tag():
    record = PatientRecord("p", conditions=(_condition("Condition/lbp-9", "Low back pain (finding)"),))
    name = name_entries(["Condition/lbp-9"], record)["Condition/lbp-9"]
    assert name.full == "Low back pain (condition, onset 2026-11-22)"


def test_a_condition_without_onset_is_dated_by_when_it_was_recorded():
    record = PatientRecord("p", conditions=(_condition("Condition/c", "Sciatica", None, ONSET),))
    assert name_entries(["Condition/c"], record)["Condition/c"].full == "Sciatica (condition, recorded 2026-11-22)"


def test_a_draft_order_and_an_order_on_the_chart_are_told_apart():
    record = PatientRecord(
        "p",
        draft_orders=(_order("ServiceRequest/d", "MRI lumbar spine", draft=True, authored=None),),
        orders=(_order("ServiceRequest/o", "XR lumbar spine", draft=False, authored=ONSET),),
    )
    names = name_entries(["ServiceRequest/d", "ServiceRequest/o"], record)
    assert names["ServiceRequest/d"].full == "MRI lumbar spine (draft order)"
    assert names["ServiceRequest/o"].full == "XR lumbar spine (order, ordered 2026-11-22)"


def test_a_questionnaire_item_is_found_by_its_reference_with_the_item():
    answer = AnswerFact("QuestionnaireResponse/q1#item3", Concept((), "Numbness in the saddle area"), ONSET)
    names = name_entries(["QuestionnaireResponse/q1#item3"], PatientRecord("p", answers=(answer,)))
    assert (
        names["QuestionnaireResponse/q1#item3"].full == "Numbness in the saddle area (questionnaire answer, 2026-11-22)"
    )


def test_an_entry_the_record_does_not_hold_is_named_by_its_kind_never_its_id():
    names = name_entries(["Condition/secret-id-42", "Patient/p-7", "Basic/x"], PatientRecord("p"))
    assert names["Condition/secret-id-42"].full == "a condition"
    assert names["Patient/p-7"].full == "the patient's details"
    assert names["Basic/x"].full == "a record entry"
    assert not any("secret-id-42" in n.full or "p-7" in n.full for n in names.values())


def test_a_code_without_display_or_text_is_named_by_its_code():
    coded = ConditionFact(
        "Condition/c", Concept((("http://hl7.org/fhir/sid/icd-10-cm", "M54.50"),)), None, None, ONSET, None
    )
    record = PatientRecord("p", conditions=(coded,))
    assert name_entries(["Condition/c"], record)["Condition/c"].full == "M54.50 (condition, onset 2026-11-22)"


def test_without_a_record_every_entry_is_named_by_its_kind():
    assert name_entries(["Observation/t"], None)["Observation/t"].full == "a result"
