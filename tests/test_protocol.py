"""CDS Hooks 2.0 protocol conformance: discovery, request validation, error answers, CORS.
Requirement IDs refer to shared/reference/cds-hooks/cds-hooks-2.0-service-requirements.csv."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import TOKEN, hook_request

PREFETCH_TOKEN = re.compile(r"\{\{([^}]*)\}\}")
ALLOWED_TOKENS = {"context.patientId", "context.userId", "context.encounterId"}


def outcome_message(response) -> str:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


# --- discovery (req 4, 5, 6, 7, 9, 10, 13, 29, 36, 55-59) ------------------------------------------


def test_discovery_lists_one_service_per_hook_with_required_fields(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert sorted(s["hook"] for s in services) == ["order-select", "order-sign", "patient-view"]
    for service in services:
        assert {"id", "hook", "title", "description", "prefetch"} <= set(service)
        assert all(isinstance(service[k], str) and service[k] for k in ("id", "hook", "title", "description"))


def test_discovery_prefetch_templates_use_only_context_tokens_and_the_recommended_subset(client):
    for service in client.get("/cds-services").get_json()["services"]:
        assert {"patient", "conditions"} <= set(service["prefetch"])
        for query in service["prefetch"].values():
            for token in PREFETCH_TOKEN.findall(query):
                assert token in ALLOWED_TOKENS
            params = query.partition("?")[2]
            for param in filter(None, params.split("&")):
                name = param.split("=", 1)[0]
                assert name in {"patient", "code", "status", "date", "_count", "_sort"}, name
                assert ":" not in name  # no modifiers beyond the spec's subset


def test_each_service_answers_at_its_discovered_id(client):
    for service in client.get("/cds-services").get_json()["services"]:
        body = hook_request(service["hook"], "lbp-acute", drafts="lumbar-mri")
        response = client.post(f"/cds-services/{service['id']}", json=body)
        assert response.status_code == 200
        assert isinstance(response.get_json()["cards"], list)


def test_a_patient_with_nothing_to_advise_gets_an_empty_cards_array(client):
    response = client.post("/cds-services/lbp-patient-view", json=hook_request("patient-view", "no-back-pain"))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_healthz_answers_ok(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "storage": "ok"}


# --- request errors -----------------------------------------------------------------------------------


def _valid() -> dict:
    return hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")


def _without(path: str) -> dict:
    body = _valid()
    node = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    del node[last]
    return body


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_without("hook"), "hook is required"),
        (_without("hookInstance"), "hookInstance is required"),
        (_without("context"), "context is required"),
        (_without("context.patientId"), "context.patientId is required"),
        (_without("context.userId"), "context.userId is required"),
        (_without("context.draftOrders"), "context.draftOrders is required"),
        ({**_valid(), "hook": "patient-view"}, "does not match service"),
        ({**_valid(), "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer"}}, "fhirServer is required"),
        ({**_valid(), "prefetch": ["not", "an", "object"]}, "prefetch must be a JSON object"),
        (
            {**_valid(), "context": {**_valid()["context"], "draftOrders": {"resourceType": "Patient"}}},
            "must be a FHIR Bundle",
        ),
        (["a", "list"], "must be a JSON object"),
    ],
    ids=[
        "missing hook",
        "missing hookInstance",
        "missing context",
        "missing patientId",
        "missing userId",
        "missing draftOrders",
        "wrong hook",
        "fhirAuthorization without fhirServer",
        "prefetch not an object",
        "draftOrders not a Bundle",
        "body not an object",
    ],
)
def test_invalid_requests_get_400_naming_the_problem(client, body, fragment):
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 400
    assert fragment in outcome_message(response)


def test_order_select_without_selections_is_400(client):
    body = hook_request("order-select", "lbp-acute", drafts="lumbar-mri")
    del body["context"]["selections"]
    response = client.post("/cds-services/lbp-order-select", json=body)
    assert response.status_code == 400
    assert "context.selections is required" in outcome_message(response)


def test_malformed_json_is_400_with_position(client):
    response = client.post(
        "/cds-services/lbp-order-sign", data='{"hook": "order-sign",', content_type="application/json"
    )
    assert response.status_code == 400
    assert "not valid JSON at line 1" in outcome_message(response)


def test_unknown_service_is_404(client):
    response = client.post("/cds-services/no-such-service", json=_valid())
    assert response.status_code == 404
    assert "no-such-service" in outcome_message(response)


def test_wrong_method_is_405(client):
    response = client.get("/cds-services/lbp-order-sign")
    assert response.status_code == 405
    assert "GET" in outcome_message(response)


def test_non_json_content_type_is_415(client):
    response = client.post("/cds-services/lbp-order-sign", data="hook=order-sign", content_type="text/plain")
    assert response.status_code == 415


def test_body_over_the_size_limit_is_413(app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    body = json.dumps({**_valid(), "padding": "x" * 2048})
    response = app.test_client().post("/cds-services/lbp-order-sign", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than" in outcome_message(response)


def test_error_answers_never_echo_the_access_token(client):
    body = {**_valid(), "fhirAuthorization": {"access_token": TOKEN, "token_type": "MAC"}, "fhirServer": "https://x"}
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 400
    assert TOKEN not in response.get_data(as_text=True)


# --- tolerance for what real clients send ----------------------------------------------------------


def test_draft_orders_without_bundle_type_and_missing_required_elements_are_read(client):
    body = _valid()
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    for element in ("status", "intent"):
        order.pop(element, None)
    assert "type" not in body["context"]["draftOrders"]
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


def test_cds_hooks_1_0_style_user_and_extra_fields_are_accepted(client):
    body = _valid()
    body["user"] = body["context"].pop("userId")
    body["extension"] = {"org.example.anything": {"a": 1}}
    body["context"]["somethingNew"] = True
    assert client.post("/cds-services/lbp-order-sign", json=body).status_code == 200


def test_null_and_operation_outcome_prefetch_keys_count_as_missing(client):
    body = _valid()
    body["prefetch"]["observations"] = None
    body["prefetch"]["medicationRequests"] = {"resourceType": "OperationOutcome", "issue": []}
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 200
    detail = response.get_json()["cards"][0]["detail"]
    assert "Not checked" in detail and "body temperature" in detail.lower() and "medication orders" in detail.lower()


# --- CORS (req 208) ------------------------------------------------------------------------------------


def test_cors_preflight_allows_authorization_and_content_type(client):
    response = client.options(
        "/cds-services/lbp-order-sign",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 204
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Origin"] in {"*", "https://sandbox.cds-hooks.org"}


def test_cors_origins_are_configurable(settings):
    from cds_service.web.app import create_app

    app = create_app(settings.with_overrides(cors_origins=("https://ehr.example.org",)))
    allowed = app.test_client().get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    other = app.test_client().get("/cds-services", headers={"Origin": "https://evil.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert "Access-Control-Allow-Origin" not in other.headers


def test_the_request_log_line_carries_the_reason_a_call_was_refused(client, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="cds_service"):
        response = client.post("/cds-services/lbp-order-sign", json={"hook": "order-sign"})
    assert response.status_code == 400
    line = next(r for r in caplog.records if r.getMessage() == "request")
    assert line.reason == response.get_json()["issue"][0]["diagnostics"]


def test_a_log_line_with_a_lone_surrogate_or_a_huge_integer_is_still_one_json_line():
    import logging

    from cds_service.logs import JsonFormatter

    record = logging.LogRecord("cds_service.http", logging.INFO, __file__, 1, "request", None, None)
    record.reason = "bad \ud800 value"
    record.count = 2**70
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["count"] == 2**70


def test_every_answer_carries_the_security_headers_once_whatever_its_status(client):
    answers = [
        client.get("/cds-services"),
        client.post("/cds-services/lbp-order-sign", json=hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")),
        client.post("/cds-services/lbp-order-sign", data="{", content_type="application/json"),  # 400
        client.post("/cds-services/no-such-service", json={}),  # 404
        client.open("/cds-services/lbp-order-sign", method="OPTIONS"),  # CORS preflight, 204
    ]
    assert [a.status_code for a in answers] == [200, 200, 400, 404, 204]
    for answer in answers:
        headers = [(k.lower(), v) for k, v in answer.headers.items()]
        assert headers.count(("x-content-type-options", "nosniff")) == 1
        assert headers.count(("cache-control", "no-store")) == 1
        assert headers.count(("referrer-policy", "no-referrer")) == 1
        assert [k for k, _ in headers].count("cache-control") == 1
