"""Deterministic request bodies for the benchmarks: a typical low back pain patient (W1) and a large adult
record in the shape of a Synthea adult (W2), both for order-sign with a lumbar MRI draft order; and the
workloads of one round of `make bench` (`suite`): each a `Workload` naming its body files, its calls and how
they are measured, its size taken from `Sizes` (smaller with --quick)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from cds_service.devtools.fixtures import DEFAULT_DIR, load_bundle, resources

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


class Measured(Enum):
    """How a workload's calls are measured (bench.rounds)."""

    SEQUENTIAL = "one call after another, in blocks interleaved with its floors' (bench.stats.interleaved)"
    UNDER_LOAD = "wrk at 16 connections, in turns interleaved with its floor's (bench.wrk.wrk_interleaved)"
    NO_PREFETCH = "each call against the slowest chain of FHIR requests it caused (bench.rounds.no_prefetch)"
    HISTORY = "calls on one encounter, the first fifth against the last (bench.rounds.history)"


@dataclass(frozen=True)
class Workload:
    """One workload as a round measures it: its name, its body files (several are sent in turn: W6 sends each
    once), how many calls each server gets, or for how many seconds wrk runs against each, and how."""

    name: str
    files: tuple[Path, ...]
    measured: Measured
    calls: int = 0
    seconds: int = 0  # under load: wrk's seconds per server, in all
    block: int = 20  # sequential: calls per server in each turn
    warm_up: bool = True  # sequential: a tenth of the calls first, not counted (not where each body goes once)

    def bodies(self) -> list[bytes]:
        return [path.read_bytes() for path in self.files]


@dataclass(frozen=True)
class Sizes:
    """How much each workload sends in one round: a full run's figures by default, QUICK's with --quick."""

    calls: int = 400  # W1 and MIN, and MIN's in-process pipeline
    large_calls: int = 40  # W2
    no_prefetch_calls: int = 20  # W3
    load_seconds: int = 15  # W4 and MIN under wrk
    history_calls: int = 10_000  # W5
    cold_calls: int = 600  # W6: as many distinct patients


QUICK = Sizes(calls=60, large_calls=8, no_prefetch_calls=5, load_seconds=3, history_calls=500, cold_calls=60)


@dataclass(frozen=True)
class Suite:
    """The workloads of one round. MIN is measured twice, one call after another and under wrk."""

    w1: Workload
    w2: Workload
    w3: Workload
    w4: Workload
    w5: Workload
    w6: Workload
    minimal: Workload
    minimal_load: Workload


def suite(folder: Path, sizes: Sizes, w1: Path, w2: Path, fhir_server: str) -> Suite:
    """One round's workloads, the bodies they do not share with the whole run (`w1`, `w2`) written to `folder`."""
    cold = tuple(folder / f"w6-{n}.json" for n in range(sizes.cold_calls))
    # A fresh service each round, so its caches start empty each round: and fresh cold patients for it.
    for path, body in zip(cold, cold_bodies(sizes.cold_calls), strict=True):
        path.write_bytes(body)
    w3 = folder / "w3.json"
    write(w3, hook_body(None, fhir_server=fhir_server))
    minimal = (folder / "MIN.json", folder / "MIN+enc.json")
    for path, encounter in zip(minimal, (None, "enc-min"), strict=True):
        write(path, minimal_order_select(encounter))
    sequential, under_load = Measured.SEQUENTIAL, Measured.UNDER_LOAD
    return Suite(
        w1=Workload("W1", (w1,), sequential, calls=sizes.calls),
        w2=Workload("W2", (w2,), sequential, calls=sizes.large_calls, block=4),
        w3=Workload("W3", (w3,), Measured.NO_PREFETCH, calls=sizes.no_prefetch_calls),
        w4=Workload("W4", (w1,), under_load, seconds=sizes.load_seconds),
        w5=Workload("W5", (w1,), Measured.HISTORY, calls=sizes.history_calls),
        w6=Workload("W6", cold, sequential, calls=sizes.cold_calls, warm_up=False),
        minimal=Workload("MIN", minimal, sequential, calls=sizes.calls),
        minimal_load=Workload("MIN", minimal, under_load, seconds=sizes.load_seconds),
    )
