"""The hot-path statements run on the DB-API connection (issue 17) store and read exactly what SQLAlchemy
Core does, on SQLite and on a real PostgreSQL server, and their driver errors arrive as SQLAlchemy's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cds_service.pipeline.feedback import parse_feedback
from cds_service.storage.store import CardRecord, Store, cards, encounter_memory

NOW = datetime(2026, 11, 27, 10, 30, 15, 123456, tzinfo=UTC)


def _card(uuid: str, encounter: str | None = "enc-1") -> CardRecord:
    return CardRecord(
        uuid=uuid,
        service_id="lbp-order-sign",
        hook="order-sign",
        hook_instance="hi-1",
        rule="imaging-without-red-flags",
        indicator="warning",
        patient_id="p-1",
        encounter_id=encounter,
        target_ref="ServiceRequest/mri",
        target_fingerprint="fp-1",
        evidence=("Condition/lbp", "ServiceRequest/mri"),
        caller="https://ehr.example|t1",
    )


def test_a_logged_card_reads_back_through_sqlalchemy_core_exactly(database_url):
    store = Store(database_url)
    store.log_cards([_card("c-1")], NOW)
    with store.engine.connect() as conn:
        row = conn.execute(select(cards).where(cards.c.uuid == "c-1")).mappings().one()
        remembered = conn.execute(select(encounter_memory)).mappings().all()
    assert row["evidence"] == ["Condition/lbp", "ServiceRequest/mri"]  # JSON, not a string
    created = row["created_at"] if row["created_at"].tzinfo else row["created_at"].replace(tzinfo=UTC)
    assert created == NOW  # microseconds and all: SQLite's datetime text is SQLAlchemy's own format
    assert (row["caller"], row["encounter_id"], row["target_fingerprint"]) == (
        "https://ehr.example|t1",
        "enc-1",
        "fp-1",
    )
    assert [(m["rule"], m["target_ref"], bool(m["answered"])) for m in remembered] == [
        ("imaging-without-red-flags", "ServiceRequest/mri", False)
    ]


def test_the_memory_reads_find_what_was_logged_and_answered(database_url):
    store = Store(database_url)
    store.log_cards([_card("c-1")], NOW)
    item = {"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-27T10:31:00Z"}
    item["overrideReason"] = {"reason": {"code": "patient-informed", "system": "https://example.org/reasons"}}
    store.add_feedback("lbp-order-sign", parse_feedback({"feedback": [item]}), NOW, "https://ehr.example|t1")

    since = NOW - timedelta(days=1)
    assert store.overrides_since("https://ehr.example|t1", "p-1", since) == {
        ("imaging-without-red-flags", "patient-informed", "fp-1")
    }
    assert store.overrides_since("https://other.example|t1", "p-1", since) == set()  # another EHR's answer
    assert store.overrides_since("https://ehr.example|t1", "p-1", NOW + timedelta(minutes=2)) == set()  # the window
    history = store.encounter_history("https://ehr.example|t1", "enc-1")
    assert history.shown_rules == {"imaging-without-red-flags"}
    assert history.answered == {("imaging-without-red-flags", "ServiceRequest/mri", "fp-1")}


def test_a_driver_error_is_a_sqlalchemy_error_and_the_connection_is_usable_afterwards(database_url):
    store = Store(database_url)
    store.log_cards([_card("c-1")], NOW)
    with pytest.raises(IntegrityError) as raised:  # the same uuid twice: the primary key refuses it
        store.log_cards([_card("c-1")], NOW)
    assert isinstance(raised.value, SQLAlchemyError)
    store.log_cards([_card("c-2"), _card("c-3", encounter=None)], NOW)  # the pool still hands out good connections
    with store.engine.connect() as conn:
        assert sorted(conn.execute(select(cards.c.uuid)).scalars()) == ["c-1", "c-2", "c-3"]
