"""The exact request bodies the public CDS Hooks sandbox sent (shared/reference/real-clients/cds-hooks-sandbox)
are golden scenarios: each produces the right cards. Keys the sandbox did not prefetch are fetched from its
FHIR server, stubbed here with empty results (responses), as the recorded sandbox's local server had none."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from cds_service.app import create_app
from cds_service.response_model import CdsResponse

from .cards_view import card_view
from .conftest import dev_settings

RECORDED = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "real-clients" / "cds-hooks-sandbox"
FHIR = "http://127.0.0.1:8191/fhir"
SERVICE = {"patient-view": "lbp-patient-view", "order-select": "lbp-order-select", "order-sign": "lbp-order-sign"}
IMAGING = ("lbp-imaging-no-red-flag", "warning", ["delete", "create"])
CHART_IMAGING = ("lbp-imaging-no-red-flag", "warning", ["create"])  # patient-view withdraws nothing in one click

EXPECTED: dict[str, list[tuple[str, str, list[str]]]] = {
    "order-select-pama-lumbar-ct-72131.json": [IMAGING],
    "order-select-pama-lumbar-mri-72148.json": [IMAGING],
    "order-select-pama-screen-opened.json": [],
    "order-select-rx-view-opened.json": [],
    "order-select-rx-ibuprofen-800.json": [],  # one 800 mg pill a day: within the maximum
    "order-select-rx-tramadol-50.json": [("lbp-opioid-before-nsaid", "warning", ["delete", "create"])],
    "order-sign-rx-tramadol-50.json": [("lbp-opioid-before-nsaid", "warning", ["delete", "create"])],
    "patient-view-lbp-acute.json": [("lbp-first-line", "info", ["create"])],
    "patient-view-lbp-cauda-equina.json": [("lbp-red-flag", "critical", ["create"])],
    "patient-view-lbp-on-chart-orders.json": [CHART_IMAGING, ("lbp-bed-rest", "warning", ["create"])],
}

pytestmark = pytest.mark.skipif(not RECORDED.is_dir(), reason="needs ../shared beside the repo")


@pytest.fixture(scope="module")
def client():
    settings = dev_settings(memory_enabled=False, allow_insecure_fhir_http=True, allowed_fhir_servers=(FHIR,))
    return create_app(settings).test_client()


@pytest.mark.parametrize("name", sorted(EXPECTED))
@responses.activate
def test_the_sandbox_request_gets_the_right_cards(client: Any, name: str) -> None:
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    responses.add(responses.GET, re.compile(re.escape(FHIR) + r"/.*"), json=empty)
    body = json.loads((RECORDED / name).read_text())
    response = client.post(f"/cds-services/{SERVICE[body['hook']]}", json=body)
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    CdsResponse.model_validate(response.get_json())
    got = [(v["rule"], v["indicator"], v["actions"]) for v in map(card_view, cards)]
    assert got == [(rule, indicator, actions) for rule, indicator, actions in EXPECTED[name]]
    for card in cards:
        if card["indicator"] != "info":
            assert card.get("overrideReasons"), "the sandbox shows overrideReasons as the Dismiss menu"


def test_every_recorded_hook_request_is_covered() -> None:
    recorded = {p.name for p in RECORDED.glob("*.json") if "hook" in json.loads(p.read_text())}
    assert recorded == set(EXPECTED)


@responses.activate
def test_a_draft_order_that_still_cannot_be_read_is_named_on_a_card_and_logged_by_field(client: Any, caplog) -> None:
    import logging

    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    responses.add(responses.GET, re.compile(re.escape(FHIR) + r"/.*"), json=empty)
    body = json.loads((RECORDED / "order-sign-rx-tramadol-50.json").read_text())
    body["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"] = "secret-value-xyz"
    with caplog.at_level(logging.INFO, logger="cds_service"):
        response = client.post("/cds-services/lbp-order-sign", json=body)
    cards = response.get_json()["cards"]
    assert [card_view(c)["rule"] for c in cards] == ["lbp-order-not-checked"]
    assert "authoredOn" in cards[0]["detail"] and "not checked" in cards[0]["detail"]
    logged = [r for r in caplog.records if r.getMessage() == "skipping invalid FHIR resource"]
    assert logged and any("authoredOn" in field for field in logged[0].invalid_fields)
    assert "secret-value-xyz" not in caplog.text + json.dumps(cards)


def test_single_objects_where_r4_has_arrays_are_wrapped_at_any_depth() -> None:
    from cds_service.fhir_shape import normalise

    order = {
        "resourceType": "MedicationRequest",
        "category": {"coding": {"system": "s", "code": "community"}},
        "reasonCode": {"text": "low back pain"},
        "dosageInstruction": {"text": "once", "doseAndRate": {"doseQuantity": {"value": 1}}},
        "subject": {"reference": "Patient/1"},
    }
    reshaped, changed = normalise(order)
    assert reshaped["category"] == [{"coding": [{"system": "s", "code": "community"}]}]
    assert reshaped["reasonCode"] == [{"text": "low back pain"}]
    assert reshaped["dosageInstruction"][0]["doseAndRate"] == [{"doseQuantity": {"value": 1}}]
    assert reshaped["subject"] == {"reference": "Patient/1"}  # 0..1 stays an object
    assert "MedicationRequest.category.coding" in changed
