"""The clinical knowledge the rules read, loaded once per process from the reviewable data files."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..record import Coding
from ..terminology import ValueSet, valuesets

KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"


@dataclass(frozen=True)
class RedFlagSignal:
    label: str
    valueset: ValueSet | None
    include_resolved: bool
    fever_observation: bool
    steroid_medication: bool


@dataclass(frozen=True)
class RedFlagCategory:
    id: str
    label: str
    indicator: str
    advice: str
    signals: tuple[RedFlagSignal, ...]


@dataclass(frozen=True)
class Knowledge:
    valuesets: Mapping[str, ValueSet]
    red_flag_categories: tuple[RedFlagCategory, ...]
    red_flag_statement: str
    bed_rest_codes: frozenset[Coding]
    bed_rest_patterns: tuple[re.Pattern[str], ...]
    steroid_ingredients: tuple[str, ...]
    non_systemic_terms: tuple[str, ...]
    observation_codes: Mapping[str, frozenset[Coding]]

    def vs(self, name: str) -> ValueSet:
        return self.valuesets[name]

    def relevant_codes(self) -> frozenset[Coding]:
        """Every code any rule can act on: used to pick resources worth validating."""
        codes: set[Coding] = set(self.bed_rest_codes)
        for valueset in self.valuesets.values():
            codes |= valueset.codes
        for observation in self.observation_codes.values():
            codes |= observation
        return frozenset(codes)


def _read(name: str) -> Any:
    return json.loads((KNOWLEDGE_DIR / name).read_text())


@cache
def knowledge() -> Knowledge:
    sets = valuesets()
    flags = _read("red_flags.json")
    categories = tuple(
        RedFlagCategory(
            id=c["id"],
            label=c["label"],
            indicator=c["indicator"],
            advice=c["advice"],
            signals=tuple(
                RedFlagSignal(
                    label=s["label"],
                    valueset=sets[s["valueset"]] if "valueset" in s else None,
                    include_resolved=bool(s.get("include_resolved")),
                    fever_observation=bool(s.get("fever_observation")),
                    steroid_medication=bool(s.get("steroid_medication")),
                )
                for s in c["signals"]
            ),
        )
        for c in flags["categories"]
    )
    orders = _read("orders.json")
    return Knowledge(
        valuesets=sets,
        red_flag_categories=categories,
        red_flag_statement=flags["guideline_statement"],
        bed_rest_codes=frozenset((s, c) for s, c in orders["bed_rest"]["codes"]),
        bed_rest_patterns=tuple(re.compile(p, re.IGNORECASE) for p in orders["bed_rest"]["text_patterns"]),
        steroid_ingredients=tuple(orders["systemic_steroids"]["ingredients"]),
        non_systemic_terms=tuple(orders["systemic_steroids"]["non_systemic_terms"]),
        observation_codes={k: frozenset((s, c) for s, c in v) for k, v in orders["observations"].items()},
    )
