"""Coverage by design: every red-flag fact, recorded in each place FHIR R4 (US Core, IPS) lets an EHR record
it, gets the same advice as the same fact recorded as a coded problem. The table below is the fact x source
table of cds_service/knowledge/README.md ("Where each fact is read"): a fact is a red-flag category with one
concept (a code, and the words a patient or clinician would use), a source is one of the places it lives.
Each record holds back pain and the fact in one source only; the imaging order must get the red-flag card
naming that category and no advice against imaging, on order-sign, and patient-view must show the card."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.web.app import create_app

from .builders import (
    PATIENT_ID,
    concept,
    condition,
    hook_body,
    lumbar_mri,
    patient,
    procedure,
    questionnaire_response,
    when,
)
from .cards_view import card_view, red_flag_categories_named
from .conftest import SERVICE_FOR_HOOK, dev_settings

LBP = {"icd": "M54.50", "display": "Low back pain, unspecified"}

# fact (red-flag category) -> (a code as EHRs send it, the words for it, a question answered yes)
FACTS: dict[str, tuple[dict[str, str], str, str]] = {
    "cauda-equina": ({"icd": "G83.4"}, "Cauda equina syndrome", "Have you had loss of bladder control?"),
    "neurologic-deficit": ({"icd": "M21.371"}, "Foot drop, right foot", "Do you have foot drop?"),
    "spinal-infection": ({"icd": "M46.26"}, "Vertebral osteomyelitis, lumbar", "Have you been told you have discitis?"),
    "malignancy": ({"icd": "C79.51"}, "Secondary malignant neoplasm of bone", "Have you ever had cancer?"),
    "recent-trauma": ({"icd": "S32.010A"}, "Fracture of first lumbar vertebra after a fall", "Did trauma start it?"),
    "iv-drug-use": ({"icd": "F11.20"}, "Opioid dependence, injects heroin", "Have you ever injected drugs?"),
    "hiv": ({"icd": "B20"}, "HIV disease", "Do you have HIV?"),
    "transplant-immunosuppression": ({"icd": "Z94.0"}, "Kidney transplant status", "Have you had a transplant?"),
    "osteoporosis-fracture": (
        {"icd": "M81.0"},
        "Age-related osteoporosis",
        "Have you been told you have osteoporosis?",
    ),
    "spondylopathy": ({"icd": "M46.1"}, "Sacroiliitis", "Have you been told you have sacroiliitis?"),
}


def _problem(code: dict[str, str], text: str) -> list[dict[str, Any]]:
    return [condition(days_ago=20, **code, display=text)]


def _encounter_diagnosis(code: dict[str, str], text: str) -> list[dict[str, Any]]:
    found = condition(days_ago=20, **code, display=text)
    found["category"] = [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis"}
            ]
        }
    ]
    return [found]


def _visit_reason(code: dict[str, str], text: str) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Encounter",
            "id": "visit-1",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
            "period": {"start": when(10)},
            "reasonCode": [concept({**code, "display": text})],
        }
    ]


def _text_only(code: dict[str, str], text: str) -> list[dict[str, Any]]:
    return [condition(days_ago=20, text=text)]


def _questionnaire(question: str) -> list[dict[str, Any]]:
    return [questionnaire_response([(question, {"valueBoolean": True})], days_ago=3)]


SOURCES = ["problem-list", "encounter-diagnosis", "visit-reason", "text-only", "order-reason", "questionnaire"]


def _record(fact: str, source: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    code, text, question = FACTS[fact]
    if source == "order-reason":
        return [], {**code, "display": text}
    if source == "questionnaire":
        return _questionnaire(question), None
    build = {
        "problem-list": _problem,
        "encounter-diagnosis": _encounter_diagnosis,
        "visit-reason": _visit_reason,
        "text-only": _text_only,
    }[source]
    return build(code, text), None


@pytest.fixture(scope="module")
def client() -> Any:
    return create_app(dev_settings(memory_enabled=False)).test_client()


def _cards(client: Any, hook: str, resources: list[dict[str, Any]], reason: dict | None) -> list[dict[str, Any]]:
    everything = [patient(45), condition(days_ago=10, **LBP), *resources]
    drafts = [lumbar_mri(reason)] if hook != "patient-view" else []
    response = client.post(
        f"/cds-services/{SERVICE_FOR_HOOK[hook].id}", json=hook_body(hook, everything, drafts=drafts)
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def _advice(cards: list[dict[str, Any]]) -> tuple[set[str], bool]:
    red = [c for c in cards if card_view(c)["rule"] == "lbp-red-flag"]
    imaging = any(card_view(c)["rule"] == "lbp-imaging-no-red-flag" for c in cards)
    return (red_flag_categories_named(red[0]) if red else set()), imaging


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("fact", sorted(FACTS))
def test_a_fact_in_any_source_gets_the_advice_it_gets_as_a_coded_problem(client, fact, source):
    coded, _ = _record(fact, "problem-list")
    expected = _advice(_cards(client, "order-sign", coded, None))
    assert fact in expected[0] and not expected[1], expected
    resources, reason = _record(fact, source)
    got = _advice(_cards(client, "order-sign", resources, reason))
    assert fact in got[0] and not got[1], (fact, source, got)


@pytest.mark.parametrize("source", [s for s in SOURCES if s != "order-reason"])
@pytest.mark.parametrize("fact", sorted(FACTS))
def test_chart_review_shows_the_fact_from_any_source(client, fact, source):
    resources, _ = _record(fact, source)
    categories, _ = _advice(_cards(client, "patient-view", resources, None))
    assert fact in categories, (fact, source)


@pytest.mark.parametrize(
    ("fact", "build"),
    [
        (
            "lumbar-surgery",
            lambda: [procedure(cpt="63030", display="Laminotomy with discectomy, lumbar", days_ago=200)],
        ),
        ("malignancy", lambda: [procedure(cpt="96413", display="Chemotherapy administration, IV infusion")]),
        ("transplant-immunosuppression", lambda: [procedure(cpt="50360", display="Renal allotransplantation")]),
    ],
)
def test_a_fact_recorded_only_as_a_procedure_gets_the_same_advice(client, fact, build):
    categories, imaging = _advice(_cards(client, "order-sign", build(), None))
    assert fact in categories and not imaging
