"""No client input produces a 500: every field of a valid request replaced by junk of every JSON type."""

from __future__ import annotations

import copy
import json

import pytest

from .conftest import hook_request

JUNK = [None, 0, -1, 3.5, True, "", "x", [], [None], {}, {"resourceType": "OperationOutcome"}, {"entry": "nope"}]


def _paths(node, prefix=()):
    """Every path into a JSON document (object keys and list indexes)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield from _paths(value, (*prefix, index))


def _replace(document, path, value):
    doc = copy.deepcopy(document)
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("service", "hook", "patient", "drafts"),
    [
        ("lbp-order-sign", "order-sign", "lbp-cauda-equina", "mri-and-bed-rest"),
        ("lbp-order-select", "order-select", "lbp-persistent", "ibuprofen-800-q4h"),
        ("lbp-patient-view", "patient-view", "lbp-on-chart-orders", None),
    ],
)
def test_junk_anywhere_in_a_request_is_never_a_server_error(client, service, hook, patient, drafts):
    valid = hook_request(hook, patient, drafts=drafts)
    paths = list(_paths(valid))
    assert len(paths) > 100
    checked = 0
    for path in paths:
        for junk in JUNK:
            body = json.dumps(_replace(valid, path, junk))
            response = client.post(f"/cds-services/{service}", data=body, content_type="application/json")
            assert response.status_code < 500, (path, junk, response.get_data(as_text=True)[:300])
            assert response.is_json
            checked += 1
    assert checked == len(paths) * len(JUNK)


def test_junk_anywhere_in_feedback_is_never_a_server_error(client):
    valid = {
        "feedback": [
            {
                "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": "other", "system": "https://x"}, "userComment": "c"},
                "outcomeTimestamp": "2026-11-27T00:00:00Z",
            },
            {
                "card": "c2",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "s"}],
                "outcomeTimestamp": "2026-11-27T00:00:00Z",
            },
        ]
    }
    for path in _paths(valid):
        for junk in JUNK:
            body = json.dumps(_replace(valid, path, junk))
            response = client.post("/cds-services/lbp-order-sign/feedback", data=body, content_type="application/json")
            assert response.status_code < 500, (path, junk, response.get_data(as_text=True)[:300])


def test_a_lone_surrogate_in_the_request_is_a_400_not_a_500(client):
    from .conftest import hook_request

    body = json.dumps(hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")).replace(
        '"hookInstance": "', '"hookInstance": "\\ud800', 1
    )
    response = client.post("/cds-services/lbp-order-sign", data=body, content_type="application/json")
    assert response.status_code == 400 and "surrogate" in response.get_json()["issue"][0]["diagnostics"]


def test_a_body_nested_ten_thousand_deep_is_a_400(client):
    body = "[" * 10_000 + "]" * 10_000
    response = client.post("/cds-services/lbp-order-sign", data=body, content_type="application/json")
    assert response.status_code == 400 and "nested" in response.get_json()["issue"][0]["diagnostics"]


def test_an_outcome_timestamp_outside_the_storable_range_is_a_400(client):
    item = {"card": "c", "outcome": "overridden", "outcomeTimestamp": "0001-01-01T00:00:00+05:00"}
    response = client.post("/cds-services/lbp-order-sign/feedback", json={"feedback": [item]})
    assert response.status_code == 400 and "outcomeTimestamp" in response.get_json()["issue"][0]["diagnostics"]
