"""A bounded memo of a pure function's answers, shared by a worker's threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """Answers of a pure function, by exact input: the same content comes back on every hook call for a chart
    (patient-view, order-select, order-sign), so an answer already given is given again. Bounded; oldest
    entries go first. This changes speed, never an answer.

    Shared by a worker's threads: finding the oldest entry and storing a new one happen under a lock. Without
    it, a thread could take the oldest key while another stored one, and the dictionary's iterator raised
    RuntimeError (a 500 for that call) once the memo was full; the bound was overrun too."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.answers: dict[K, V] = {}
        self._lock = threading.Lock()

    def answer(self, key: K, compute: Callable[[], V]) -> V:
        known = self.answers.get(key)
        if known is None:
            known = compute()  # outside the lock: a slow answer must not hold up the other threads
            with self._lock:
                if len(self.answers) >= self.limit:
                    self.answers.pop(next(iter(self.answers)))
                self.answers[key] = known
        return known
