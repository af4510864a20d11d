"""record.Remembered: the bounded memo the rules, selection and validation verdicts share across a worker's
threads (gunicorn gthread runs 8 per worker)."""

from __future__ import annotations

import itertools
import sys
import threading

from cds_service.domain.memo import Remembered


def test_a_full_memo_shared_by_threads_answers_every_call_and_keeps_its_bound():
    memo: Remembered[int, int] = Remembered(4)
    keys = itertools.count()
    errors: list[BaseException] = []
    wrong: list[tuple[int, int]] = []

    def ask() -> None:
        try:
            for _ in range(20_000):
                key = next(keys)
                if (got := memo.answer(key, lambda key=key: key * 2)) != key * 2:
                    wrong.append((key, got))
        except Exception as exc:  # what a hook call would have answered with a 500
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows within a second
    try:
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert wrong == []
    assert len(memo.answers) <= memo.limit
