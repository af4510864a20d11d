"""The card log written off the request path (storage/card_log_writer.py, issue 33): calls queue their entries
and a thread writes what has queued in one transaction; an orderly shutdown loses nothing, feedback finds a
card still queued, memory counts queued cards as shown, and a failing entry costs only its own call."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cds_service.cds_hooks.limits import LOCAL_CALLER
from cds_service.settings import Settings
from cds_service.storage.card_log_writer import MAX_BATCH, CardLogWriter
from cds_service.web.app import create_app
from cds_service.web.state import state_of

from .conftest import dev_settings, hook_request
from .served import production_process


class Recorder:
    """A write function that records its batches and can be held (to see what queues meanwhile)."""

    def __init__(self, fail_on: object = None) -> None:
        self.batches: list[list[object]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_on = fail_on

    def __call__(self, batch: Sequence[object]) -> None:
        self.entered.set()
        self.gate.wait(10)
        if self.fail_on is not None and self.fail_on in batch:
            raise ValueError("refused")
        self.batches.append(list(batch))


def test_entries_queued_while_a_batch_is_written_go_in_one_next_batch():
    write, failures = Recorder(), []
    writer = CardLogWriter(write, failures.append, name="test-writer")
    write.gate.clear()
    writer.submit("first")
    assert write.entered.wait(5)  # the thread holds "first" in its write
    for n in range(5):
        writer.submit(f"queued-{n}")
    assert sorted(writer.pending()) == sorted(["first", *(f"queued-{n}" for n in range(5))])
    write.gate.set()
    assert writer.flush(5)
    assert write.batches == [["first"], [f"queued-{n}" for n in range(5)]]  # one commit for the five
    assert list(writer.pending()) == [] and failures == []
    writer.close()


def test_a_refused_entry_costs_only_its_own_call():
    write, failures = Recorder(fail_on="bad"), []
    writer = CardLogWriter(write, failures.append, name="test-writer")
    write.gate.clear()
    writer.submit("a")
    assert write.entered.wait(5)
    for entry in ("b", "bad", "c"):
        writer.submit(entry)
    write.gate.set()
    assert writer.flush(5)
    written = [e for batch in write.batches for e in batch]
    assert sorted(written) == ["a", "b", "c"]
    assert len(failures) == 1 and isinstance(failures[0], ValueError)
    writer.close()


def test_close_writes_everything_queued_and_later_entries_inline():
    write = Recorder()
    writer = CardLogWriter(write, lambda exc: None, name="test-writer")
    write.gate.clear()
    for n in range(20):
        writer.submit(n)
    closer = threading.Thread(target=writer.close)
    closer.start()
    time.sleep(0.05)
    write.gate.set()
    closer.join(10)
    assert sorted(e for batch in write.batches for e in batch) == list(range(20))
    writer.submit("after")
    assert write.batches[-1] == ["after"]


def test_entries_queued_within_the_linger_window_share_one_commit():
    write = Recorder()
    writer = CardLogWriter(write, lambda exc: None, name="test-writer", linger_s=10.0)
    writer.submit("a")
    time.sleep(0.2)  # the thread has taken "a" up: without the window it would have written it alone by now
    writer.submit("b")
    writer.submit("c")
    assert write.batches == []  # still lingering
    started = time.monotonic()
    assert writer.flush(5)  # a flush ends the window at once, far inside its 10 s
    assert time.monotonic() - started < 5
    assert write.batches == [["a", "b", "c"]]
    writer.close()


def test_a_full_batch_ends_the_linger_window():
    write = Recorder()
    writer = CardLogWriter(write, lambda exc: None, name="test-writer", linger_s=10.0)
    for n in range(MAX_BATCH):
        writer.submit(n)
    assert write.entered.wait(5)  # written without a flush, long before the window's end
    assert write.batches == [list(range(MAX_BATCH))]
    writer.close()


def test_close_within_the_linger_window_writes_everything_at_once():
    write = Recorder()
    writer = CardLogWriter(write, lambda exc: None, name="test-writer", linger_s=10.0)
    for n in range(3):
        writer.submit(n)
    closer = threading.Thread(target=writer.close)
    closer.start()
    closer.join(5)
    assert not closer.is_alive()
    assert write.batches == [[0, 1, 2]]


def test_the_linger_window_is_zero_or_more():
    assert Settings.from_env({"CDS_CARD_LOG_LINGER_MS": "0"}).card_log_linger_ms == 0.0
    with pytest.raises(ValueError, match="CDS_CARD_LOG_LINGER_MS"):
        Settings.from_env({"CDS_CARD_LOG_LINGER_MS": "-1"})
    with pytest.raises(ValueError, match="linger_s"):
        CardLogWriter(Recorder(), lambda exc: None, name="test-writer", linger_s=-0.001)


def _held_app():
    """An application whose card log writer is held until released, so a test can act while entries queue."""
    app = create_app(dev_settings(card_log_background=True))
    store = state_of(app).store
    writer = store._card_log
    assert writer is not None
    gate = threading.Event()
    real = writer._write

    def held(batch):
        gate.wait(10)
        real(batch)

    writer._write = held
    return app, store, gate


def test_feedback_finds_a_card_still_queued_for_the_log():
    app, store, gate = _held_app()
    client = app.test_client()
    body = hook_request("patient-view", "lbp-acute")
    card = client.post("/cds-services/lbp-patient-view", json=body).get_json()["cards"][0]
    feedback = {
        "feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:00:00Z"}]
    }
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(lambda: client.post("/cds-services/lbp-patient-view/feedback", json=feedback))
        time.sleep(0.2)
        assert not answer.done()  # feedback waits for the log to be written
        gate.set()
        result = answer.result(10)
    assert result.status_code == 200
    assert result.get_json().get("unknownCards", []) == []  # matched: the card was written first
    store.close()


def test_memory_counts_a_queued_card_as_shown_in_its_encounter():
    app, store, gate = _held_app()
    client = app.test_client()
    body = hook_request("patient-view", "lbp-acute")
    shown = {
        c["source"]["topic"]["code"]
        for c in client.post("/cds-services/lbp-patient-view", json=body).get_json()["cards"]
    }
    assert shown
    caller, encounter = LOCAL_CALLER, body["context"]["encounterId"]
    history = store.encounter_history(caller, encounter)  # nothing written yet: the writer is held
    assert history.shown_rules
    gate.set()
    store.flush()
    assert store.encounter_history(caller, encounter).shown_rules == history.shown_rules  # the same once written
    store.close()


def _cards_in(database: Path) -> int:
    """The cards the log holds as shown (held-back findings are logged too, with their reason)."""
    with sqlite3.connect(database) as conn:
        return int(conn.execute("select count(*) from card_log where suppressed_because is null").fetchone()[0])


def test_an_orderly_shutdown_of_the_production_server_loses_no_answered_card(tmp_path):
    database = tmp_path / "cds.sqlite3"
    settings = {
        "CDS_AUTH_REQUIRED": "false",
        "CDS_DATABASE_URL": f"sqlite:///{database}",
        "CDS_CARD_LOG_BACKGROUND": "true",
    }
    body = hook_request("patient-view", "lbp-acute")
    answered = 0
    with production_process(tmp_path, settings) as (base, _master):
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: requests.post(f"{base}/cds-services/lbp-patient-view", json=body, timeout=30), range(64)
                )
            )
        answered = sum(len(a.json()["cards"]) for a in answers if a.status_code == 200)
        assert answered > 0
    # production_process sends SIGTERM and waits: each worker wrote out its queue before it ended.
    assert _cards_in(database) == answered


def test_the_inline_card_log_is_written_before_the_call_answers():
    app = create_app(dev_settings(card_log_background=False))
    store = state_of(app).store
    assert store._card_log is None
    body = hook_request("patient-view", "lbp-acute")
    cards = app.test_client().post("/cds-services/lbp-patient-view", json=body).get_json()["cards"]
    database = Path(store.url.removeprefix("sqlite:///"))
    assert _cards_in(database) == len(cards)


def test_feedback_on_another_worker_waits_for_a_card_still_in_the_first_workers_queue(tmp_path):
    from datetime import UTC, datetime

    from cds_service.storage.store import CardRecord, FeedbackRecord, Store

    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    first, second = Store(url, background_card_log=True), Store(url, background_card_log=True)
    assert first._card_log is not None
    gate, real = threading.Event(), first._card_log._write
    first._card_log._write = lambda batch: (gate.wait(10), real(batch))
    card = CardRecord(
        "card-1", "lbp-patient-view", "patient-view", "h1", "lbp-first-line", "info", "p1", None, None, None, ()
    )
    now = datetime.now(UTC)
    first.log_cards([card], now)  # queued in the first worker, held there
    threading.Timer(0.15, gate.set).start()
    answer = FeedbackRecord("card-1", "overridden", (), None, None, None, now)
    assert second.add_feedback("lbp-patient-view", [answer], now) == [True]  # matched once the first wrote it
    started = time.monotonic()
    unknown = FeedbackRecord("no-such-card", "overridden", (), None, None, None, now)
    assert second.add_feedback("lbp-patient-view", [unknown], now) == [False]
    assert time.monotonic() - started < 2  # a truly unknown card costs a bounded wait
    first.close()
    second.close()


def test_a_report_on_another_worker_includes_a_call_still_in_the_first_workers_linger_window(tmp_path):
    from datetime import UTC, datetime, timedelta

    from cds_service.storage.store import CardRecord, Store

    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    first = Store(url, background_card_log=True, card_log_linger_s=0.2)
    second = Store(url, background_card_log=True, card_log_linger_s=0.2)
    card = CardRecord(
        "card-1", "lbp-patient-view", "patient-view", "h1", "lbp-first-line", "info", "p1", None, None, None, ()
    )
    now = datetime.now(UTC)
    first.log_cards([card], now)  # queued in the first worker, which lingers 0.2 s before its commit
    assert list(first._card_log.pending())  # type: ignore[union-attr]
    report = second.report(now - timedelta(days=1), now + timedelta(days=1))
    assert report["lbp-first-line"]["shown"] == 1  # the report waited out the other worker's window
    first.close()
    second.close()
