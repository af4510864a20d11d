"""Medicine safety as data (medicine_safety.json): NSAID contraindications and where each is recorded, what an
opioid is for, and the older-adult rule; the rules in cds_service.rules.recommendations.medicine_safety read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.knowledge.terminology import ValueSet
from cds_service.knowledge.thresholds import Threshold, Thresholds


@dataclass(frozen=True)
class Contraindication:
    id: str
    label: str
    citation: str
    source: str
    condition_valueset: ValueSet | None = None
    condition_any_status: bool = False
    recent_days: int | None = None
    allergy_valueset: ValueSet | None = None
    medication_valueset: ValueSet | None = None
    medication_names: tuple[str, ...] = ()
    observation_valueset: ValueSet | None = None
    egfr_valueset: ValueSet | None = None
    egfr_below: float | None = None
    egfr_recent_days: int | None = None
    positive_answers: frozenset[tuple[str, str]] = frozenset()
    text_key: str = ""  # its terms in Knowledge.text


@dataclass(frozen=True)
class OpioidIndication:
    other_medicines: ValueSet
    other_names: tuple[str, ...]
    antitussive_terms: tuple[str, ...]
    other_reasons: ValueSet


@dataclass(frozen=True)
class OlderAdult:
    """From this age no one-click NSAID (AGS Beers 2023), and a missing renal function result is named."""

    min_age: Threshold
    label: str  # with {age} and {min_age}
    renal: tuple[ValueSet, ...]
    renal_recent_days: int
    no_renal_result: str
    citation: str


@dataclass(frozen=True)
class MedicineSafetyRules:
    sources: Mapping[str, str]  # prefetch key -> how a card names it; a gap in any: not checked
    nsaid: tuple[Contraindication, ...]
    opioid: OpioidIndication
    older_adult: OlderAdult


def contraindication_terms(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """Text terms of each contraindication, for the one TextMatcher the knowledge builds."""
    return {f"contraindication:{i['id']}": list(i["text"]) for i in raw["nsaid_contraindications"] if i.get("text")}


def load_medicine_safety(
    raw: Mapping[str, Any], sets: Mapping[str, ValueSet], limits: Thresholds
) -> MedicineSafetyRules:
    def vs(key: str, item: Mapping[str, Any]) -> ValueSet | None:
        return sets[item[key]] if key in item else None

    nsaid = tuple(
        Contraindication(
            id=item["id"],
            label=item["label"],
            citation=item["citation"],
            source=item["source"],
            condition_valueset=vs("condition_valueset", item),
            condition_any_status=bool(item.get("condition_any_status")),
            recent_days=item.get("recent_days"),
            allergy_valueset=vs("allergy_valueset", item),
            medication_valueset=vs("medication_valueset", item),
            medication_names=tuple(item.get("medication_names", ())),
            observation_valueset=vs("observation_valueset", item),
            egfr_valueset=vs("egfr_valueset", item),
            egfr_below=item.get("egfr_below"),
            egfr_recent_days=item.get("egfr_recent_days"),
            text_key=f"contraindication:{item['id']}" if item.get("text") else "",
            positive_answers=frozenset((sys, code) for sys, code in item.get("positive_answers", ())),
        )
        for item in raw["nsaid_contraindications"]
    )
    opioid = raw["opioid_indication"]
    older = raw["older_adult"]
    return MedicineSafetyRules(
        sources={key: str(name) for key, name in raw["sources"].items() if not key.startswith("_")},
        older_adult=OlderAdult(
            min_age=getattr(limits, older["threshold"]),
            label=older["label"],
            renal=tuple(sets[name] for name in older["renal_valuesets"]),
            renal_recent_days=int(older["renal_recent_days"]),
            no_renal_result=older["no_renal_result"],
            citation=older["citation"],
        ),
        nsaid=nsaid,
        opioid=OpioidIndication(
            other_medicines=sets[opioid["not_for_back_pain_medicines"]],
            other_names=tuple(n.lower() for n in opioid["not_for_back_pain_names"]),
            antitussive_terms=tuple(t.lower() for t in opioid["antitussive_terms"]),
            other_reasons=sets[opioid["other_indication_reasons"]],
        ),
    )
