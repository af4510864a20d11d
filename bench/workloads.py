"""Deterministic request bodies for the benchmarks: a typical low back pain patient (W1) and a large adult
record in the shape of a Synthea adult (W2), both for order-sign with a lumbar MRI draft order."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cds_service.fixtures import DEFAULT_DIR, load_bundle, resources

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PATIENT = "lbp-acute"

# Common adult problems, vitals and medicines (none of them a low back pain code or a red flag).
CONDITIONS = [("38341003", "Hypertension"), ("44054006", "Diabetes mellitus type 2"), ("55822004", "Hyperlipidemia"),
              ("195967001", "Asthma"), ("40055000", "Chronic sinusitis"), ("10509002", "Acute bronchitis"),
              ("444814009", "Viral sinusitis"), ("162864005", "Body mass index 30+ - obesity"), ("15777000", "Prediabetes"),
              ("271737000", "Anemia")]  # fmt: skip
VITALS = [("8867-4", "Heart rate", "/min", 60, 100), ("8480-6", "Systolic blood pressure", "mm[Hg]", 100, 150),
          ("8462-4", "Diastolic blood pressure", "mm[Hg]", 60, 95), ("9279-1", "Respiratory rate", "/min", 12, 20),
          ("29463-7", "Body weight", "kg", 55, 110), ("8302-2", "Body height", "cm", 150, 195),
          ("39156-5", "Body mass index", "kg/m2", 19, 35), ("2339-0", "Glucose", "mg/dL", 70, 140),
          ("8310-5", "Body temperature", "Cel", 36.1, 37.4)]  # fmt: skip
MEDICINES = [("314076", "lisinopril 10 MG Oral Tablet"), ("860975", "metformin 500 MG Oral Tablet"),
             ("617314", "atorvastatin 10 MG Oral Tablet"), ("197361", "amlodipine 5 MG Oral Tablet"),
             ("745679", "albuterol inhaler"), ("308136", "amoxicillin 500 MG Oral Capsule"),
             ("313782", "acetaminophen 325 MG Oral Tablet")]  # fmt: skip


def _draft_orders() -> dict[str, Any]:
    return json.loads((DEFAULT_DIR / "draft-orders" / "lumbar-mri.json").read_text())


def _bundle(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(items),
        "entry": [{"resource": r} for r in items],
    }


def typical_patient() -> list[dict[str, Any]]:
    """The fixture patient plus a realistic history: about 50 resources."""
    rng = random.Random(1)
    base = list(resources(load_bundle(DEFAULT_DIR / f"{PATIENT}.json")))
    return base + _history(rng, conditions=8, observations=30, medications=8, services=4)


def large_patient() -> list[dict[str, Any]]:
    rng = random.Random(2)
    base = list(resources(load_bundle(DEFAULT_DIR / f"{PATIENT}.json")))
    return base + _history(rng, conditions=220, observations=2100, medications=1050, services=110)


def _history(rng: random.Random, *, conditions: int, observations: int, medications: int, services: int) -> list[dict]:
    now = datetime.now(UTC)
    subject = {"reference": f"Patient/{PATIENT}"}
    out: list[dict[str, Any]] = []

    def when() -> str:
        return (now - timedelta(days=rng.randint(20, 3650))).isoformat()

    for i in range(conditions):
        code, display = rng.choice(CONDITIONS)
        status = rng.choice(["active", "resolved", "resolved"])
        out.append({"resourceType": "Condition", "id": f"h-c{i}", "subject": subject, "onsetDateTime": when(),
                    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
                    "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
                    "code": {"coding": [{"system": SCT, "code": code, "display": display}], "text": display}})  # fmt: skip
    for i in range(observations):
        code, display, unit, low, high = rng.choice(VITALS)
        out.append({"resourceType": "Observation", "id": f"h-o{i}", "status": "final", "subject": subject,
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                    "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                    "effectiveDateTime": when(),
                    "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})  # fmt: skip
    for i in range(medications):
        code, display = rng.choice(MEDICINES)
        out.append({"resourceType": "MedicationRequest", "id": f"h-m{i}", "status": rng.choice(["active", "completed", "stopped"]),
                    "intent": "order", "subject": subject, "authoredOn": when(),
                    "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display},
                    "dosageInstruction": [{"text": "as directed", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]})  # fmt: skip
    for i in range(services):
        out.append({"resourceType": "ServiceRequest", "id": f"h-s{i}", "status": "completed", "intent": "order", "subject": subject,
                    "authoredOn": when(), "code": {"coding": [{"system": LOINC, "code": "24357-6", "display": "Urinalysis macro panel"}], "text": "Urinalysis"}})  # fmt: skip
    return out


def hook_body(pool: list[dict[str, Any]] | None, *, fhir_server: str | None = None) -> dict[str, Any]:
    """order-sign for the lumbar MRI; full prefetch from `pool`, or none (fetch from `fhir_server`)."""
    body: dict[str, Any] = {
        "hook": "order-sign",
        "hookInstance": "3f1c5b0e-2c55-4c3e-9a38-5d0f0f4b3a11",
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT, "draftOrders": _draft_orders()},
    }
    if pool is not None:
        by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in pool:
            by_type.setdefault(resource["resourceType"], []).append(resource)
        body["prefetch"] = {
            "patient": by_type["Patient"][0],
            "conditions": _bundle(by_type.get("Condition", [])),
            "observations": _bundle(by_type.get("Observation", [])),
            "medicationRequests": _bundle(by_type.get("MedicationRequest", [])),
            "allergyIntolerances": _bundle(by_type.get("AllergyIntolerance", [])),
            "serviceRequests": _bundle(by_type.get("ServiceRequest", [])),
            "medicationStatements": _bundle(by_type.get("MedicationStatement", [])),
            "procedures": _bundle(by_type.get("Procedure", [])),
            "encounters": _bundle(by_type.get("Encounter", [])),
            "questionnaireResponses": _bundle(by_type.get("QuestionnaireResponse", [])),
        }
    if fhir_server:
        body["fhirServer"] = fhir_server
    return body


def write(path: Path, body: dict[str, Any]) -> int:
    text = json.dumps(body)
    path.write_text(text)
    return len(text)


def cold_bodies(count: int) -> list[bytes]:
    """`count` W1-shaped requests, each for a different patient with its own values: no validation verdict
    can be reused from one to the next (W6)."""
    out = []
    for n in range(count):
        rng = random.Random(1000 + n)
        base = list(resources(load_bundle(DEFAULT_DIR / f"{PATIENT}.json")))
        body = hook_body(base + _history(rng, conditions=8, observations=30, medications=8, services=4))
        text = json.dumps(body).replace(PATIENT, f"{PATIENT}-{n}")
        out.append(text.encode())
    return out


def minimal_order_select(encounter: str | None) -> dict[str, Any]:
    """The shape of the CDS Hooks sandbox's PAMA request: an order-select for a lumbar MRI with a minimal
    prefetch (patient and one back pain condition), about 1.5 KB; with or without an encounterId."""
    patient = {"resourceType": "Patient", "id": "p-min", "birthDate": "1980-01-01", "gender": "female"}
    condition = {"resourceType": "Condition", "id": "c-min", "subject": {"reference": "Patient/p-min"},
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]},
                 "onsetDateTime": (datetime.now(UTC) - timedelta(days=10)).isoformat()}  # fmt: skip
    order = {"resourceType": "ServiceRequest", "id": "mri-1", "status": "draft", "intent": "plan",
             "subject": {"reference": "Patient/p-min"},
             "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]}}  # fmt: skip
    context: dict[str, Any] = {"userId": "Practitioner/min", "patientId": "p-min", "selections": ["ServiceRequest/mri-1"],
                               "draftOrders": _bundle([order])}  # fmt: skip
    if encounter:
        context["encounterId"] = encounter
    empty = _bundle([])
    return {
        "hook": "order-select",
        "hookInstance": "7d0f8a2e-0b7e-4d4e-8f1c-5e2b6a9d1c33",
        "context": context,
        "prefetch": {
            "patient": patient,
            "conditions": _bundle([condition]),
            "observations": empty,
            "medicationRequests": empty,
            "allergyIntolerances": empty,
        },
    }
