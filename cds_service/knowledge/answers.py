"""Yes and no as records say them (answers.json): coded answers and words, for questionnaires and observations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.domain.facts import Coding


@dataclass(frozen=True)
class Answer:
    codes: frozenset[Coding]
    words: frozenset[str]


@dataclass(frozen=True)
class YesNo:
    yes: Answer
    no: Answer


def load_yes_no(raw: Mapping[str, Any]) -> YesNo:
    def answer(item: Mapping[str, Any]) -> Answer:
        return Answer(frozenset((s, c) for s, c in item["codes"]), frozenset(w.lower() for w in item["words"]))

    return YesNo(yes=answer(raw["yes"]), no=answer(raw["no"]))
