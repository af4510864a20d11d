"""Feedback is idempotent: an EHR retrying after a dropped connection stores its answer once (the card's
uuid, the outcome and the outcomeTimestamp identify it), on SQLite and PostgreSQL."""

from __future__ import annotations

from cds_service.storage.store import feedback
from cds_service.web.app import create_app

from .conftest import SERVICE_FOR_HOOK, count_rows, dev_settings, hook_request

SERVICE = f"/cds-services/{SERVICE_FOR_HOOK['order-sign'].id}"


def _feedback_rows(database_url: str) -> int:
    (count,) = count_rows(database_url, feedback)
    return count


def test_a_retried_feedback_post_is_stored_once(database_url):
    client = create_app(dev_settings(database_url=database_url)).test_client()
    card = client.post(SERVICE, json=hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")).get_json()["cards"][
        0
    ]
    answer = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": card["overrideReasons"][0]},
        "outcomeTimestamp": "2026-11-27T10:05:31Z",
    }
    first = client.post(f"{SERVICE}/feedback", json={"feedback": [answer]})
    retry = client.post(f"{SERVICE}/feedback", json={"feedback": [answer, answer]})
    assert first.status_code == retry.status_code == 200
    assert _feedback_rows(database_url) == 1
    # The same instant written with another offset is the same answer.
    same_instant = {**answer, "outcomeTimestamp": "2026-11-27T11:05:31+01:00"}
    client.post(f"{SERVICE}/feedback", json={"feedback": [same_instant]})
    assert _feedback_rows(database_url) == 1
    # A later answer to the same card is a new answer.
    later = {**answer, "outcomeTimestamp": "2026-11-27T10:07:00Z"}
    client.post(f"{SERVICE}/feedback", json={"feedback": [later]})
    assert _feedback_rows(database_url) == 2
