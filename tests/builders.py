"""A test data builder: a patient record as FHIR R4 JSON in a few lines, coded the way real EHRs code.

    record(age=40, conditions=[condition(icd="Z85.3", status="resolved", days_ago=3000)])

Dates are relative to now, so a scenario means the same thing on any day it runs. Codes are given by
system shorthand (icd, snomed, loinc, rxnorm) or as text only; an ICD-10-CM code is sent exactly as
written (undotted codes are a real EHR habit the service must read).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cds_service.domain.clock import wall_clock

SYSTEMS = {
    "icd": "http://hl7.org/fhir/sid/icd-10-cm",
    "snomed": "http://snomed.info/sct",
    "loinc": "http://loinc.org",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "icd_oid": "urn:oid:2.16.840.1.113883.6.90",  # ICD-10-CM named by its OID, as C-CDA-derived data do
}
PATIENT_ID = "built-patient"
_ids = itertools.count(1)


def when(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(timespec="seconds")


def status_concept(code_system: str, code: str) -> dict[str, Any]:
    """A status CodeableConcept of terminology.hl7.org (condition-clinical, allergyintolerance-verification...)."""
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{code_system}", "code": code}]}


def concept(spec: dict[str, Any]) -> dict[str, Any]:
    """{'icd': 'Z85.3'} or {'snomed': '...', 'display': '...'} or {'text': '...'}."""
    codings = [
        {"system": SYSTEMS[key], "code": spec[key], **({"display": spec["display"]} if "display" in spec else {})}
        for key in SYSTEMS
        if key in spec
    ]
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = codings
    if "text" in spec:
        out["text"] = spec["text"]
    return out


def condition(
    *,
    status: str | None = "active",
    verification: str | None = None,
    days_ago: float | None = 10,
    category: str = "problem-list-item",
    **code: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"c{next(_ids)}",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": category}]}
        ],
        "code": concept(code),
    }
    if status:
        resource["clinicalStatus"] = status_concept("condition-clinical", status)
    if verification:
        resource["verificationStatus"] = status_concept("condition-ver-status", verification)
    if days_ago is not None:
        resource["onsetDateTime"] = resource["recordedDate"] = when(days_ago)
    return resource


def temperature(value: float, unit: str, *, loinc: str = "8310-5", days_ago: float = 1, panel: bool = False) -> dict:
    quantity = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{next(_ids)}",
        "status": "final",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when(days_ago),
    }
    if panel:
        resource["code"] = concept({"loinc": "85353-1", "display": "Vital signs panel"})
        resource["component"] = [{"code": concept({"loinc": loinc}), "valueQuantity": quantity}]
    else:
        resource["code"] = concept({"loinc": loinc})
        resource["valueQuantity"] = quantity
    return resource


def dose(
    amount: float,
    unit: str = "mg",
    *,
    per: int = 1,
    every: float = 1,
    period_unit: str = "d",
    sequence: int | None = None,
    prn: bool = False,
    max_mg_per_day: float | None = None,
) -> dict[str, Any]:
    """One dosage line: ``amount`` ``unit`` ``per`` times every ``every`` ``period_unit``."""
    line: dict[str, Any] = {
        "timing": {"repeat": {"frequency": per, "period": every, "periodUnit": period_unit}},
        "doseAndRate": [
            {"doseQuantity": {"value": amount, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
        ],
    }
    if sequence is not None:
        line["sequence"] = sequence
    if prn:
        line["asNeededBoolean"] = True
    if max_mg_per_day is not None:
        line["maxDosePerPeriod"] = {
            "numerator": {"value": max_mg_per_day, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
            "denominator": {"value": 1, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
        }
    return line


def medication(
    *,
    status: str = "completed",
    days_ago: float = 30,
    supply_days: float | None = None,
    repeats: int = 0,
    dosage: list[dict[str, Any]] | None = None,
    reason: dict[str, Any] | None = None,
    id: str | None = None,
    **code: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": f"m{next(_ids)}",
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "medicationCodeableConcept": concept(code),
        "authoredOn": when(days_ago),
    }
    if id is not None:
        resource["id"] = id
    if dosage:
        resource["dosageInstruction"] = dosage
    if reason:
        resource["reasonCode"] = [concept(reason)]
    if supply_days is not None:
        resource["dispenseRequest"] = {
            "numberOfRepeatsAllowed": repeats,
            "expectedSupplyDuration": {
                "value": supply_days,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        }
    return resource


def statement(
    *, status: str = "active", started_days_ago: float = 365, ended_days_ago: float | None = None, **code: Any
) -> dict[str, Any]:
    """A MedicationStatement: a medicine the patient takes (or took, when it ended)."""
    period = {"start": when(started_days_ago)} | ({"end": when(ended_days_ago)} if ended_days_ago is not None else {})
    return {
        "resourceType": "MedicationStatement",
        "id": f"ms{next(_ids)}",
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "medicationCodeableConcept": concept(code),
        "effectivePeriod": period,
    }


def procedure(*, days_ago: float = 30, status: str = "completed", **code: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": f"pr{next(_ids)}",
        "status": status,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": concept(code),
        "performedDateTime": when(days_ago),
    }


def questionnaire_response(
    answers: list[tuple[str, dict[str, Any]]], *, days_ago: float = 2, id: str = "intake"
) -> dict[str, Any]:
    """A completed QuestionnaireResponse: (question text, answer value such as {"valueBoolean": True}) per item."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": id,
        "status": "completed",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authored": when(days_ago),
        "item": [{"linkId": f"q{n}", "text": text, "answer": [value]} for n, (text, value) in enumerate(answers)],
    }


def allergy(*, status: str | None = "active", verification: str | None = None, **code: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": f"a{next(_ids)}",
        "patient": {"reference": f"Patient/{PATIENT_ID}"},
        "code": concept(code),
    }
    if status:
        resource["clinicalStatus"] = status_concept("allergyintolerance-clinical", status)
    if verification:
        resource["verificationStatus"] = status_concept("allergyintolerance-verification", verification)
    return resource


def observation(
    *, days_ago: float = 1, value: float | None = None, unit: str = "", answer: dict | None = None, **code: Any
) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{next(_ids)}",
        "status": "final",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when(days_ago),
        "code": concept(code),
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if answer is not None:
        resource["valueCodeableConcept"] = concept(answer)
    return resource


def service_order(
    kind: str = "ServiceRequest",
    *,
    body_site: str | None = None,
    reason: dict | None = None,
    id: str = "draft-order",
    **code: Any,
) -> dict[str, Any]:
    element = "code" if kind == "ServiceRequest" else "codeCodeableConcept"
    order: dict[str, Any] = {
        "resourceType": kind,
        "id": id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        element: concept(code),
    }
    if body_site:
        order["bodySite"] = [{"text": body_site}]
    if reason:
        order["reasonCode"] = [concept(reason)]
    return order


def patient(age_years: float | None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female"}
    if age_years is not None:
        today = datetime.now(UTC).date()
        whole = int(age_years)
        born = _years_before(today, whole) - timedelta(days=round((age_years - whole) * 365))
        resource["birthDate"] = born.isoformat()
    return resource


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def lumbar_mri(reason: dict[str, Any] | None = None) -> dict[str, Any]:
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "draft-mri",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": concept({"cpt": "72148", "display": "MRI lumbar spine without contrast"}),
    }
    if reason:
        order["reasonCode"] = [concept(reason)]
    return order


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def hook_body(
    hook: str,
    resources: list[dict[str, Any]],
    *,
    drafts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    omit: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A CDS Hooks request with full prefetch built from ``resources`` (keys in ``omit`` are left out)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    prefetch: dict[str, Any] = {
        "patient": next(iter(by_type.get("Patient", [])), None),
        "conditions": searchset(by_type.get("Condition", [])),
        "observations": searchset(by_type.get("Observation", [])),
        "serviceRequests": searchset(by_type.get("ServiceRequest", [])),
        "deviceRequests": searchset(by_type.get("DeviceRequest", [])),
        "medicationRequests": searchset(by_type.get("MedicationRequest", [])),
        "medicationStatements": searchset(by_type.get("MedicationStatement", [])),
        "procedures": searchset(by_type.get("Procedure", [])),
        "encounters": searchset(by_type.get("Encounter", [])),
        "questionnaireResponses": searchset(by_type.get("QuestionnaireResponse", [])),
        "allergyIntolerances": searchset(by_type.get("AllergyIntolerance", [])),
    }
    for key in omit:
        prefetch.pop(key, None)
    if prefetch["patient"] is None:
        prefetch.pop("patient")
    context: dict[str, Any] = {"userId": "Practitioner/dr-1", "patientId": PATIENT_ID, "encounterId": "enc-built"}
    if hook != "patient-view":
        context["draftOrders"] = searchset(list(drafts))
        if hook == "order-select":
            context["selections"] = [f"{d['resourceType']}/{d['id']}" for d in drafts]
    return {
        "hook": hook,
        "hookInstance": "0e5f3b4c-8a7d-4c1e-9f2a-1b3c5d7e9f00",
        "context": context,
        "prefetch": prefetch,
    }


def patient_record(
    resources: list[dict[str, Any]],
    *,
    drafts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    gaps: tuple[str, ...] = (),
) -> Any:
    """A PatientRecord for rule-level tests, read the way the service reads prefetch (the relevance filter,
    then validated FHIR turned into facts), without HTTP: `gaps` names prefetch keys reported unreadable.
    A resource the filter drops never reaches the rules here either, so a filter that hid a red flag
    fails the rule tests too."""
    from cds_service.domain import facts
    from cds_service.fhir.facts import read_patient
    from cds_service.fhir.patient_data import draft_order_fact, read_key
    from cds_service.fhir.selection import selector_for
    from cds_service.knowledge.model import knowledge

    kb = knowledge()
    selector = selector_for(kb, int(kb.thresholds.fever_days.value), wall_clock)
    read = read_key("built", resources, selector)  # the service's own reading of one prefetch key
    assert not read.invalid, f"builder made invalid FHIR: {read.invalid}"
    read_drafts = [draft_order_fact(d, PATIENT_ID) for d in drafts]
    return facts.PatientRecord(
        patient_id=PATIENT_ID,
        patient_resource=read.patient,
        read_patient=read_patient,
        conditions=read.conditions,
        observations=read.observations,
        orders=read.orders,
        medications=read.medications,
        allergies=read.allergies,
        procedures=read.procedures,
        encounters=read.encounters,
        answers=read.answers,
        draft_orders=tuple(d for d in read_drafts if isinstance(d, facts.OrderFact | facts.MedicationFact)),
        unreadable_drafts=tuple(d for d in read_drafts if isinstance(d, facts.UnreadableOrder)),
        gaps=tuple(facts.DataGap(key, key, "could not be read (test)") for key in gaps),
    )


def instant(resource: dict[str, Any], **after: float) -> datetime:
    """The resource's own date (onset, effective, authored) plus ``after`` (weeks=6, days=14): a clock for
    boundary tests that is exact to the second, whatever day the tests run."""
    for element in ("onsetDateTime", "effectiveDateTime", "authoredOn"):
        if element in resource:
            return datetime.fromisoformat(resource[element]) + timedelta(**after)
    raise ValueError("resource has no date")
