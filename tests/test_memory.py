"""Feedback and memory: every card logged, feedback validated and stored, overrides remembered,
repeats within an encounter avoided, red flags never suppressed, and the report's numbers right."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest

from cds_service.storage.store import MIGRATIONS, CardRecord, FeedbackRecord, Store
from cds_service.web.app import create_app

from .cards_view import card_view
from .conftest import dev_settings, hook_request

SIGN = "/cds-services/lbp-order-sign"
SELECT = "/cds-services/lbp-order-select"
VIEW = "/cds-services/lbp-patient-view"
OVERRIDE_SYSTEM = "https://lbp-cds.example.org/CodeSystem/override-reason"


def stamp(days_ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def overridden(card: str, reason: str | None = None, comment: str | None = None, days_ago: float = 0) -> dict:
    item: dict = {"card": card, "outcome": "overridden", "outcomeTimestamp": stamp(days_ago)}
    if reason or comment:
        item["overrideReason"] = {}
        if reason:
            item["overrideReason"]["reason"] = {"system": OVERRIDE_SYSTEM, "code": reason}
        if comment:
            item["overrideReason"]["userComment"] = comment
    return item


def accepted(card: str, suggestion: str) -> dict:
    return {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion}],
        "outcomeTimestamp": stamp(),
    }


def send_feedback(client, items: list[dict], service: str = "lbp-order-sign"):
    return client.post(f"/cds-services/{service}/feedback", json={"feedback": items})


@pytest.fixture
def app(database_url):
    return create_app(dev_settings(database_url=database_url))


@pytest.fixture
def client(app):
    return app.test_client()


def imaging_cards(client, patient="lbp-acute", url=SIGN, hook="order-sign", drafts="lumbar-mri", encounter="enc-1"):
    body = hook_request(hook, patient, drafts=drafts)
    body["context"]["encounterId"] = encounter
    return client.post(url, json=body).get_json()["cards"]


# --- feedback validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"outcome": "accepted", "acceptedSuggestions": [{"id": "s"}], "outcomeTimestamp": "2026-11-27T10:00:00Z"}, "card"),
        ({"card": "c", "outcomeTimestamp": "2026-11-27T10:00:00Z"}, "outcome must be"),
        ({"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-27T10:00:00Z"}, "outcome must be"),
        ({"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-27T10:00:00Z"}, "acceptedSuggestions is required"),
        ({"card": "c", "outcome": "accepted", "acceptedSuggestions": [{}], "outcomeTimestamp": "2026-11-27T10:00:00Z"}, "string 'id'"),
        ({"card": "c", "outcome": "overridden"}, "outcomeTimestamp"),
        ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}, "outcomeTimestamp"),
        ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00"}, "time zone"),
        ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:00:00Z", "overrideReason": {"reason": "x"}}, "Coding"),
    ],
    ids=["no card", "no outcome", "bad outcome", "accepted without suggestions", "suggestion without id",
         "no timestamp", "bad timestamp", "timestamp without zone", "reason not a Coding"],
)  # fmt: skip
def test_invalid_feedback_is_400_naming_the_field(client, item, message):
    response = send_feedback(client, [item])
    assert response.status_code == 400
    assert message in response.get_json()["issue"][0]["diagnostics"]


def test_an_empty_feedback_array_is_400(client):
    assert client.post("/cds-services/lbp-order-sign/feedback", json={"feedback": []}).status_code == 400


def test_feedback_for_an_unknown_service_is_404(client):
    assert send_feedback(client, [overridden("x")], service="nope").status_code == 404


def test_feedback_for_an_unknown_card_is_stored_and_marked(client, app):
    response = send_feedback(client, [overridden("no-such-card")])
    assert response.status_code == 200
    assert response.get_json() == {"stored": 1, "unknownCards": ["no-such-card"]}


# --- card log and durability ------------------------------------------------------------------------


def test_every_card_is_logged_and_feedback_survives_a_restart(database_url):
    first = create_app(dev_settings(database_url=database_url)).test_client()
    card = imaging_cards(first)[0]
    suggestion = card["suggestions"][1]["uuid"]
    assert send_feedback(first, [accepted(card["uuid"], suggestion)]).get_json() == {"stored": 1}
    # A new app on the same database, as after a restart: the card is known and the numbers add up.
    store = Store(database_url)
    report = store.report(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1))
    assert report["lbp-imaging-no-red-flag"]["shown"] == 1
    assert report["lbp-imaging-no-red-flag"]["accepted"] == 1
    second = create_app(dev_settings(database_url=database_url)).test_client()
    assert send_feedback(second, [overridden(card["uuid"])]).get_json() == {"stored": 1}


def _post_feedback(args: tuple[str, int, int]) -> int:
    database_url, worker, count = args
    client = create_app(dev_settings(database_url=database_url)).test_client()
    ok = 0
    for i in range(count):
        response = send_feedback(client, [overridden(f"card-{worker}-{i}", "other", "busy")])
        ok += response.status_code == 200
    return ok


def test_concurrent_feedback_from_several_processes_loses_nothing(database_url):
    Store(database_url)  # create the schema once, as the first worker would
    workers, each = 4, 40
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_post_feedback, [(database_url, w, each) for w in range(workers)])
    assert sum(results) == workers * each
    from sqlalchemy import func, select

    from cds_service.storage.store import feedback

    with Store(database_url).engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(feedback)).scalar() == workers * each


# --- memory that changes behaviour ------------------------------------------------------------------


def test_an_override_that_says_the_clinician_knows_better_suppresses_the_rule_for_that_patient(client, app):
    card = imaging_cards(client, encounter="enc-1")[0]
    send_feedback(client, [overridden(card["uuid"], "beyond-six-weeks")])
    assert imaging_cards(client, encounter="enc-2") == []  # a later visit: held back
    assert [card_view(c)["rule"] for c in imaging_cards(client, patient="lbp-on-chart-orders", encounter="enc-3")] == [
        "lbp-imaging-no-red-flag"
    ]  # another patient still gets the card
    report = app.extensions["cds"].store.report(
        datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    )
    assert report["lbp-imaging-no-red-flag"]["suppressed"] == 1


def test_a_suppressing_override_expires(client):
    card = imaging_cards(client, encounter="enc-1")[0]
    send_feedback(client, [overridden(card["uuid"], "beyond-six-weeks", days_ago=31)])
    assert len(imaging_cards(client, encounter="enc-2")) == 1


def test_an_override_without_a_suppressing_reason_does_not_suppress(client):
    card = imaging_cards(client, encounter="enc-1")[0]
    send_feedback(client, [overridden(card["uuid"], "other", "not now")])
    assert len(imaging_cards(client, encounter="enc-2")) == 1


def test_a_red_flag_card_is_never_suppressed_whatever_the_policy(database_url):
    from cds_service.cards.memory import MemoryPolicy

    app = create_app(dev_settings(database_url=database_url))
    memory = app.extensions["cds"].pipeline.memory
    memory.policy = MemoryPolicy(30, {"lbp-red-flag": ("already-assessed",)}, frozenset({"lbp-red-flag"}))
    client = app.test_client()
    card = imaging_cards(client, patient="lbp-cauda-equina", encounter="enc-1")[0]
    assert card_view(card)["rule"] == "lbp-red-flag"
    send_feedback(client, [overridden(card["uuid"], "already-assessed")])
    again = imaging_cards(client, patient="lbp-cauda-equina", encounter="enc-1")
    assert [card_view(c)["rule"] for c in again] == ["lbp-red-flag"]


def test_a_card_answered_on_order_select_is_not_repeated_on_order_sign_for_the_same_order(client):
    selected = imaging_cards(client, url=SELECT, hook="order-select")
    send_feedback(client, [overridden(selected[0]["uuid"])], service="lbp-order-select")
    assert imaging_cards(client) == []


def test_an_unanswered_card_is_shown_again_on_order_sign(client):
    imaging_cards(client, url=SELECT, hook="order-select")
    assert len(imaging_cards(client)) == 1


def test_a_changed_order_is_a_new_question(client):
    selected = imaging_cards(client, url=SELECT, hook="order-select")
    send_feedback(client, [overridden(selected[0]["uuid"])], service="lbp-order-select")
    body = hook_request("order-sign", "lbp-acute", drafts="lumbar-mri")
    body["context"]["draftOrders"]["entry"][0]["resource"]["code"]["text"] = (
        "MRI lumbar spine with and without contrast"
    )
    assert len(client.post(SIGN, json=body).get_json()["cards"]) == 1


def test_the_first_line_plan_is_shown_once_per_encounter(client):
    first = client.post(VIEW, json=hook_request("patient-view", "lbp-acute")).get_json()["cards"]
    again = client.post(VIEW, json=hook_request("patient-view", "lbp-acute")).get_json()["cards"]
    assert [card_view(c)["rule"] for c in first] == ["lbp-first-line"]
    assert again == []


# --- report -----------------------------------------------------------------------------------------


def test_the_report_counts_a_known_sequence(client, app):
    uuids = [
        imaging_cards(client, patient=p, encounter=f"e-{p}")[0]["uuid"]
        for p in ("lbp-acute", "lbp-ten-weeks", "lbp-red-flag-entered-in-error", "lbp-on-chart-orders")
    ]
    first = client.post(SIGN, json=hook_request("order-sign", "lbp-acute", drafts="bed-rest-text")).get_json()["cards"][
        0
    ]
    send_feedback(client, [
        accepted(uuids[0], "s1"),
        overridden(uuids[1], "planning-intervention"),
        overridden(uuids[2], "other", "patient insists"),
        overridden(uuids[3]),
        overridden(uuids[3], "other", "changed my mind later"),  # reported twice: the latest answer counts
        accepted(first["uuid"], "s2"),
    ])  # fmt: skip
    now = datetime.now(UTC)
    report = app.extensions["cds"].store.report(now - timedelta(hours=1), now + timedelta(hours=1))
    imaging = report["lbp-imaging-no-red-flag"]
    assert (imaging["shown"], imaging["accepted"], imaging["overridden"]) == (4, 1, 3)
    assert imaging["override_reasons"] == {"planning-intervention": 1, "other": 2}
    assert imaging["acceptance_rate"] == 0.25
    assert imaging["free_text_share"] == round(2 / 3, 3)
    assert report["lbp-bed-rest"]["accepted"] == 1


def test_a_card_accepted_then_overridden_counts_in_every_view_of_the_report_and_its_json(
    client, app, monkeypatch, capsys
):
    """The final answer is the override, the first was the acceptance, and both were given: acceptance does not
    read 0% when a clinician accepted first."""
    import json

    from cds_service.web.cli import main

    (card,) = imaging_cards(client)
    assert send_feedback(client, [accepted(card["uuid"], card["suggestions"][0]["uuid"])]).status_code == 200
    assert send_feedback(client, [overridden(card["uuid"], "planning-intervention")]).status_code == 200
    now = datetime.now(UTC)
    imaging = app.extensions["cds"].store.report(now - timedelta(hours=1), now + timedelta(hours=1))[
        "lbp-imaging-no-red-flag"
    ]
    assert (imaging["accepted"], imaging["overridden"]) == (0, 1)  # the final answer
    assert imaging["first_answer"] == {"accepted": 1, "overridden": 0}
    assert imaging["every_answer"] == {"accepted": 1, "overridden": 1}

    monkeypatch.setenv("CDS_DATABASE_URL", app.extensions["cds"].store.url)
    assert main(["report", "--format", "json"]) == 0
    rules = json.loads(capsys.readouterr().out)["rules"]
    assert rules["lbp-imaging-no-red-flag"]["every_answer"] == {"accepted": 1, "overridden": 1}
    assert rules["lbp-imaging-no-red-flag"]["first_answer"] == {"accepted": 1, "overridden": 0}
    assert main(["report"]) == 0
    assert "every answer: accepted 1, overridden 1; first answer: accepted 1, overridden 0" in capsys.readouterr().out


def test_purge_removes_only_records_older_than_the_retention(client, app):
    imaging_cards(client)
    store = app.extensions["cds"].store
    assert store.purge(datetime.now(UTC) - timedelta(days=1)) == (0, 0)
    assert store.purge(datetime.now(UTC) + timedelta(days=1))[0] == 1


def test_report_command_prints_json_for_machines(client, app, monkeypatch, capsys):
    import json

    from cds_service.web.cli import main

    imaging_cards(client)
    monkeypatch.setenv("CDS_DATABASE_URL", app.extensions["cds"].store.url)
    assert main(["report", "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["rules"]["lbp-imaging-no-red-flag"]["shown"] == 1
    assert main(["report"]) == 0
    assert "lbp-imaging-no-red-flag" in capsys.readouterr().out


def _open_store(database_url: str) -> bool:
    Store(database_url)
    return True


def test_several_workers_can_create_the_schema_at_the_same_moment(tmp_path, request):
    # gunicorn starts every worker at once and each migrates: none may fail on a fresh database.
    for url in (f"sqlite:///{tmp_path / 'fresh.sqlite3'}", request.getfixturevalue("postgres_server").new_database()):
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            assert pool.map(_open_store, [url] * 8) == [True] * 8


# --- memory scoped to what was answered (issue 13) ----------------------------------------------------


def _dose_cards(client, mg_per_dose: float, order_id: str, encounter: str) -> list[dict]:
    from .builders import condition, dose, hook_body, medication, patient

    draft = medication(
        status="draft", days_ago=0, id=order_id, dosage=[dose(mg_per_dose, per=6)], rxnorm="197807", display="Ibuprofen"
    )
    body = hook_body("order-sign", [patient(40), condition(icd="M54.50", days_ago=10)], drafts=[draft])
    body["context"]["encounterId"] = encounter
    cards = client.post(SIGN, json=body).get_json()["cards"]
    return [c for c in cards if card_view(c)["rule"] == "lbp-ibuprofen-dose"]


def test_an_override_of_a_dose_holds_back_that_dose_only_and_a_higher_dose_shows_again(client):
    first = _dose_cards(client, 600, "draft-a", "enc-1")  # 3,600 mg a day
    assert len(first) == 1
    send_feedback(client, [overridden(first[0]["uuid"], "dose-intended")])
    assert _dose_cards(client, 600, "draft-b", "enc-2") == []  # the same dose, re-ordered at a later visit
    higher = _dose_cards(client, 800, "draft-c", "enc-3")  # 4,800 mg a day: a new question
    assert len(higher) == 1 and "4,800 mg a day" in higher[0]["detail"]


def test_an_override_of_the_imaging_card_for_an_mri_does_not_hold_back_a_ct(client):
    card = imaging_cards(client, encounter="enc-1")[0]
    send_feedback(client, [overridden(card["uuid"], "beyond-six-weeks")])
    assert imaging_cards(client, encounter="enc-2") == []
    assert len(imaging_cards(client, drafts="lumbar-xray-loinc", encounter="enc-3")) == 1


def test_a_v1_database_gains_the_feedback_target_fingerprint_column_in_place(tmp_path):
    """A v1 database (no target fingerprint on feedback) upgrades in place to v2."""
    import sqlalchemy

    url = f"sqlite:///{tmp_path / 'v1.sqlite3'}"
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("ALTER TABLE feedback DROP COLUMN target_fingerprint"))
        conn.execute(sqlalchemy.text("UPDATE schema_version SET version = 1"))
    upgraded = Store(url)
    with upgraded.engine.connect() as conn:
        columns = {c["name"] for c in sqlalchemy.inspect(conn).get_columns("feedback")}
        version = conn.execute(sqlalchemy.text("SELECT max(version) FROM schema_version")).scalar()
    assert "target_fingerprint" in columns and version == len(MIGRATIONS)


def test_memory_json_says_what_every_suppressing_reason_holds_back() -> None:
    import json

    from cds_service.knowledge.loader import KNOWLEDGE_DIR

    data = json.loads((KNOWLEDGE_DIR / "memory.json").read_text())
    reasons = {reason for codes in data["suppressing_reasons"].values() for reason in codes}
    assert reasons == set(data["holds_back"])


def test_the_request_log_line_names_the_rules_held_back_and_why(client, caplog):
    import logging

    card = imaging_cards(client, encounter="enc-1")[0]
    send_feedback(client, [overridden(card["uuid"], "beyond-six-weeks")])
    with caplog.at_level(logging.INFO, logger="cds_service"):
        assert imaging_cards(client, encounter="enc-2") == []
    line = [r for r in caplog.records if r.getMessage() == "request" and r.path == SIGN][-1]
    assert line.held_back[0]["rule"] == "lbp-imaging-no-red-flag" and "beyond-six-weeks" in line.held_back[0]["why"]


def test_a_v2_database_gets_its_encounter_memory_from_what_it_logged(tmp_path):
    """Upgrading from v2 fills the compact encounter memory from the card log and feedback already stored."""
    import sqlalchemy

    url = f"sqlite:///{tmp_path / 'v2.sqlite3'}"
    store = Store(url)
    now = datetime.now(UTC)
    card = CardRecord("u1", "lbp-order-sign", "order-sign", "h1", "lbp-imaging-no-red-flag", "warning", "p1", "enc-9",
                      "ServiceRequest/mri", "fp1", ("ServiceRequest/mri",), None)  # fmt: skip
    store.log_cards([card, CardRecord(**{**card.__dict__, "uuid": "u2"})], now)
    store.add_feedback("lbp-order-sign", [FeedbackRecord("u1", "overridden", (), None, None, None, now)], now)
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE encounter_memory"))
        conn.execute(sqlalchemy.text("UPDATE schema_version SET version = 2"))
    history = Store(url).encounter_history("local", "enc-9")
    assert history.shown_rules == {"lbp-imaging-no-red-flag"}
    assert history.answered == {("lbp-imaging-no-red-flag", "ServiceRequest/mri", "fp1")}
