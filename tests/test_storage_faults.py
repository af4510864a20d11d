"""Advice survives storage failure (issue 19, item 3): with a read-only database the critical red-flag card
still goes out, /readyz reports the storage as degraded, and feedback that cannot be stored is a 503 with
Retry-After, never a 200. The database is made read-only for real (SQLite's mode=ro), not mocked."""

from __future__ import annotations

from cds_service.storage.store import Store
from cds_service.web.app import create_app

from .conftest import dev_settings, hook_request


def test_a_read_only_database_still_gets_the_critical_card_and_feedback_is_refused_with_retry(tmp_path):
    path = tmp_path / "cds.sqlite3"
    Store(f"sqlite:///{path}")  # created and migrated while writable
    app = create_app(dev_settings(database_url=f"sqlite:///file:{path}?mode=ro&uri=true"))
    client = app.test_client()
    body = hook_request("order-sign", "lbp-cauda-equina", drafts="lumbar-mri")
    response = client.post("/cds-services/lbp-order-sign", json=body)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards and cards[0]["indicator"] == "critical"

    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["storage"] == "failing"
    assert client.get("/healthz").get_json() == {"status": "ok", "storage": "degraded"}

    item = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z"}
    stored = client.post("/cds-services/lbp-order-sign/feedback", json={"feedback": [item]})
    assert stored.status_code == 503 and stored.headers["Retry-After"] == "5"
    assert "retry" in stored.get_json()["issue"][0]["diagnostics"]


def test_a_writable_database_is_ready(tmp_path):
    client = create_app(dev_settings(database_url=f"sqlite:///{tmp_path / 'ok.sqlite3'}")).test_client()
    assert client.get("/readyz").status_code == 200
