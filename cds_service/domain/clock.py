"""The service's one clock. Every decision that depends on the date (episode age, red-flag windows, memory,
retention) reads the clock the application was built with; tests of records with absolute dates build the
application with the recording's own time instead of the machine's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


def fixed_clock(at: datetime) -> Clock:
    """A clock that always reads `at` (timezone-aware): for records written at a known time."""
    if at.tzinfo is None:
        raise ValueError("a fixed clock needs a timezone-aware time")
    return lambda: at
