"""The exact request bodies the public CDS Hooks sandbox sent (shared/reference/real-clients/cds-hooks-sandbox)
are golden scenarios: each produces the right cards. Keys the sandbox did not prefetch are fetched from its
FHIR server, stubbed here with empty results (responses), as the recorded sandbox's local server had none.

The bodies carry absolute dates (recorded on 2026-11-27), so the app runs at the recording's own time, and
again a year later with the cards a year-old episode gets: the outcome never depends on the day the tests run."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses

from cds_service.cds_hooks.response_model import CdsResponse
from cds_service.domain.clock import fixed_clock
from cds_service.web.app import create_app

from .cards_view import card_view
from .conftest import dev_settings

RECORDED = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "real-clients" / "cds-hooks-sandbox"
# When the sandbox sent them: after the last `meta.lastUpdated` in any body (15:08:22) and before the first
# feedback's `outcomeTimestamp` (15:10:55); test_the_recording_time_is_when_the_bodies_were_sent holds that.
RECORDED_AT = datetime(2026, 11, 27, 15, 10, tzinfo=UTC)
A_YEAR_LATER = RECORDED_AT + timedelta(days=365)
FHIR = "http://127.0.0.1:8191/fhir"
SERVICE = {"patient-view": "lbp-patient-view", "order-select": "lbp-order-select", "order-sign": "lbp-order-sign"}
IMAGING = ("lbp-imaging-no-red-flag", "warning", ["delete", "create"])
CHART_IMAGING = ("lbp-imaging-no-red-flag", "warning", ["create"])  # patient-view withdraws nothing in one click
OPIOID = ("lbp-opioid-before-nsaid", "warning", ["delete", "create"])
CAUDA_EQUINA = ("lbp-red-flag", "critical", ["create"])  # alone: a red flag silences the routine cards

EXPECTED: dict[str, list[tuple[str, str, list[str]]]] = {
    "order-select-pama-lumbar-ct-72131.json": [IMAGING],
    "order-select-pama-lumbar-mri-72148.json": [IMAGING],
    "order-select-pama-screen-opened.json": [],
    "order-select-rx-view-opened.json": [],
    "order-select-rx-ibuprofen-800.json": [],  # one 800 mg pill a day: within the maximum
    "order-select-rx-tramadol-50.json": [OPIOID],
    "order-sign-rx-tramadol-50.json": [OPIOID],
    "patient-view-lbp-acute.json": [("lbp-first-line", "info", ["create"])],  # 10 days: before STarT Back is due
    "patient-view-lbp-cauda-equina.json": [CAUDA_EQUINA],
    "patient-view-lbp-on-chart-orders.json": [CHART_IMAGING, ("lbp-bed-rest", "warning", ["create"])],
}

# The same bodies a year on: the episode that began 2026-11-17 is still active, so it is persistent pain.
LATE_IMAGING = ("lbp-imaging-no-red-flag", "info", ["delete", "create"])  # after 6 weeks: information only
ROUTINE_A_YEAR_ON = [
    ("lbp-inflammatory", "info", ["create"]),  # chronic back pain that began before 45: screen for axSpA
    ("lbp-startback-screen", "info", []),  # past 2 weeks with no STarT Back result
    ("lbp-review", "info", []),  # past the 4-6 week review
]
EXPECTED_A_YEAR_LATER: dict[str, list[tuple[str, str, list[str]]]] = {
    **EXPECTED,
    "order-select-pama-lumbar-ct-72131.json": [LATE_IMAGING],
    "order-select-pama-lumbar-mri-72148.json": [LATE_IMAGING],
    "patient-view-lbp-acute.json": ROUTINE_A_YEAR_ON,
    "patient-view-lbp-cauda-equina.json": [CAUDA_EQUINA],  # a coded, active syndrome counts whatever its age
    "patient-view-lbp-on-chart-orders.json": [
        ("lbp-bed-rest", "warning", ["create"]),
        ("lbp-imaging-no-red-flag", "info", ["create"]),
        *ROUTINE_A_YEAR_ON,
    ],
}
AT = {"recorded": (RECORDED_AT, EXPECTED), "a-year-later": (A_YEAR_LATER, EXPECTED_A_YEAR_LATER)}

pytestmark = pytest.mark.skipif(not RECORDED.is_dir(), reason="needs ../shared beside the repo")


def _app_at(moment: datetime) -> Any:
    settings = dev_settings(memory_enabled=False, allow_insecure_fhir_http=True, allowed_fhir_servers=(FHIR,))
    return create_app(settings, clock=fixed_clock(moment)).test_client()


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    return {when: _app_at(moment) for when, (moment, _) in AT.items()}


@pytest.fixture(scope="module")
def client(clients: dict[str, Any]) -> Any:
    return clients["recorded"]


def _recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / name).read_text())


def _cards(client: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(f"/cds-services/{SERVICE[body['hook']]}", json=body)
    assert response.status_code == 200, response.get_json()
    CdsResponse.model_validate(response.get_json())
    return response.get_json()["cards"]


def test_the_recording_time_is_when_the_bodies_were_sent() -> None:
    stamps = re.compile(r'"(?:lastUpdated|authoredOn|outcomeTimestamp)": "([^"]+)"')
    sent = [
        datetime.fromisoformat(s if "T" in s else s + "T00:00:00+00:00")
        for p in RECORDED.glob("*.json")
        for s in stamps.findall(p.read_text())
    ]
    updated = [m for m in sent if m <= RECORDED_AT]
    assert updated and max(updated) > RECORDED_AT - timedelta(minutes=5)  # written minutes before
    feedback = [m for m in sent if m > RECORDED_AT]
    assert feedback and min(feedback) < RECORDED_AT + timedelta(minutes=5)  # answered minutes after


@pytest.mark.parametrize("when", sorted(AT))
@pytest.mark.parametrize("name", sorted(EXPECTED))
@responses.activate
def test_the_sandbox_request_gets_the_right_cards(clients: dict[str, Any], when: str, name: str) -> None:
    empty = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    responses.add(responses.GET, re.compile(re.escape(FHIR) + r"/.*"), json=empty)
    cards = _cards(clients[when], _recorded(name))
    got = [(v["rule"], v["indicator"], v["actions"]) for v in map(card_view, cards)]
    assert got == [(rule, indicator, actions) for rule, indicator, actions in AT[when][1][name]]
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
    from cds_service.fhir.shape import normalise

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
