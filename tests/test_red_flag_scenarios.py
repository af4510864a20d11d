"""Red flags and the episode as real EHRs code them: every scenario of tests/scenarios/red_flags.py sent
through the service as a full-prefetch hook call, and its cards checked against what it expects."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.web.app import create_app

from .builders import condition, hook_body, lumbar_mri, patient
from .cards_view import card_view, red_flag_categories_named
from .conftest import SERVICE_FOR_HOOK, dev_settings
from .scenarios.red_flags import LBP, SCENARIOS


@pytest.fixture(scope="module")
def client():
    # Memory off: every scenario reuses one encounter and order id, and each must be judged on its own.
    return create_app(dev_settings(memory_enabled=False)).test_client()


def run(client: Any, scenario: dict[str, Any]) -> list[dict[str, Any]]:
    hook = scenario.get("hook", "order-sign")
    resources = [patient(scenario.get("age", 40)), *scenario["resources"]]
    back_pain = scenario.get("back_pain", True)
    if back_pain is True:
        resources.append(condition(**LBP, days_ago=10))
    elif back_pain:
        resources.append(condition(**back_pain))
    drafts = [] if hook == "patient-view" else [lumbar_mri(scenario.get("order_reason"))]
    body = hook_body(hook, resources, drafts=drafts, omit=scenario.get("omit", ()))
    response = client.post(f"/cds-services/{SERVICE_FOR_HOOK[hook].id}", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def by_rule(cards: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [c for c in cards if card_view(c)["rule"] == rule]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_red_flag_scenario(client: Any, scenario: dict[str, Any]) -> None:
    cards = run(client, scenario)
    red = by_rule(cards, "lbp-red-flag")
    imaging = by_rule(cards, "lbp-imaging-no-red-flag")
    if scenario["red_flags"]:
        assert len(red) == 1, [c["summary"] for c in cards]
        assert red_flag_categories_named(red[0]) == scenario["red_flags"]
        assert (red[0]["indicator"] == "critical") == scenario.get("critical", False)
    else:
        assert red == [], red[0]["detail"] if red else ""
    if scenario["imaging"] is None:
        assert imaging == []
    else:
        assert len(imaging) == 1, [c["summary"] for c in cards]
        assert imaging[0]["indicator"] == scenario["imaging"]
        actions = card_view(imaging[0])["actions"]
        assert ("delete" in actions) == scenario["cancel"], imaging[0]["detail"]
    if "cards" in scenario:
        assert len(cards) == scenario["cards"], [c["summary"] for c in cards]
    words = " ".join(f"{c['summary']}\n{c['detail']}" for c in cards)
    for fragment in scenario.get("text", []):
        assert fragment in words
    for fragment in scenario.get("no_text", []):
        assert fragment not in words


def test_there_are_at_least_sixty_scenarios_with_distinct_names() -> None:
    names = [s["name"] for s in SCENARIOS]
    assert len(names) >= 60 and len(set(names)) == len(names)


def test_unreadable_observations_are_not_claimed_as_checked(client) -> None:
    from .scenarios.red_flags import s

    cards = run(client, s("x", [], omit=("observations",)))
    detail = by_rule(cards, "lbp-imaging-no-red-flag")[0]["detail"]
    checked, not_checked = detail.split("**Checked**")[1].split("**Not checked**")
    assert "body temperature" not in checked.lower()
    assert "observations" in not_checked.lower() or "body temperature" in not_checked.lower()


def test_bundle_entries_without_a_resource_are_named_and_withhold_the_cancel(client) -> None:
    hook = "order-sign"
    resources = [patient(40), condition(**LBP, days_ago=10)]
    body = hook_body(hook, resources, drafts=[lumbar_mri()])
    body["prefetch"]["conditions"]["entry"].append({"fullUrl": "urn:uuid:junk"})  # an entry with no resource
    cards = client.post(f"/cds-services/{SERVICE_FOR_HOOK[hook].id}", json=body).get_json()["cards"]
    imaging = by_rule(cards, "lbp-imaging-no-red-flag")[0]
    assert "1 conditions bundle entries" in imaging["detail"]
    assert "delete" not in card_view(imaging)["actions"]
