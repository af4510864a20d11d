"""Patient data: prefetch first, then the EHR's FHIR server; failures mapped to 412 or to named gaps."""

from __future__ import annotations

import json
import logging
import re
import threading

import pytest
import requests
import responses

from cds_service.devtools.fixture_search import path_and_query, search
from cds_service.web.app import create_app

from .conftest import FAKE_FHIR, SERVICE_FOR_HOOK, TOKEN, dev_settings, hook_request, patient_resources

ANY_FHIR_URL = re.compile(re.escape(FAKE_FHIR) + r"/.*")
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def no_prefetch(patient="lbp-acute", hook="order-sign", **kw):
    return hook_request(hook, patient, drafts="lumbar-mri", prefetch="none", fhir_server=FAKE_FHIR, **kw)


def serve_fixture(patient="lbp-acute", *, fail=None):
    """Answer FHIR GETs from a fixture patient; `fail(query)` may return (status, body) to fail one query."""
    pool = patient_resources(patient)

    def answer(request):
        query = path_and_query(request.url, FAKE_FHIR)
        if fail and (failure := fail(query)):
            return failure[0], FHIR_JSON, failure[1]
        return 200, FHIR_JSON, json.dumps(search(pool, query))

    responses.add_callback(responses.GET, ANY_FHIR_URL, callback=answer)


def outcome(response) -> str:
    return response.get_json()["issue"][0]["diagnostics"]


@responses.activate
def test_the_bearer_token_and_fhir_accept_header_go_on_every_call(client):
    serve_fixture()
    assert client.post("/cds-services/lbp-order-sign", json=no_prefetch()).status_code == 200
    # patient, conditions, observations, medicationRequests, medicationStatements, procedures, encounters,
    # questionnaireResponses, allergyIntolerances
    assert len(responses.calls) == 9
    for call in responses.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.request.headers["Accept"] == "application/fhir+json"


@responses.activate
def test_only_missing_prefetch_keys_are_fetched(client):
    serve_fixture()
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri", fhir_server=FAKE_FHIR)
    del body["prefetch"]["conditions"]
    assert client.post("/cds-services/lbp-order-sign", json=body).status_code == 200
    assert [path_and_query(c.request.url, FAKE_FHIR) for c in responses.calls] == ["Condition?patient=lbp-acute"]


def test_required_data_without_prefetch_or_fhir_server_is_412(client):
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri", prefetch="none")
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 412
    assert "conditions" in outcome(response) and "no fhirServer" in outcome(response)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ((401, "{}"), "refused access (HTTP 401)"),
        ((403, "{}"), "refused access (HTTP 403)"),
        ((500, "{}"), "failed (HTTP 500)"),
        ((200, "<html>not json</html>"), "not JSON"),
        ((302, ""), "redirected"),
    ],
    ids=["401", "403", "500", "garbage", "redirect"],
)
@responses.activate
def test_a_failing_required_query_is_412_naming_what_and_why(client, failure, reason):
    serve_fixture(fail=lambda q: failure if q.startswith("Condition") else None)
    response = client.post("/cds-services/lbp-order-sign", json=no_prefetch())
    assert response.status_code == 412
    assert "conditions" in outcome(response) and reason in outcome(response)
    assert TOKEN not in response.get_data(as_text=True)


@responses.activate
def test_a_failing_optional_query_gives_cards_that_say_what_was_not_checked(client):
    serve_fixture(fail=lambda q: (503, "{}") if q.startswith("Observation") else None)
    response = client.post("/cds-services/lbp-order-sign", json=no_prefetch())
    assert response.status_code == 200
    detail = response.get_json()["cards"][0]["detail"]
    assert "Not checked" in detail and "body temperature" in detail.lower() and "HTTP 503" in detail


def test_an_unreachable_fhir_server_is_412(settings):
    app = create_app(settings.with_overrides(allowed_fhir_servers=("https://127.0.0.1:9",), fhir_retries=0))
    body = hook_request(
        "order-sign", "lbp-acute", drafts="lumbar-mri", prefetch="none", fhir_server="https://127.0.0.1:9"
    )
    response = app.test_client().post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 412
    assert "could not be reached" in outcome(response)


@responses.activate
def test_a_read_timeout_is_412_and_not_retried(client):
    responses.add(responses.GET, ANY_FHIR_URL, body=requests.ReadTimeout())
    response = client.post("/cds-services/lbp-order-sign", json=no_prefetch())
    assert response.status_code == 412
    assert "did not answer in time" in outcome(response)
    assert len(responses.calls) == 9  # one per query, no retries


@responses.activate
def test_connection_errors_are_retried_then_succeed():
    from cds_service.fhir.client import FhirClient

    url = f"{FAKE_FHIR}/Patient/1"
    responses.add(responses.GET, url, body=requests.ConnectionError())
    responses.add(responses.GET, url, json={"resourceType": "Patient", "id": "1"})
    client = FhirClient(dev_settings(fhir_retries=2))
    assert client.read_json(url, TOKEN)["id"] == "1"
    assert len(responses.calls) == 2


@responses.activate
def test_429_with_retry_after_is_retried_but_500_is_not():
    from cds_service.errors import FhirAccessError
    from cds_service.fhir.client import FhirClient

    busy, broken = f"{FAKE_FHIR}/Patient/busy", f"{FAKE_FHIR}/Patient/broken"
    responses.add(responses.GET, busy, status=429, headers={"Retry-After": "0"})
    responses.add(responses.GET, busy, json={"resourceType": "Patient", "id": "busy"})
    responses.add(responses.GET, broken, status=500)
    client = FhirClient(dev_settings(fhir_retries=2))
    assert client.read_json(busy, None)["id"] == "busy"
    with pytest.raises(FhirAccessError):
        client.read_json(broken, None)
    assert [c.request.url for c in responses.calls] == [busy, busy, broken]


@responses.activate
def test_a_long_retry_after_is_not_waited_for():
    from cds_service.errors import FhirAccessError
    from cds_service.fhir.client import FhirClient

    url = f"{FAKE_FHIR}/Patient/1"
    responses.add(responses.GET, url, status=503, headers={"Retry-After": "120"})
    with pytest.raises(FhirAccessError, match="HTTP 503"):
        FhirClient(dev_settings(fhir_retries=2)).read_json(url, None)
    assert len(responses.calls) == 1


def _page(n, next_url=None):
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Condition", "id": f"c{n}-{i}"}} for i in range(2)],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


@responses.activate
def test_paging_is_followed_and_bounded():
    from cds_service.fhir.client import FhirClient

    for n in range(5):
        responses.add(
            responses.GET, f"{FAKE_FHIR}/Condition?page={n}", json=_page(n, f"{FAKE_FHIR}/Condition?page={n + 1}")
        )
    client = FhirClient(dev_settings(fhir_max_pages=3))
    result = client.search(FAKE_FHIR, "Condition?page=0", TOKEN)
    assert [r["id"] for r in result.resources] == ["c0-0", "c0-1", "c1-0", "c1-1", "c2-0", "c2-1"]
    assert result.truncated and result.requests == 3
    limited = FhirClient(dev_settings(fhir_max_resources=3)).search(FAKE_FHIR, "Condition?page=0", TOKEN)
    assert len(limited.resources) == 3 and limited.truncated


@responses.activate
def test_a_paging_link_to_another_host_is_not_followed():
    from cds_service.errors import FhirAccessError
    from cds_service.fhir.client import FhirClient

    responses.add(responses.GET, f"{FAKE_FHIR}/Condition", json=_page(0, "https://attacker.example/steal"))
    with pytest.raises(FhirAccessError, match="outside the FHIR server"):
        FhirClient(dev_settings()).search(FAKE_FHIR, "Condition", TOKEN)
    assert len(responses.calls) == 1


@responses.activate
def test_a_prefetched_searchset_with_a_next_link_is_followed(client):
    serve_fixture("lbp-cauda-equina")
    body = hook_request("order-sign", "lbp-cauda-equina", drafts="lumbar-mri", fhir_server=FAKE_FHIR)
    full = body["prefetch"]["conditions"]
    # The EHR prefetched only the first page (the back pain); the red flag is on page two.
    first = [e for e in full["entry"] if e["resource"]["id"].endswith("-lbp")]
    body["prefetch"]["conditions"] = {
        **full,
        "entry": first,
        "link": [{"relation": "next", "url": f"{FAKE_FHIR}/Condition?patient=lbp-cauda-equina"}],
    }
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["source"]["topic"]["code"] == "LBPRedFlag"


@responses.activate
def test_a_truncated_result_is_said_on_the_card(settings):
    serve_fixture()
    app = create_app(settings.with_overrides(fhir_max_resources=1))
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri", fhir_server=FAKE_FHIR)
    extra = {
        "resourceType": "Observation",
        "id": "t2",
        "status": "final",
        "subject": {"reference": "Patient/lbp-acute"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
    }
    body["prefetch"]["observations"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": extra}],
        "link": [{"relation": "next", "url": f"{FAKE_FHIR}/Observation?patient=lbp-acute"}],
    }
    response = app.test_client().post("/cds-services/lbp-order-sign", json=body)
    assert "only the first 1 resources were checked" in response.get_json()["cards"][0]["detail"]


@pytest.mark.parametrize(
    "server",
    [
        "https://evil.example/fhir",
        "https://ehr.example.org.evil.example/fhir",
        "https://ehr.example.org/fhirx",
        "http://ehr.example.org/fhir",
        "https://user:pw@ehr.example.org/fhir",
        "file:///etc/passwd",
    ],
)
@responses.activate
def test_a_disallowed_fhir_server_is_refused_before_any_request(client, server):
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri", prefetch="none", fhir_server=server)
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 400
    assert "fhirServer" in outcome(response)
    assert len(responses.calls) == 0


@responses.activate
def test_the_queries_of_one_request_run_concurrently(client):
    # Every query of the call must be in flight at once to pass the barrier; run in rounds, they would time out.
    queries = len(SERVICE_FOR_HOOK["order-sign"].prefetch)
    assert queries <= client.application.extensions["cds"].settings.fhir_concurrency
    barrier = threading.Barrier(queries, timeout=5)
    pool = patient_resources("lbp-acute")

    def answer(request):
        barrier.wait()
        return 200, FHIR_JSON, json.dumps(search(pool, path_and_query(request.url, FAKE_FHIR)))

    responses.add_callback(responses.GET, ANY_FHIR_URL, callback=answer)
    response = client.post("/cds-services/lbp-order-sign", json=no_prefetch())
    assert response.status_code == 200 and len(response.get_json()["cards"]) == 1


def test_an_invalid_resource_is_skipped_logged_by_type_and_id_and_named_on_the_card(client, caplog):
    body = hook_request("order-sign", "lbp-cauda-equina", drafts="lumbar-mri")
    for entry in body["prefetch"]["conditions"]["entry"]:
        if entry["resource"]["id"].endswith("-ces"):
            entry["resource"]["clinicalStatus"] = "active"  # a string where a CodeableConcept belongs
            ces_id = entry["resource"]["id"]
    with caplog.at_level(logging.WARNING, logger="cds_service"):
        response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 200
    skipped = [r for r in caplog.records if r.getMessage() == "skipping invalid FHIR resource"]
    assert [(r.resource_type, r.resource_id) for r in skipped] == [("Condition", ces_id)]
    assert "Cauda equina" not in caplog.text
    detail = response.get_json()["cards"][0]["detail"]
    assert f"Condition/{ces_id}: is not valid FHIR and could not be read" in detail


def test_entered_in_error_and_refuted_items_never_count():
    from cds_service.fhir.facts import is_excluded

    assert is_excluded({"resourceType": "Observation", "status": "entered-in-error"})
    assert is_excluded({"resourceType": "Condition", "verificationStatus": {"coding": [{"code": "refuted"}]}})
    assert not is_excluded({"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "resolved"}]}})


def test_without_observations_no_startback_screening_is_suggested(client):
    body = hook_request("patient-view", "lbp-startback-due")
    full = client.post("/cds-services/lbp-patient-view", json=body).get_json()["cards"]
    assert "LBPStarTBackScreen" in [c["source"]["topic"]["code"] for c in full]
    body["prefetch"]["observations"] = None  # and no fhirServer: the Observations cannot be had
    again = client.post(
        "/cds-services/lbp-patient-view", json={**body, "context": {**body["context"], "encounterId": "enc-2"}}
    )
    assert "LBPStarTBackScreen" not in [c["source"]["topic"]["code"] for c in again.get_json()["cards"]]


def test_an_opioid_card_says_when_medication_history_could_not_be_checked(client):
    body = hook_request("order-sign", "lbp-acute", drafts="tramadol")
    body["prefetch"]["medicationRequests"] = None
    card = client.post("/cds-services/lbp-order-sign", json=body).get_json()["cards"][0]
    assert card["source"]["topic"]["code"] == "LBPOpioidBeforeNSAID"
    assert "Not checked" in card["detail"] and "medication orders" in card["detail"]


def test_a_malformed_order_template_stops_the_service_from_starting():
    import dataclasses

    from cds_service.cards.render import validate_order_templates
    from cds_service.knowledge.model import knowledge

    kb = knowledge()
    broken = {**kb.cards.cards, "order_templates": {"bad": {"resourceType": "ServiceRequest", "status": 42}}}
    with pytest.raises(RuntimeError, match="order template 'bad'"):
        validate_order_templates(dataclasses.replace(kb, cards=dataclasses.replace(kb.cards, cards=broken)))
