"""Retention runs itself: the service's timer deletes records older than the retention period and keeps
the rest; a purge that fails is counted and never stops the timer."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, insert, select

from cds_service.domain.clock import wall_clock
from cds_service.storage.retention import RetentionJob
from cds_service.storage.store import Store, cards
from cds_service.web.app import create_app

from .conftest import dev_settings


def _card(uuid: str, age_days: float) -> dict:
    return {
        "uuid": uuid,
        "service_id": "lbp-order-sign",
        "hook": "order-sign",
        "hook_instance": "h",
        "rule": "lbp-imaging-no-red-flag",
        "indicator": "warning",
        "patient_id": "p",
        "evidence": [],
        "created_at": wall_clock() - timedelta(days=age_days),
    }


def _uuids(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {row.uuid for row in conn.execute(select(cards.c.uuid))}


def test_the_timer_purges_old_records_and_keeps_recent_ones(database_url):
    app = create_app(dev_settings(database_url=database_url, retention_days=30, purge_interval_s=0.2))
    store = app.extensions["cds"].store
    with store.engine.begin() as conn:
        conn.execute(insert(cards), [_card("old", 31), _card("recent", 29)])
    deadline = time.monotonic() + 10
    while "old" in _uuids(store) and time.monotonic() < deadline:
        time.sleep(0.1)
    app.extensions["cds"].retention.stop()
    assert _uuids(store) == {"recent"}


def test_a_failing_purge_is_counted_and_the_job_goes_on(tmp_path, caplog):
    store = Store(f"sqlite:///{tmp_path / 'cds.sqlite3'}")
    job = RetentionJob(store, 30, 0)
    store.engine.dispose()
    (tmp_path / "cds.sqlite3").unlink()
    (tmp_path / "cds.sqlite3").mkdir()  # the database is now a directory: every statement fails
    assert job.run_once() == (0, 0)
    # Counted as a purge failure (the store may also count the replaced file first, when the directory did not
    # get the deleted file's inode number back).
    failures = [r for r in caplog.records if r.getMessage() == "storage failure"]
    assert [getattr(r, "operation", None) for r in failures][-1] == "purge"
    assert store.write_failures == len(failures) and store.degraded


def test_interval_zero_never_starts_a_timer(tmp_path):
    job = RetentionJob(Store(f"sqlite:///{tmp_path / 'cds.sqlite3'}"), 30, 0)
    job.start()
    assert job._thread is None
    with job.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cards)).scalar_one() == 0
