"""The card log written off the request path (issue 33): a hook call hands its log entry to this worker's
writer thread and answers; the thread writes whatever has queued up in one transaction (group commit), so one
commit, the costliest step of a minimal call on a disk-backed SQLite file, serves many calls under load.

What it promises (README, "Memory"):
- An orderly shutdown loses nothing: `close` (at interpreter exit, and from gunicorn's `worker_exit`) writes
  every queued entry before the process ends.
- Feedback is matched to a card still queued: the feedback path calls `flush` first, which returns once every
  entry queued before it is written (or has failed).
- A crash (SIGKILL, power loss) loses at most the calls whose entries were queued and not yet written: the calls
  in flight, and those of the linger window. Their cards were answered; only their log entries are lost.
- The linger window: once an entry is queued, the thread waits up to `linger_s` for more before it commits, so
  that calls arriving one after another share a commit too (PostgreSQL's `commit_delay` does the same for
  its own commits). A flush, a close or a full batch (MAX_BATCH) ends the wait at once.
- A batch that fails is written again entry by entry, so one entry the database refuses costs only its own call
  (as when each call wrote its own transaction); each failure is reported to the store (degraded, counted).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("cds_service.storage")

Entry = TypeVar("Entry")

_WRITERS: weakref.WeakSet[CardLogWriter[object]] = weakref.WeakSet()

# Enough entries for one transaction: past it the thread stops lingering (a batch this size already shares
# its commit widely; a larger one only holds a longer write turn, which other workers' writes wait for).
MAX_BATCH = 64


class CardLogWriter(Generic[Entry]):
    def __init__(
        self,
        write: Callable[[Sequence[Entry]], None],
        on_failure: Callable[[Exception], None],
        *,
        name: str,
        linger_s: float = 0.0,
    ) -> None:
        if linger_s < 0:
            raise ValueError(f"linger_s must be >= 0, not {linger_s}")
        self._write = write
        self._linger_s = linger_s
        self._on_failure = on_failure
        self._name = name
        self._changed = threading.Condition()
        self._pending: list[Entry] = []
        self._writing: list[Entry] = []  # the batch the thread is writing now (still readable as pending)
        self._queued = 0  # entries ever queued
        self._done = 0  # entries written or failed
        self._closed = False
        self._flushing = 0  # callers waiting in flush: the thread stops lingering for them
        self._thread: threading.Thread | None = None
        self._pid = 0
        _WRITERS.add(self)  # type: ignore[arg-type]

    @property
    def linger_s(self) -> float:
        return self._linger_s

    def submit(self, entry: Entry) -> None:
        with self._changed:
            if self._closed:
                inline = True
            else:
                inline = False
                self._pending.append(entry)
                self._queued += 1
                self._ensure_thread()
                # Wake the thread only when it waits for this: the first entry, or a full batch while it lingers.
                if len(self._pending) in (1, MAX_BATCH):
                    self._changed.notify_all()
        if inline:  # after close (at exit): nobody will write it later, so write it now
            self._write_batch([entry])

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until every entry queued before this call is written (or has failed); False on timeout."""
        with self._changed:
            target = self._queued
            if self._done >= target:
                return True
            self._flushing += 1
            self._changed.notify_all()  # a lingering thread writes now
            try:
                return self._changed.wait_for(lambda: self._done >= target, timeout_s)
            finally:
                self._flushing -= 1

    def pending(self) -> Iterator[Entry]:
        """The entries queued or being written, not yet in the database (a copy: safe to read while it runs)."""
        with self._changed:
            entries = [*self._writing, *self._pending]
        return iter(entries)

    def close(self) -> None:
        """Write everything queued, then stop the thread; later entries are written inline."""
        self.flush(timeout_s=None)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout=10)

    def _ensure_thread(self) -> None:
        # Per process: a thread started before a fork does not exist in the child.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed and drained
                if self._linger_s > 0:
                    self._changed.wait_for(self._write_now, self._linger_s)
                batch, self._pending = self._pending, []
                self._writing = batch
            self._write_batch(batch)
            with self._changed:
                self._writing = []
                self._done += len(batch)
                self._changed.notify_all()

    def _write_now(self) -> bool:
        return self._closed or self._flushing > 0 or len(self._pending) >= MAX_BATCH

    def _write_batch(self, batch: Sequence[Entry]) -> None:
        try:
            self._write(batch)
            return
        except Exception as exc:  # any failure: try the entries one by one, report each
            if len(batch) == 1:
                self._report(exc)
                return
        for entry in batch:
            try:
                self._write([entry])
            except Exception as exc:
                self._report(exc)

    def _report(self, exc: Exception) -> None:
        try:
            self._on_failure(exc)
        except Exception:  # the thread must live on: its callers wait on it
            log.exception("card log failure report failed")


def close_all() -> None:
    """Every writer of this process written out (interpreter exit; gunicorn's worker_exit)."""
    for writer in list(_WRITERS):
        writer.close()


atexit.register(close_all)
