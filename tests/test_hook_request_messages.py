"""What a malformed hook request hears: a 400 whose message names the field and says what it must be, the
same words whatever parses the body; never the access token."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cds_service.cds_hooks.protocol import load_services, parse_hook_request
from cds_service.errors import ProtocolError

SERVICES = load_services()
SIGN, SELECT = SERVICES["lbp-order-sign"], SERVICES["lbp-order-select"]
TOKEN = "secret-token-never-echoed"
ORDER = {"resourceType": "ServiceRequest", "id": "mri", "status": "draft", "intent": "order"}
VALID: dict[str, Any] = {
    "hook": "order-sign",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "fhirServer": "https://ehr.example/fhir",
    "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer", "scope": "patient/*.read"},
    "context": {
        "userId": "Practitioner/1",
        "patientId": "p-1",
        "encounterId": "e-1",
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": ORDER}]},
    },
    "prefetch": {},
}


def changed(path: str, value: Any = ...) -> dict[str, Any]:
    """VALID with the field at `path` set to `value`, or removed when no value is given."""
    body = copy.deepcopy(VALID)
    node = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


CASES = [
    (["hook"], SIGN, "the request body must be a JSON object"),
    (changed("hook"), SIGN, "hook is required"),
    (changed("hook", 5), SIGN, "hook must be a non-empty string"),
    (changed("hook", " "), SIGN, "hook must be a non-empty string"),
    (changed("hook", "patient-view"), SIGN, "hook 'patient-view' does not match service 'lbp-order-sign'"),
    (changed("hookInstance"), SIGN, "hookInstance is required"),
    (changed("hookInstance", ["x"]), SIGN, "hookInstance must be a non-empty string"),
    (changed("hookInstance", "x" * 300), SIGN, "hookInstance is longer than"),
    (changed("hookInstance", "a\x00"), SIGN, "hookInstance contains a NUL character"),
    (changed("context"), SIGN, "context is required and must be a JSON object"),
    (changed("context", "p-1"), SIGN, "context is required and must be a JSON object"),
    (changed("context.patientId"), SIGN, "context.patientId is required"),
    (changed("context.patientId", 7), SIGN, "context.patientId must be a non-empty string"),
    (changed("context.patientId", "p" * 300), SIGN, "context.patientId is longer than"),
    (changed("context.userId"), SIGN, "context.userId is required"),
    (changed("context.userId", ""), SIGN, "context.userId must be a non-empty string"),
    (changed("context.encounterId", 3), SIGN, "context.encounterId must be a non-empty string"),
    (changed("context.encounterId", "e\x00"), SIGN, "context.encounterId contains a NUL character"),
    (changed("fhirServer", 1), SIGN, "fhirServer must be a non-empty string"),
    (changed("fhirServer"), SIGN, "fhirServer is required when fhirAuthorization is given"),
    (changed("fhirAuthorization", TOKEN), SIGN, "fhirAuthorization must be a JSON object"),
    (changed("fhirAuthorization.access_token"), SIGN, "fhirAuthorization.access_token is required"),
    (changed("fhirAuthorization.access_token", 42), SIGN, "fhirAuthorization.access_token must be a non-empty string"),
    (changed("fhirAuthorization.token_type", "MAC"), SIGN, "fhirAuthorization.token_type must be 'Bearer'"),
    (changed("fhirAuthorization.token_type", 1), SIGN, "fhirAuthorization.token_type must be 'Bearer'"),
    (changed("prefetch", ["not", "an", "object"]), SIGN, "prefetch must be a JSON object"),
    (changed("context.draftOrders"), SIGN, "context.draftOrders is required for order hooks"),
    (changed("context.draftOrders", {"resourceType": "Patient"}), SIGN, "context.draftOrders must be a FHIR Bundle"),
    (changed("context.draftOrders", [ORDER]), SIGN, "context.draftOrders must be a FHIR Bundle"),
    (changed("context.draftOrders.entry", {"resource": ORDER}), SIGN, "context.draftOrders.entry must be an array"),
    (changed("context.draftOrders.entry", [ORDER, {}]), SIGN, "context.draftOrders.entry[0] has no resource"),
    ({**changed("hook", "order-select")}, SELECT, "context.selections is required for order-select"),
    (
        {**changed("hook", "order-select"), "context": {**VALID["context"], "selections": "ServiceRequest/mri"}},
        SELECT,
        "context.selections must be an array of resource references such as 'ServiceRequest/1'",
    ),
    (
        {**changed("hook", "order-select"), "context": {**VALID["context"], "selections": [""]}},
        SELECT,
        "context.selections must be an array of resource references such as 'ServiceRequest/1'",
    ),
]


@pytest.mark.parametrize(("body", "service", "message"), CASES, ids=[m[:60] for _, _, m in CASES])
def test_a_malformed_hook_request_is_refused_with_a_message_naming_the_field(body, service, message) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_hook_request(body, service)
    assert refused.value.status == 400
    assert refused.value.message.startswith(message), refused.value.message
    assert TOKEN not in refused.value.message and TOKEN not in refused.value.reason


def test_a_well_formed_request_is_read_whole() -> None:
    request = parse_hook_request(VALID, SIGN)
    assert (request.hook, request.patient_id, request.user_id, request.encounter_id) == (
        "order-sign",
        "p-1",
        "Practitioner/1",
        "e-1",
    )
    assert (request.fhir_server, request.access_token) == ("https://ehr.example/fhir", TOKEN)
    assert [o["id"] for o in request.draft_orders] == ["mri"]


def test_what_real_clients_send_is_read() -> None:
    """A CDS Hooks 1.0 top-level `user`, a Bundle without `type`, null prefetch, other resources among the
    drafts, extensions: all read, none refused."""
    body = changed("context.userId")
    body["user"] = "Practitioner/9"
    body["prefetch"] = None
    body["extension"] = {"org.example": {"a": 1}}
    body["context"]["draftOrders"]["entry"].append({"resource": {"resourceType": "Patient", "id": "p-1"}})
    request = parse_hook_request(body, SIGN)
    assert (request.user_id, dict(request.prefetch), len(request.draft_orders)) == ("Practitioner/9", {}, 1)
