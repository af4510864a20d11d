"""Medicine advice that is safe to click (issue 13): every scenario of tests/scenarios/medicines.py sent as an
order-sign call with full prefetch, and its cards checked; and across every scenario, no suggestion
creates or changes a medicine order for a patient with a recorded contraindication."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.web.app import create_app

from .builders import condition, hook_body, patient
from .cards_view import card_view
from .conftest import SERVICE_FOR_HOOK, dev_settings
from .scenarios.medicines import SCENARIOS

LBP = {"icd": "M54.50"}


@pytest.fixture(scope="module")
def client():
    return create_app(dev_settings(memory_enabled=False)).test_client()


def run(client: Any, scenario: dict[str, Any], hook: str = "order-sign") -> list[dict[str, Any]]:
    resources = [patient(40), condition(days_ago=10, **LBP), *scenario["resources"]]
    body = hook_body(hook, resources, drafts=scenario["drafts"], omit=scenario.get("omit", ()))
    response = client.post(f"/cds-services/{SERVICE_FOR_HOOK[hook].id}", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def medicine_actions(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        action
        for card in cards
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action["type"] in {"create", "update"}
        and action.get("resource", {}).get("resourceType") == "MedicationRequest"
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_medicine_scenario(client: Any, scenario: dict[str, Any]) -> None:
    cards = run(client, scenario)
    rules = {card_view(c)["rule"] for c in cards} - ({"lbp-red-flag"} if scenario.get("red_flag_ok") else set())
    assert rules == scenario["cards"], [c["summary"] for c in cards]
    assert bool(medicine_actions(cards)) == scenario["medicine"], [c["detail"] for c in cards]
    words = " ".join(f"{c['summary']}\n{c['detail']}" for c in cards)
    for fragment in scenario.get("text", []):
        assert fragment in words


CONTRAINDICATED = [s for s in SCENARIOS if s.get("contraindicated")]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_no_suggestion_orders_a_medicine_for_a_patient_with_a_recorded_contraindication(client: Any, hook: str) -> None:
    assert len(CONTRAINDICATED) >= 10
    for scenario in CONTRAINDICATED:
        assert medicine_actions(run(client, scenario, hook)) == [], scenario["name"]
