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
class LowValueIntervention:
    id: str
    label: str
    valueset: ValueSet
    not_when: ValueSet | None
    why: str


@dataclass(frozen=True)
class IbuprofenLimits:
    valueset: ValueSet
    max_daily_mg: float
    strength_mg: Mapping[Coding, float]


@dataclass(frozen=True)
class StarTBackCodes:
    screen_after_weeks: float
    risk_level: Coding
    total: Coding
    distress: Coding
    items: tuple[Coding, ...]
    risk_answers: Mapping[str, str]
    item9_positive: tuple[str, ...]
    agree_answers: tuple[str, ...]

    @property
    def all_codes(self) -> frozenset[Coding]:
        return frozenset({self.risk_level, self.total, self.distress, *self.items})


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
    low_value: tuple[LowValueIntervention, ...]
    low_value_statement: str
    ibuprofen: IbuprofenLimits
    nsaid_names: tuple[str, ...]
    second_line_names: tuple[str, ...]
    startback: StarTBackCodes

    def vs(self, name: str) -> ValueSet:
        return self.valuesets[name]

    def relevant_codes(self) -> frozenset[Coding]:
        """Every code any rule can act on: used to pick resources worth validating."""
        codes: set[Coding] = set(self.bed_rest_codes)
        for valueset in self.valuesets.values():
            codes |= valueset.codes
        for observation in self.observation_codes.values():
            codes |= observation
        return frozenset(codes | self.startback.all_codes)


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
    low_value = _read("low_value.json")
    medicines = _read("medicines.json")
    ibuprofen = medicines["ibuprofen"]
    stratified = _read("stratified_care.json")
    loinc = "http://loinc.org"
    return Knowledge(
        valuesets=sets,
        red_flag_categories=categories,
        red_flag_statement=flags["guideline_statement"],
        bed_rest_codes=frozenset((s, c) for s, c in orders["bed_rest"]["codes"]),
        bed_rest_patterns=tuple(re.compile(p, re.IGNORECASE) for p in orders["bed_rest"]["text_patterns"]),
        steroid_ingredients=tuple(orders["systemic_steroids"]["ingredients"]),
        non_systemic_terms=tuple(orders["systemic_steroids"]["non_systemic_terms"]),
        observation_codes={k: frozenset((s, c) for s, c in v) for k, v in orders["observations"].items()},
        low_value=tuple(
            LowValueIntervention(
                id=i["id"],
                label=i["label"],
                valueset=sets[i["valueset"]],
                not_when=sets[i["not_when"]] if "not_when" in i else None,
                why=i["why"],
            )
            for i in low_value["interventions"]
        ),
        low_value_statement=low_value["guideline_statement"],
        ibuprofen=IbuprofenLimits(
            valueset=sets[ibuprofen["valueset"]],
            max_daily_mg=float(ibuprofen["max_daily_mg"]),
            strength_mg={tuple(k.split("|", 1)): float(v) for k, v in ibuprofen["strength_mg"].items()},  # type: ignore[misc]
        ),
        nsaid_names=tuple(medicines["nsaid"]["names"]),
        second_line_names=tuple(medicines["second_line"]["names"]),
        startback=StarTBackCodes(
            screen_after_weeks=float(stratified["screen_after_weeks"]),
            risk_level=(loinc, stratified["codes"]["risk_level"]),
            total=(loinc, stratified["codes"]["total"]),
            distress=(loinc, stratified["codes"]["distress"]),
            items=tuple((loinc, code) for code in stratified["codes"]["items"]),
            risk_answers=stratified["risk_answers"],
            item9_positive=tuple(stratified["item9_positive_answers"]),
            agree_answers=tuple(stratified["agree_answers"]),
        ),
    )
