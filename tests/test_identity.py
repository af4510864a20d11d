"""Isolation per EHR: card log, feedback and memory are scoped by the calling EHR (issuer and tenant), so
two EHRs that happen to share a patient id never see each other's answers; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy

from cds_service.storage.store import MIGRATIONS, Store
from cds_service.web.app import create_app

from .conftest import dev_settings, hook_request
from .postgres import free_port
from .test_trust import BASE, EC_KEY, OTHER_EC, SERVICE, auth_settings, jwk, token

EHR_A = "https://ehr-a.example.org"
EHR_B = "https://ehr-b.example.org"
ONLY_A = [{"iss": EHR_A, "jwks": {"keys": [jwk(EC_KEY, "a-1", "ES384")]}}]


@pytest.fixture
def two_ehr_app(tmp_path, database_url):
    ehrs = [
        {"iss": EHR_A, "jwks": {"keys": [jwk(EC_KEY, "a-1", "ES384")]}, "tenants": ["north", "south"]},
        {"iss": EHR_B, "jwks": {"keys": [jwk(OTHER_EC, "b-1", "ES384")]}},
    ]
    return create_app(auth_settings(tmp_path, ehrs, database_url=database_url))


def _as(issuer: str, path: str = SERVICE, **claims) -> dict[str, str]:
    key, kid = (EC_KEY, "a-1") if issuer == EHR_A else (OTHER_EC, "b-1")
    return {"Authorization": f"Bearer {token(key, kid=kid, iss=issuer, aud=BASE + path, **claims)}"}


def _imaging_cards(client, headers) -> list[dict]:
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    response = client.post(SERVICE, json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def _override(client, issuer, card, **claims) -> dict:
    headers = _as(issuer, f"{SERVICE}/feedback", **claims)
    answer = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": next(r for r in card["overrideReasons"] if r["code"] == "red-flag-undocumented")},
        "outcomeTimestamp": "2026-11-27T10:05:31Z",
    }
    return client.post(f"{SERVICE}/feedback", json={"feedback": [answer]}, headers=headers).get_json()


def test_an_override_by_one_ehr_does_not_hide_the_card_from_another(two_ehr_app):
    client = two_ehr_app.test_client()
    (card,) = _imaging_cards(client, _as(EHR_A))
    assert _override(client, EHR_A, card) == {"stored": 1}
    assert _imaging_cards(client, _as(EHR_A)) == []  # EHR A's clinician answered: held back for A
    assert len(_imaging_cards(client, _as(EHR_B))) == 1  # EHR B's patient with the same id still gets it


def test_tenants_of_one_issuer_are_kept_apart(two_ehr_app):
    client = two_ehr_app.test_client()
    (card,) = _imaging_cards(client, _as(EHR_A, tenant="north"))
    _override(client, EHR_A, card, tenant="north")
    assert _imaging_cards(client, _as(EHR_A, tenant="north")) == []
    assert len(_imaging_cards(client, _as(EHR_A, tenant="south"))) == 1


def test_one_ehr_cannot_answer_another_ehrs_card(two_ehr_app):
    client = two_ehr_app.test_client()
    (card,) = _imaging_cards(client, _as(EHR_A))
    assert _override(client, EHR_B, card) == {"stored": 1, "unknownCards": [card["uuid"]]}
    assert len(_imaging_cards(client, _as(EHR_A))) == 1  # B's answer changed nothing for A


def test_a_v3_database_moves_to_v4_with_its_records_as_the_local_identity(database_url):
    url = database_url
    client = create_app(dev_settings(database_url=url)).test_client()
    (card,) = client.post(SERVICE, json=hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")).get_json()[
        "cards"
    ]
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:  # back to v3: no caller columns, encounter memory keyed without it
        conn.execute(sqlalchemy.text("ALTER TABLE card_log DROP COLUMN caller"))
        conn.execute(sqlalchemy.text("ALTER TABLE feedback DROP COLUMN caller"))
        rows = [dict(r._mapping) for r in conn.execute(sqlalchemy.text("SELECT * FROM encounter_memory"))]
        conn.execute(sqlalchemy.text("DROP TABLE encounter_memory"))
        conn.execute(
            sqlalchemy.text(
                "CREATE TABLE encounter_memory (encounter_id VARCHAR(128) NOT NULL, rule VARCHAR(64) NOT NULL, "
                "target_ref VARCHAR(256) NOT NULL, target_fingerprint VARCHAR(64) NOT NULL, answered BOOLEAN NOT NULL, "
                "updated_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (encounter_id, rule, target_ref, target_fingerprint))"
            )
        )
        for row in rows:
            row.pop("caller")
            conn.execute(
                sqlalchemy.text(
                    "INSERT INTO encounter_memory VALUES (:encounter_id, :rule, :target_ref, :target_fingerprint, "
                    ":answered, :updated_at)"
                ),
                row,
            )
        conn.execute(sqlalchemy.text("UPDATE schema_version SET version = 3"))
    engine.dispose()
    store = Store(url)
    with store.engine.connect() as conn:
        version = conn.execute(sqlalchemy.text("SELECT max(version) FROM schema_version")).scalar()
        callers = conn.execute(sqlalchemy.text("SELECT DISTINCT caller FROM card_log")).scalars().all()
    assert version == len(MIGRATIONS) and callers == ["local"]
    history = store.encounter_history("local", "enc-1")
    assert history.shown_rules == {"lbp-imaging-no-red-flag"}
    assert card["uuid"]


def test_with_postgresql_a_token_used_on_one_instance_is_refused_on_another(tmp_path, postgres_server):
    url = postgres_server.new_database()

    def instance(name: str):
        # Each instance has its own local replay file: only the shared database can catch the replay.
        settings = auth_settings(tmp_path, ONLY_A, replay_db=tmp_path / f"{name}-jti.sqlite3", database_url=url)
        return create_app(settings).test_client()

    a, b = instance("a"), instance("b")
    headers = _as(EHR_A)
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    assert a.post(SERVICE, json=body, headers=headers).status_code == 200
    replayed = b.post(SERVICE, json=body, headers=headers)
    assert replayed.status_code == 401
    assert b.post(SERVICE, json=body, headers=_as(EHR_A)).status_code == 200  # a fresh token is fine


def test_when_the_shared_replay_record_cannot_answer_each_worker_refuses_replays_alone(tmp_path, postgres_server):
    app = create_app(auth_settings(tmp_path, ONLY_A, database_url=postgres_server.new_database()))
    client, store = app.test_client(), app.extensions["cds"].store
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE seen_jti"))
    headers = _as(EHR_A)
    started = time.monotonic()
    answered = client.post(SERVICE, json=body, headers=headers)
    assert answered.status_code == 200 and time.monotonic() - started < 5  # advice goes out
    assert client.post(SERVICE, json=body, headers=headers).status_code == 401  # this worker remembers
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "this worker only" in ready.get_json()["replay"]
    store.migrate()  # the table is back: the shared record answers again
    assert client.post(SERVICE, json=body, headers=_as(EHR_A)).status_code == 200
    assert "replay" not in client.get("/readyz").get_json()  # the write failure itself stays reported a minute


def test_an_instance_started_before_its_postgresql_waits_for_it():
    from .postgres import ThrowawayPostgres, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed; .ci/run installs them")
    late = ThrowawayPostgres(bin_dir)  # its port is chosen, nothing listens there yet
    stores: list[Store] = []
    waiting = threading.Thread(target=lambda: stores.append(Store(late.url("postgres"), wait_s=60)))
    waiting.start()
    time.sleep(1.0)
    assert waiting.is_alive() and stores == []  # still waiting, not failed
    try:
        late.start()
        waiting.join(timeout=60)
        assert stores and stores[0].readable()
    finally:
        late.stop()


def test_a_postgresql_that_never_answers_starts_degraded_after_the_wait():
    started = time.monotonic()
    store = Store(f"postgresql+psycopg://cds@127.0.0.1:{free_port()}/cds", wait_s=1.0)
    assert 1.0 <= time.monotonic() - started < 10
    assert store.degraded and not store.readable()


def test_the_report_is_given_per_ehr_per_service_and_per_week(two_ehr_app, monkeypatch, capsys):
    import json

    from cds_service.web.cli import main

    client = two_ehr_app.test_client()
    (card,) = _imaging_cards(client, _as(EHR_A))
    _imaging_cards(client, _as(EHR_B))
    _imaging_cards(client, _as(EHR_B))
    assert _override(client, EHR_A, card) == {"stored": 1}
    monkeypatch.setenv("CDS_DATABASE_URL", two_ehr_app.extensions["cds"].store.url)

    assert main(["report", "--by", "ehr", "--format", "json"]) == 0
    by_ehr = json.loads(capsys.readouterr().out)["groups"]
    assert {ehr: rules["lbp-imaging-no-red-flag"]["shown"] for ehr, rules in by_ehr.items()} == {EHR_A: 1, EHR_B: 2}
    assert by_ehr[EHR_A]["lbp-imaging-no-red-flag"]["overridden"] == 1
    assert by_ehr[EHR_B]["lbp-imaging-no-red-flag"]["overridden"] == 0  # A's answer is A's alone

    assert main(["report", "--by", "service", "--format", "json"]) == 0
    by_service = json.loads(capsys.readouterr().out)["groups"]
    assert by_service["lbp-order-sign"]["lbp-imaging-no-red-flag"]["shown"] == 3

    assert main(["report", "--by", "week", "--format", "json"]) == 0
    weeks = json.loads(capsys.readouterr().out)["groups"]
    assert sum(rules.get("lbp-imaging-no-red-flag", {}).get("shown", 0) for rules in weeks.values()) == 3
    assert main(["report", "--by", "ehr"]) == 0
    assert f"== ehr {EHR_B}" in capsys.readouterr().out
