"""Input the database cannot store (too long for its column, or a NUL character, which PostgreSQL refuses)
is a 400 naming the field, before anything is written: the same answer on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cds_service.cds_hooks.limits import ID_MAX
from cds_service.storage.store import cards as card_log
from cds_service.storage.store import feedback
from cds_service.web.app import create_app

from .conftest import SERVICE_FOR_HOOK, count_rows, dev_settings, hook_request

SERVICE = f"/cds-services/{SERVICE_FOR_HOOK['order-sign'].id}"


def _rows(database_url: str) -> tuple[int, ...]:
    return count_rows(database_url, card_log, feedback)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b["context"].update(patientId="p" * (ID_MAX + 1)), f"context.patientId is longer than {ID_MAX}"),
        (lambda b: b["context"].update(encounterId="e" * (ID_MAX + 1)), "context.encounterId is longer than"),
        (lambda b: b.update(hookInstance="h" * (ID_MAX + 1)), "hookInstance is longer than"),
        (lambda b: b["context"].update(encounterId="enc\x00-1"), "context.encounterId contains a NUL character"),
        (lambda b: b["context"].update(patientId="lbp\x00acute"), "context.patientId contains a NUL character"),
    ],
)
def test_a_hook_call_that_cannot_be_stored_is_refused_before_any_write(database_url, change, message):
    client = create_app(dev_settings(database_url=database_url)).test_client()
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    change(body)
    response = client.post(SERVICE, json=body)
    assert response.status_code == 400
    assert message in response.get_json()["issue"][0]["diagnostics"]
    assert _rows(database_url) == (0, 0)


def test_the_longest_storable_ids_are_accepted(database_url):
    client = create_app(dev_settings(database_url=database_url)).test_client()
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    body["context"]["encounterId"] = "e" * ID_MAX
    body["hookInstance"] = "h" * ID_MAX
    response = client.post(SERVICE, json=body)
    assert response.status_code == 200 and response.get_json()["cards"]
    assert _rows(database_url)[0] == len(response.get_json()["cards"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"card": "c" * 65}, "feedback[0].card is longer than 64"),
        ({"overrideReason": {"reason": {"code": "r" * (ID_MAX + 1)}}}, "overrideReason.reason.code is longer"),
        ({"overrideReason": {"reason": {"code": "x", "system": "s" * 257}}}, "reason.system is longer than 256"),
        ({"overrideReason": {"userComment": "fine\x00not"}}, "overrideReason.userComment contains a NUL"),
    ],
)
def test_feedback_that_cannot_be_stored_is_refused_before_any_write(database_url, item, message):
    client = create_app(dev_settings(database_url=database_url)).test_client()
    answer = {"card": "0e5f3b4c-8a7d-4c1e-9f2a-1b3c5d7e9f00", "outcome": "overridden", **item}
    answer["outcomeTimestamp"] = "2026-11-27T10:00:00Z"
    response = client.post(f"{SERVICE}/feedback", json={"feedback": [answer]})
    assert response.status_code == 400
    assert message in response.get_json()["issue"][0]["diagnostics"]
    assert _rows(database_url) == (0, 0)
