"""Advice survives a storage outage: with the real PostgreSQL stopped under a running instance, a hook call
still answers its cards (the red flag above all) within the deadline, /readyz says degraded, feedback that
cannot be stored is a 503 with Retry-After (never a 200); when the server is back the instance reconnects by
itself. With authentication on, a locked SQLite replay file makes each worker refuse replays alone, within a
second, instead of a 500 or a 10-second wait."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from cds_service.web.app import create_app

from .builders import condition, hook_body, lumbar_mri, patient
from .conftest import dev_settings
from .postgres import ThrowawayPostgres, find_bin_dir
from .test_identity import EHR_A, ONLY_A, SERVICE, _as
from .test_trust import auth_settings

CAUDA_EQUINA = [patient(50), condition(icd="M54.50", days_ago=10), condition(icd="G83.4", days_ago=1)]


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL of this test's own, so stopping it touches no other test."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed; .ci/run installs them")
    server = ThrowawayPostgres(bin_dir)
    server.start()
    yield server
    server.stop()


def _critical(client) -> tuple[int, list[str], float]:
    started = time.monotonic()
    response = client.post(
        "/cds-services/lbp-order-sign", json=hook_body("order-sign", CAUDA_EQUINA, drafts=[lumbar_mri()])
    )
    took = time.monotonic() - started
    return response.status_code, [c["indicator"] for c in response.get_json().get("cards", [])], took


def test_a_postgresql_outage_still_gets_the_red_flag_card_and_the_instance_reconnects(own_postgres):
    app = create_app(dev_settings(database_url=own_postgres.new_database()))
    client = app.test_client()
    assert _critical(client)[:2] == (200, ["critical"])
    own_postgres.pause()
    try:
        status, indicators, took = _critical(client)
        assert (status, indicators) == (200, ["critical"]) and took < 5
        assert client.get("/readyz").status_code == 503
        answer = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z"}
        refused = client.post("/cds-services/lbp-order-sign/feedback", json={"feedback": [answer]})
        assert refused.status_code == 503 and refused.headers["Retry-After"]
    finally:
        own_postgres.resume()
    assert _critical(client)[:2] == (200, ["critical"])
    stored = client.post(
        "/cds-services/lbp-order-sign/feedback",
        json={"feedback": [{"card": "c-2", "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z"}]},
    )
    assert stored.status_code == 200  # reconnected, no restart


def test_a_locked_replay_file_lets_each_worker_refuse_replays_alone_within_a_second(tmp_path):
    app = create_app(auth_settings(tmp_path, ONLY_A))
    client = app.test_client()
    body = hook_body("order-sign", CAUDA_EQUINA, drafts=[lumbar_mri()])
    holder = sqlite3.connect(tmp_path / "jti.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the file
    try:
        headers = _as(EHR_A)
        started = time.monotonic()
        answered = client.post(SERVICE, json=body, headers=headers)
        assert answered.status_code == 200 and time.monotonic() - started < 2.5
        assert [c["indicator"] for c in answered.get_json()["cards"]] == ["critical"]
        assert client.post(SERVICE, json=body, headers=headers).status_code == 401  # the replay, same worker
        assert "this worker only" in client.get("/readyz").get_json()["replay"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.post(SERVICE, json=body, headers=_as(EHR_A)).status_code == 200
    assert "replay" not in client.get("/readyz").get_json()


def test_an_instance_starts_while_its_postgresql_is_down_and_makes_its_schema_when_it_answers():
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed; .ci/run installs them")
    late = ThrowawayPostgres(bin_dir)  # its port is chosen, nothing listens there yet
    app = create_app(dev_settings(database_url=late.url("postgres"), database_wait_s=0.5))
    client = app.test_client()
    try:
        assert _critical(client)[:2] == (200, ["critical"])  # started, and answering
        assert client.get("/readyz").status_code == 503
        late.start()
        answer = {"card": "c-9", "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z"}
        deadline = time.monotonic() + 20
        stored = None
        while time.monotonic() < deadline:
            stored = client.post("/cds-services/lbp-order-sign/feedback", json={"feedback": [answer]})
            if stored.status_code == 200:
                break
            time.sleep(0.5)
        assert stored is not None and stored.status_code == 200  # the schema was made once the server answered
    finally:
        late.stop()
