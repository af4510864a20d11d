"""Many threads of one worker writing at once (gthread: 8 per worker) and two workers on one SQLite file:
every card and answer is stored, and no write fails on a lock, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from cds_service.storage.store import CardRecord, FeedbackRecord, Store
from cds_service.storage.store import cards as card_table
from cds_service.storage.store import feedback as feedback_table

from .conftest import count_rows

THREADS, CALLS = 16, 15


def _card(n: int, thread: int) -> CardRecord:
    return CardRecord(f"u-{thread}-{n}", "lbp-order-sign", "order-sign", f"h-{thread}-{n}", "lbp-imaging-no-red-flag",
                      "warning", "p1", f"enc-{thread}", "ServiceRequest/mri", "fp1", ("ServiceRequest/mri",))  # fmt: skip


def test_concurrent_writers_of_two_processes_lose_nothing_and_never_fail(database_url):
    workers = [Store(database_url), Store(database_url)]  # two engines: two workers on one database
    now = datetime.now(UTC)
    errors: list[BaseException] = []

    def calls(thread: int) -> None:
        store = workers[thread % 2]
        try:
            for n in range(CALLS):
                store.log_cards([_card(n, thread)], now)
                answer = FeedbackRecord(f"u-{thread}-{n}", "overridden", (), None, None, None, now)
                store.add_feedback("lbp-order-sign", [answer], now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=calls, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert [w.write_failures for w in workers] == [0, 0]
    assert count_rows(database_url, card_table, feedback_table) == (THREADS * CALLS, THREADS * CALLS)
