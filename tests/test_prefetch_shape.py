"""Prefetch content whose shape does not fit its template (another resource type, a Bundle of other types, an
OperationOutcome) is treated as not provided, never as an empty record: fetched from the FHIR server, else
412 for required data or "not checked" for optional data (CDS Hooks 2.0.1 "Prefetch Template": the
service "SHALL" be able to fetch what was not prefetched)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from cds_service.cds_hooks.protocol import load_services
from cds_service.devtools.fixture_search import path_and_query, search

from .builders import PATIENT_ID, condition, hook_body, lumbar_mri, patient, searchset
from .conftest import FAKE_FHIR, TOKEN
from .test_patient_data import ANY_FHIR_URL, FHIR_JSON

CAUDA_EQUINA = [patient(52), condition(icd="M54.50", days_ago=10), condition(icd="G83.4", days_ago=1)]
SERVICE_OF = {"patient-view": "lbp-patient-view", "order-select": "lbp-order-select", "order-sign": "lbp-order-sign"}
OBSERVATION = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "pulse"}}
WRONG_CONTENT = {
    "a Patient": patient(52) | {"id": "p-1"},
    "a Bundle of Observations": searchset([OBSERVATION]),
    "an OperationOutcome": {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]},
    "a Bundle mixing Observations in": searchset([condition(icd="M54.50"), OBSERVATION]),
}
REQUIRED = sorted(
    (service.hook, key.name)
    for service in load_services().values()
    for key in service.prefetch
    if key.is_required(service.hook)
)


def _body(hook: str) -> dict[str, Any]:
    return hook_body(hook, CAUDA_EQUINA, drafts=[lumbar_mri()] if hook != "patient-view" else [])


def _post(client: Any, hook: str, body: dict[str, Any]) -> Any:
    return client.post(f"/cds-services/{SERVICE_OF[hook]}", json=body)


def test_every_hook_has_required_keys_to_check() -> None:
    assert {hook for hook, _ in REQUIRED} == set(SERVICE_OF)


@pytest.mark.parametrize("content", sorted(WRONG_CONTENT))
@pytest.mark.parametrize(("hook", "key"), REQUIRED)
def test_a_required_key_with_wrong_content_is_answered_as_if_it_were_missing(client, hook, key, content):
    missing = _body(hook)
    del missing["prefetch"][key]
    wrong = _body(hook)
    wrong["prefetch"][key] = WRONG_CONTENT[content]
    expected, got = _post(client, hook, missing), _post(client, hook, wrong)
    assert (got.status_code, expected.status_code) == (412, 412)
    assert key in got.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("content", sorted(WRONG_CONTENT))
@responses.activate
def test_wrong_content_under_conditions_is_fetched_and_the_red_flag_shown(client, content):
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        return 200, FHIR_JSON, json.dumps(search(CAUDA_EQUINA, path_and_query(request.url, FAKE_FHIR)))

    responses.add_callback(responses.GET, ANY_FHIR_URL, callback=answer)
    body = _body("order-sign") | {"fhirServer": FAKE_FHIR, "fhirAuthorization": _authorization()}
    body["prefetch"]["conditions"] = WRONG_CONTENT[content]
    response = _post(client, "order-sign", body)
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    assert [c["indicator"] for c in cards] == ["critical"]
    assert [path_and_query(c.request.url, FAKE_FHIR) for c in responses.calls] == [f"Condition?patient={PATIENT_ID}"]


def test_an_optional_key_with_wrong_content_is_named_as_not_checked_and_no_cancel_is_offered(client):
    body = hook_body("order-sign", [patient(40), condition(icd="M54.50", days_ago=10)], drafts=[lumbar_mri()])
    body["prefetch"]["observations"] = searchset([condition(icd="M54.50")])
    (card,) = _post(client, "order-sign", body).get_json()["cards"]
    assert "imaging" in card["summary"].lower()
    assert [s for s in card.get("suggestions", []) if any(a["type"] == "delete" for a in s["actions"])] == []
    assert "held a Bundle holding Condition" in card["detail"]


def test_a_medication_a_search_brings_with_its_orders_fits_the_template(client):
    body = hook_body("order-sign", [patient(40), condition(icd="M54.50", days_ago=10)], drafts=[lumbar_mri()])
    medication = {"resourceType": "Medication", "id": "m", "code": {"text": "paracetamol 500 mg tablet"}}
    body["prefetch"]["medicationRequests"] = searchset([medication])
    (card,) = _post(client, "order-sign", body).get_json()["cards"]
    assert any(a["type"] == "delete" for s in card["suggestions"] for a in s["actions"])


def _authorization() -> dict[str, Any]:
    return {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "x"}
