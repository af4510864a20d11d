"""Retention that runs itself: every worker purges records older than CDS_RETENTION_DAYS on a timer.

Several workers (and instances) purging the same database is harmless: a purge is a DELETE of old rows,
and the first delay is random so they do not all run at once. A failed purge is logged and tried again
at the next interval; it never touches a hook call.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import timedelta

from cds_service.domain.clock import Clock, wall_clock
from cds_service.storage.store import Store

log = logging.getLogger(__name__)


class RetentionJob:
    def __init__(self, store: Store, retention_days: float, interval_s: float, clock: Clock = wall_clock) -> None:
        self.store = store
        self.clock = clock
        self.retention = timedelta(days=retention_days)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> tuple[int, int]:
        """Delete what is older than the retention period; (cards, feedback) deleted."""
        try:
            cards, answers = self.store.purge(self.clock() - self.retention)
        except Exception as exc:
            self.store.failed("purge", exc)
            return 0, 0
        if cards or answers:
            log.info("retention purge", extra={"cards": cards, "feedback": answers})
        return cards, answers

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        delay = random.uniform(0, self.interval_s)
        while not self._stop.wait(delay):
            self.run_once()
            delay = self.interval_s
