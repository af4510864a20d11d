"""Rule-level tests: each rule called as a pure function on a small record built in the test, with a
test on both sides of every threshold it reads. The thresholds are read from the knowledge data (never
written here), so a test says "at the limit" and "one step past it" whatever the reviewed value is."""

from __future__ import annotations

import pytest

from cds_service.knowledge.model import Knowledge, knowledge
from cds_service.knowledge.thresholds import Thresholds


@pytest.fixture(scope="session")
def kb() -> Knowledge:
    return knowledge()


@pytest.fixture(scope="session")
def limits(kb: Knowledge) -> Thresholds:
    return kb.thresholds
