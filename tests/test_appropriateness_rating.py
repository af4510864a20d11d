"""The appropriateness rating on the order (issue 31, item 3): the CDS Hooks sandbox's recorded PAMA
order-select gets an `update` systemAction of its ServiceRequest carrying the Argonaut PAMA rating that
matches the card (not appropriate beside the early warning; appropriate a year on, beside the late
information), at the top level as CDS Hooks 2.0.1 defines `systemActions` and in `extension.systemActions`
where the sandbox reads them; the updated order is the draft whole, valid FHIR R4, with a consultation id."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import responses
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.cds_hooks.response_model import CdsResponse

from .test_sandbox_requests import AT, FHIR, RECORDED, SERVICE, _app_at

RATING = "http://fhir.org/argonaut/Extension/pama-rating"
RATING_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"

pytestmark = pytest.mark.skipif(not RECORDED.is_dir(), reason="needs ../shared beside the repo")


def _answer(when: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    body = json.loads((RECORDED / name).read_text())
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, re.compile(re.escape(FHIR) + r"/.*"), json=empty)
        response = _app_at(AT[when][0]).post(f"/cds-services/{SERVICE[body['hook']]}", json=body)
    assert response.status_code == 200
    return body, response.get_json()


def _rating(action: dict[str, Any]) -> str:
    (extension,) = [e for e in action["resource"]["extension"] if e["url"] == RATING]
    (coding,) = extension["valueCodeableConcept"]["coding"]
    assert coding["system"] == RATING_SYSTEM
    return coding["code"]


@pytest.mark.parametrize(
    ("when", "indicator", "rating"),
    [("recorded", "warning", "not-appropriate"), ("a-year-later", "info", "appropriate")],
)
@pytest.mark.parametrize("name", ["order-select-pama-lumbar-mri-72148.json", "order-select-pama-lumbar-ct-72131.json"])
def test_the_sandbox_pama_order_gets_the_rating_that_matches_its_card(when, indicator, rating, name):
    body, answer = _answer(when, name)
    (card,) = answer["cards"]
    assert card["indicator"] == indicator
    (action,) = answer["systemActions"]
    assert answer["extension"]["systemActions"] == answer["systemActions"]  # where the sandbox reads them
    assert action["type"] == "update" and _rating(action) == rating
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    updated = action["resource"]
    assert {k: v for k, v in updated.items() if k != "extension"} == {
        k: v for k, v in draft.items() if k != "extension"
    }
    (consult,) = [e for e in updated["extension"] if e["url"] == CONSULT_ID]
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", consult["valueUri"])
    ServiceRequest.model_validate(updated)  # the whole draft, as `update` requires, valid R4


def test_the_response_with_system_actions_has_the_spec_shape():
    _, answer = _answer("recorded", "order-select-pama-lumbar-mri-72148.json")
    CdsResponse.model_validate(answer)
    spec = (RECORDED.parent.parent / "cds-hooks" / "cds-hooks-2.0.1-specification.md").read_text()
    # The spec's example: a top-level array of actions beside `cards`, each with its type and resource.
    example = re.search(r'```json\n(\{\n  "cards": \[\],\n  "systemActions": \[.*?\n\})\n```', spec, re.S)
    assert example, "the spec's systemActions example"
    shape = json.loads(example.group(1).replace('"...": "<snipped for brevity"', '"status": "draft"'))
    assert set(shape) <= set(answer) and set(shape["systemActions"][0]) <= set(answer["systemActions"][0])


def test_an_order_screen_with_no_study_chosen_yet_gets_no_rating():
    _, answer = _answer("recorded", "order-select-pama-screen-opened.json")
    assert "systemActions" not in answer and "extension" not in answer


def test_a_red_flag_rates_the_imaging_order_appropriate(client):
    from .conftest import hook_request

    body = hook_request("order-sign", "lbp-cauda-equina", drafts="lumbar-mri")
    answer = client.post("/cds-services/lbp-order-sign", json=body).get_json()
    assert [c["indicator"] for c in answer["cards"]] == ["critical"]
    (action,) = answer["systemActions"]
    assert _rating(action) == "appropriate"
