"""Golden clinical scenarios (fhir_fixtures/scenarios.json), each run three ways with the same expected cards:
full prefetch; no prefetch with a stubbed FHIR server (`responses`); no prefetch against the real local FHIR server."""

from __future__ import annotations

import importlib.util
import re
import time
from typing import Any

import pytest
import responses

from cds_service.devtools.fixture_search import path_and_query, search
from cds_service.web.app import create_app

from .cards_view import card_view, red_flag_categories_named, target_of, variant_of
from .conftest import FAKE_FHIR, SERVICE_FOR_HOOK, TOKEN, dev_settings, hook_request, patient_resources, scenarios

SCENARIOS = scenarios()
IDS = [s["name"] for s in SCENARIOS]


def _request(scenario: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return hook_request(
        scenario["hook"],
        scenario["patient"],
        drafts=scenario.get("draft_orders"),
        selections=scenario.get("selections"),
        **kwargs,
    )


def _check(scenario: dict[str, Any], response: Any) -> None:
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    expected = [{k: e[k] for k in ("rule", "indicator", "actions")} for e in scenario["expect"]]
    assert [card_view(c) for c in cards] == expected
    for card, want in zip(cards, scenario["expect"], strict=True):
        # Which order the card would withdraw or change, and which variant of its text it shows.
        assert target_of(card) == want["target"]
        assert variant_of(card) == want.get("variant")
        if want["rule"] == "lbp-red-flag":
            assert red_flag_categories_named(card) == set(want["red_flags"])


def _service_url(scenario: dict[str, Any]) -> str:
    return f"/cds-services/{SERVICE_FOR_HOOK[scenario['hook']].id}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_scenario_with_full_prefetch(client, scenario):
    _check(scenario, client.post(_service_url(scenario), json=_request(scenario, prefetch="full")))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
@responses.activate
def test_scenario_without_prefetch_from_stubbed_fhir_server(client, scenario):
    pool = patient_resources(scenario["patient"])

    def answer(request):
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return (
            200,
            {"Content-Type": "application/fhir+json"},
            __import__("json").dumps(search(pool, path_and_query(request.url, FAKE_FHIR))),
        )

    responses.add_callback(responses.GET, re.compile(re.escape(FAKE_FHIR) + r"/.*"), callback=answer)
    body = _request(scenario, prefetch="none", fhir_server=FAKE_FHIR)
    _check(scenario, client.post(_service_url(scenario), json=body))
    assert len(responses.calls) == len(SERVICE_FOR_HOOK[scenario["hook"]].prefetch)


@pytest.mark.integration
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_scenario_without_prefetch_from_real_fhir_server(local_fhir, scenario):
    app = create_app(dev_settings(allow_insecure_fhir_http=True, allowed_fhir_servers=(local_fhir.base_url,)))
    body = _request(scenario, prefetch="none", fhir_server=local_fhir.base_url)
    _check(scenario, app.test_client().post(_service_url(scenario), json=body))


@pytest.mark.integration
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_scenario_with_partial_prefetch_and_the_rest_from_real_fhir_server(local_fhir, scenario):
    app = create_app(dev_settings(allow_insecure_fhir_http=True, allowed_fhir_servers=(local_fhir.base_url,)))
    body = _request(scenario, prefetch="full", fhir_server=local_fhir.base_url)
    # The EHR prefetched the problem list only (and sent one key as null): everything else is fetched.
    body["prefetch"] = {"conditions": body["prefetch"]["conditions"], "observations": None}
    before = len(local_fhir.requests)
    _check(scenario, app.test_client().post(_service_url(scenario), json=body))
    service = SERVICE_FOR_HOOK[scenario["hook"]]
    expected = len(service.prefetch) - 1
    deadline = time.monotonic() + 5  # the server logs each request just after answering it
    while len(local_fhir.requests) - before < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    fetched = sorted(r["path"].split("/")[2] for r in local_fhir.requests[before:])
    assert fetched == sorted(k.query.split("/")[0].split("?")[0] for k in service.prefetch if k.name != "conditions")


REFERENCE = re.compile(r"\b([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")


def _is_fhir_resource_type(word: str) -> bool:
    """A FHIR R4 resource type name: fhir.resources has a model module for each (ACP/APS is a citation)."""
    return importlib.util.find_spec(f"fhir.resources.R4B.{word.lower()}") is not None


def test_the_reference_check_knows_a_fhir_reference_from_a_citation():
    assert [m.group(1) for m in REFERENCE.finditer("Condition/lbp-1 and ACP/APS")] == ["Condition", "ACP"]
    assert _is_fhir_resource_type("Condition") and _is_fhir_resource_type("QuestionnaireResponse")
    assert not _is_fhir_resource_type("ACP")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_every_card_reads_in_ten_seconds_summary_under_140_and_no_raw_fhir_id(client, scenario):
    """Issue 30: a summary the EHR shows whole, and a detail that names record entries in words."""
    cards = client.post(_service_url(scenario), json=_request(scenario, prefetch="full")).get_json()["cards"]
    for card in cards:
        assert len(card["summary"]) < 140, card["summary"]
        raw = [m.group(0) for m in REFERENCE.finditer(card.get("detail", "")) if _is_fhir_resource_type(m.group(1))]
        assert raw == [], card["detail"]
