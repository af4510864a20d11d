"""The clinical knowledge the rules read, loaded once per process from the reviewable data files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from types import MappingProxyType
from typing import Any

from cds_service.domain.facts import Coding
from cds_service.domain.text_match import TextMatcher
from cds_service.knowledge.answers import YesNo, load_yes_no
from cds_service.knowledge.loader import read_knowledge
from cds_service.knowledge.medicine_safety import MedicineSafetyRules, contraindication_terms, load_medicine_safety
from cds_service.knowledge.terminology import ValueSet, valuesets
from cds_service.knowledge.thresholds import Threshold, Thresholds, load_thresholds


@dataclass(frozen=True)
class LabCriterion:
    """A laboratory or measurement result that is a red flag beyond a threshold (red_flags.json 'lab')."""

    codes: frozenset[Coding]  # LOINC codes of the result
    names: re.Pattern[str]  # the result's name in its code text, for results with a local or no code
    not_names: re.Pattern[str] | None  # another specimen (urine white cells are not a blood count)
    threshold: Threshold
    direction: str  # ">=", ">" or "<=": the side of the threshold that is the red flag
    window: Threshold | None  # days a result counts for; None: whatever its age
    units: Mapping[str, float]  # lower-cased unit -> factor to the threshold's unit
    abnormal_interpretations: frozenset[str]  # v3 ObservationInterpretation codes the laboratory flags with

    def recognises(self, codings: tuple[Coding, ...], text: str) -> bool:
        if self.codes.intersection(codings):
            return True
        lowered = text.lower()
        return self.names.search(lowered) is not None and not (self.not_names and self.not_names.search(lowered))

    def beyond(self, value: float) -> bool:
        limit = self.threshold.value
        return {">=": value >= limit, ">": value > limit, "<=": value <= limit}[self.direction]


@dataclass(frozen=True)
class MedicineCriterion:
    """A medicine that implies a red flag (immunosuppression, cancer treatment) when taken within a window."""

    names: tuple[str, ...]  # lower-case ingredient names, found in the medicine's code display or text
    window: Threshold  # days since it was last taken
    valueset: ValueSet | None = None  # RxNorm codes, for medicines sent with a code and no display

    def names_it(self, codings: tuple[Coding, ...], text: str) -> str | None:
        """The ingredient that makes it this medicine (from its name), or the value set's display for its code."""
        lowered = text.lower()
        named = next((n for n in self.names if n in lowered), None)
        if named is None and self.valueset is not None and (code := self.valueset.matches(codings)):
            return self.valueset.displays.get(code) or code[1]
        return named


@dataclass(frozen=True)
class RedFlagSignal:
    key: str  # where its text terms live in the TextMatcher
    label: str
    valueset: ValueSet | None
    any_status: bool  # resolved, inactive and in-remission entries count too
    recent_days: int | str | None  # "fever": the configured fever window
    window_for_active: bool  # False: the window applies only to resolved or inactive entries
    when_older: str  # "caution" or "ignore"
    critical: bool
    specific: bool  # raises the card even with no back pain on the record
    fever_observation: bool = False
    steroid_medication: bool = False
    why: str = ""  # caution signals: why they matter
    lab: LabCriterion | None = None
    medicine: MedicineCriterion | None = None


@dataclass(frozen=True)
class RedFlagCategory:
    id: str
    label: str
    indicator: str
    summary: str
    summary_not_critical: str
    advice: str
    citation: str
    signals: tuple[RedFlagSignal, ...]


@dataclass(frozen=True)
class EpisodeRules:
    valueset: ValueSet
    text_key: str


@dataclass(frozen=True)
class LowValueIntervention:
    id: str
    label: str
    valueset: ValueSet
    not_when: ValueSet | None
    why: str
    citation: str
    text: re.Pattern[str] | None = None  # the order's lower-cased text, for orders with a local code or none


@dataclass(frozen=True)
class PostOperative:
    """Spinal surgery or a dural tear within a window: a bed-rest order then is the surgical team's."""

    valuesets: tuple[ValueSet, ...]
    text_key: str  # its terms in Knowledge.text (read with negation)
    window: Threshold


@dataclass(frozen=True)
class ImagingText:
    """Lumbar imaging written in words (orders.json 'lumbar_imaging'): a modality and a lumbar or sacral site,
    and nothing that makes it a guided procedure."""

    modality: re.Pattern[str]
    site: re.Pattern[str]
    not_: re.Pattern[str]

    def names_lumbar_imaging(self, text: str) -> bool:
        lowered = text.lower()
        return bool(self.modality.search(lowered) and self.site.search(lowered) and not self.not_.search(lowered))


@dataclass(frozen=True)
class IbuprofenLimits:
    valueset: ValueSet
    strength_mg: Mapping[Coding, float]


@dataclass(frozen=True)
class StarTBackCodes:
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
class RedFlagKnowledge:
    """red_flags.json, with the value sets and names its signals read (orders.json 'systemic_steroids')."""

    categories: tuple[RedFlagCategory, ...]
    cautions: tuple[RedFlagSignal, ...]
    statement: str
    silences: frozenset[str]  # routine cards a red flag holds back on that call ('silences', with the reason)
    sources: frozenset[str]  # prefetch keys red flags are read from ('sources')
    # Red-flag and caution signals by key, and the keys of the signals each code belongs to (category None:
    # a caution signal). Built once, so that reading a record is a dictionary look-up per coding.
    signals_by_key: Mapping[str, tuple[RedFlagCategory | None, RedFlagSignal]]
    signals_by_code: Mapping[Coding, tuple[str, ...]]
    body_temperature: frozenset[Coding]
    systemic_steroids: ValueSet
    steroid_ingredients: tuple[str, ...]
    non_systemic_terms: tuple[str, ...]

    @cached_property
    def medicines(self) -> tuple[str, ...]:
        """Every medicine name a red-flag signal reads: the selector keeps orders and statements naming them."""
        return tuple(n for c in self.categories for s in c.signals if s.medicine for n in s.medicine.names)

    @cached_property
    def labs(self) -> tuple[LabCriterion, ...]:
        """Every laboratory criterion of every red-flag category: the selector reads results by these."""
        return tuple(s.lab for c in self.categories for s in c.signals if s.lab)


@dataclass(frozen=True)
class OrderKnowledge:
    """orders.json: how bed-rest and lumbar imaging orders, and the observations rules read, are recognised."""

    bed_rest_codes: frozenset[Coding]
    bed_rest_patterns: tuple[re.Pattern[str], ...]
    bed_rest_text: TextMatcher  # the same terms, read with negation ("avoid bed rest" is not a bed-rest order)
    lumbar_imaging_text: ImagingText
    post_operative: PostOperative
    observation_codes: Mapping[str, frozenset[Coding]]


@dataclass(frozen=True)
class LowValueKnowledge:
    """low_value.json: the interventions the guideline names as low value, and where on the body they count."""

    interventions: tuple[LowValueIntervention, ...]
    statement: str
    back_body_site: re.Pattern[str]


@dataclass(frozen=True)
class MedicineKnowledge:
    """medicines.json and medicine_safety.json: the medicines the rules name, and what must be checked first."""

    ibuprofen: IbuprofenLimits
    nsaids: ValueSet  # medicines.json names these three sets
    opioids: ValueSet
    second_line: ValueSet
    nsaid_names: tuple[str, ...]
    second_line_names: tuple[str, ...]
    safety: MedicineSafetyRules


@dataclass(frozen=True)
class CardContent:
    """cards.json, citations.json and override_reasons.json as the renderer reads them."""

    cards: Mapping[str, Any]
    citations: Mapping[str, Any]
    override_reasons: Mapping[str, Any]


@dataclass(frozen=True)
class Knowledge:
    """The clinical knowledge, by section; built once per process by knowledge() and handed to the rules."""

    valuesets: Mapping[str, ValueSet]
    text: TextMatcher  # every text term of every section, read with negation
    episode: EpisodeRules
    thresholds: Thresholds
    red_flags: RedFlagKnowledge
    orders: OrderKnowledge
    low_value: LowValueKnowledge
    medicines: MedicineKnowledge
    startback: StarTBackCodes
    answers: YesNo  # yes and no as records say them (answers.json)
    notes: Mapping[str, str]  # sentences the rules compose (cards.json 'rule_notes'), by key
    cards: CardContent
    # Which prefetch key each kind of fact a rule checks is read from (record_sources.json).
    sources: Mapping[str, str]

    def vs(self, name: str) -> ValueSet:
        return self.valuesets[name]

    def relevant_codes(self) -> frozenset[Coding]:
        """Every code any rule can act on: used to pick resources worth validating."""
        codes: set[Coding] = set(self.orders.bed_rest_codes)
        for valueset in self.valuesets.values():
            codes |= valueset.codes
        for observation in self.orders.observation_codes.values():
            codes |= observation
        return frozenset(codes | self.startback.all_codes).union(*(lab.codes for lab in self.red_flags.labs))


def _read(name: str) -> Any:
    return read_knowledge(name)


def _any_of(patterns: Iterable[str]) -> re.Pattern[str] | None:
    patterns = tuple(patterns)
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def _required_pattern(patterns: Iterable[str], where: str) -> re.Pattern[str]:
    pattern = _any_of(patterns)
    if pattern is None:
        raise RuntimeError(f"the knowledge needs at least one pattern in {where}")
    return pattern


def _lab(raw: Mapping[str, Any], limits: Thresholds) -> LabCriterion:
    return LabCriterion(
        codes=frozenset((s, c) for s, c in raw["codes"]),
        names=_required_pattern(raw["names"], "red_flags.json lab 'names'"),
        not_names=_any_of(raw.get("not_names", ())),
        threshold=getattr(limits, raw["threshold"]),
        direction=raw["direction"],
        window=getattr(limits, raw["window"]) if "window" in raw else None,
        units={unit.lower(): float(factor) for unit, factor in raw["units"].items()},
        abnormal_interpretations=frozenset(raw["abnormal_interpretations"]),
    )


def _signal(key: str, raw: Mapping[str, Any], sets: Mapping[str, ValueSet], limits: Thresholds) -> RedFlagSignal:
    return RedFlagSignal(
        key=key,
        label=raw["label"],
        valueset=sets[raw["valueset"]] if "valueset" in raw else None,
        any_status=raw.get("current", "active") == "any",
        recent_days=raw.get("recent_days"),
        window_for_active=raw.get("window_for", "all") == "all",
        when_older=raw.get("when_older", "ignore"),
        critical=bool(raw.get("critical")),
        specific=bool(raw.get("specific")),
        fever_observation=bool(raw.get("fever_observation")),
        steroid_medication=bool(raw.get("steroid_medication")),
        why=raw.get("why", ""),
        lab=_lab(raw["lab"], limits) if "lab" in raw else None,
        medicine=(
            MedicineCriterion(
                tuple(n.lower() for n in raw["medicine"]["names"]),
                getattr(limits, raw["medicine"]["window"]),
                sets[raw["medicine"]["valueset"]] if "valueset" in raw["medicine"] else None,
            )
            if "medicine" in raw
            else None
        ),
    )


# The sentences of cards.json 'rule_notes' the rules compose: one missing stops start-up, naming it.
RULE_NOTES = (
    "age_not_checked",
    "age_cancer_risk",
    "age_outside_measure",
    "checked_fever",
    "checked_steroids",
    "not_offered_found",
    "not_offered_not_checked",
)


def _rule_notes(raw: Mapping[str, Any]) -> Mapping[str, str]:
    missing = [key for key in RULE_NOTES if key not in raw]
    if missing:
        raise RuntimeError(f"cards.json rule_notes lacks {', '.join(missing)}")
    return MappingProxyType({key: str(raw[key]) for key in RULE_NOTES})


EPISODE_TEXT_KEY = "episode:low-back-pain"
POST_OPERATIVE_TEXT_KEY = "bed-rest:post-operative"
# Value sets the rules ask for by name (kb.vs); the knowledge files name the rest.
RULE_VALUESETS = (
    "exercise_therapy",
    "axial_spondyloarthritis_all",
    "lumbar_imaging_curated",
)


@cache
def knowledge() -> Knowledge:
    sets = valuesets()
    limits = load_thresholds(_read("thresholds.json"))
    flags = _read("red_flags.json")
    terms: dict[str, list[str]] = {}
    categories = []
    for c in flags["categories"]:
        signals = []
        for i, raw in enumerate(c["signals"]):
            key = f"{c['id']}:{i}"
            terms[key] = raw.get("text", [])
            signals.append(_signal(key, raw, sets, limits))
        categories.append(
            RedFlagCategory(
                id=c["id"],
                label=c["label"],
                indicator=c["indicator"],
                summary=c["summary"],
                summary_not_critical=c.get("summary_not_critical", c["summary"]),
                advice=c["advice"],
                citation=c["citation"],
                signals=tuple(signals),
            )
        )
    cautions = []
    for i, raw in enumerate(flags["caution_signals"]):
        key = f"caution:{i}"
        terms[key] = raw.get("text", [])
        cautions.append(_signal(key, raw, sets, limits))
    episode = _read("episode.json")
    terms[EPISODE_TEXT_KEY] = episode["text"]
    orders = _read("orders.json")
    post_op = orders["bed_rest"]["post_operative"]
    terms[POST_OPERATIVE_TEXT_KEY] = post_op["text"]

    safety_raw = _read("medicine_safety.json")
    terms.update(contraindication_terms(safety_raw))
    negation = _read("text_matching.json")
    low_value = _read("low_value.json")
    medicines = _read("medicines.json")
    ibuprofen = medicines["ibuprofen"]
    stratified = _read("stratified_care.json")
    loinc = "http://loinc.org"
    named = {
        *RULE_VALUESETS,
        *(s.valueset.name for c in categories for s in c.signals if s.valueset),
        *(s.valueset.name for s in cautions if s.valueset),
        *(s.medicine.valueset.name for c in categories for s in c.signals if s.medicine and s.medicine.valueset),
        episode["valueset"],
        ibuprofen["valueset"],
        *(medicines[k]["valueset"] for k in ("nsaid", "opioid", "second_line")),
        "body_temperature",
        "systemic_steroid_medicines",
        *post_op["valuesets"],
        *(i[k] for i in low_value["interventions"] for k in ("valueset", "not_when") if k in i),
    }
    by_key: dict[str, tuple[RedFlagCategory | None, RedFlagSignal]] = {
        **{s.key: (c, s) for c in categories for s in c.signals},
        **{s.key: (None, s) for s in cautions},
    }
    by_code: dict[Coding, list[str]] = {}
    for key, (_, signal) in by_key.items():
        for coding in signal.valueset.codes if signal.valueset else ():
            by_code.setdefault(coding, []).append(key)
    safety = load_medicine_safety(safety_raw, sets, limits)
    for item in safety_raw["nsaid_contraindications"]:
        named |= {item[k] for k in item if k.endswith("_valueset")}
    opioid = safety_raw["opioid_indication"]
    named |= {opioid["not_for_back_pain_medicines"], opioid["other_indication_reasons"]}
    named |= set(safety_raw["older_adult"]["renal_valuesets"])
    cards = _read("cards.json")
    kb = Knowledge(
        valuesets={name: sets[name] for name in sorted(named)},
        text=TextMatcher.build(terms, negation["negated_before"], negation["negated_after"]),
        episode=EpisodeRules(valueset=sets[episode["valueset"]], text_key=EPISODE_TEXT_KEY),
        thresholds=limits,
        red_flags=RedFlagKnowledge(
            categories=tuple(categories),
            cautions=tuple(cautions),
            statement=flags["guideline_statement"],
            silences=frozenset(flags["silences"]["rules"]),
            sources=frozenset(flags["sources"]["keys"]),
            signals_by_key=by_key,
            signals_by_code={coding: tuple(keys) for coding, keys in by_code.items()},
            body_temperature=sets["body_temperature"].codes,
            systemic_steroids=sets["systemic_steroid_medicines"],
            steroid_ingredients=tuple(orders["systemic_steroids"]["ingredients"]),
            non_systemic_terms=tuple(orders["systemic_steroids"]["non_systemic_terms"]),
        ),
        orders=OrderKnowledge(
            bed_rest_codes=frozenset((s, c) for s, c in orders["bed_rest"]["codes"]),
            bed_rest_patterns=tuple(re.compile(p, re.IGNORECASE) for p in orders["bed_rest"]["text_patterns"]),
            bed_rest_text=TextMatcher.build(
                {"bed-rest": [p.removeprefix("\\b").removesuffix("\\b") for p in orders["bed_rest"]["text_patterns"]]},
                [*negation["negated_before"], *orders["bed_rest"]["negated_by"]],
                negation["negated_after"],
            ),
            lumbar_imaging_text=ImagingText(
                *(
                    _required_pattern(orders["lumbar_imaging"][k], f"lumbar_imaging.{k}")
                    for k in ("modality", "site", "not")
                )
            ),
            post_operative=PostOperative(
                valuesets=tuple(sets[name] for name in post_op["valuesets"]),
                text_key=POST_OPERATIVE_TEXT_KEY,
                window=getattr(limits, post_op["window"]),
            ),
            observation_codes={k: frozenset((s, c) for s, c in v) for k, v in orders["observations"].items()},
        ),
        low_value=LowValueKnowledge(
            interventions=tuple(
                LowValueIntervention(
                    id=i["id"],
                    label=i["label"],
                    valueset=sets[i["valueset"]],
                    not_when=sets[i["not_when"]] if "not_when" in i else None,
                    why=i["why"],
                    citation=i["citation"],
                    text=_any_of(i.get("text", ())),
                )
                for i in low_value["interventions"]
            ),
            statement=low_value["guideline_statement"],
            back_body_site=re.compile("|".join(low_value["back_body_site_text"]), re.IGNORECASE),
        ),
        medicines=MedicineKnowledge(
            ibuprofen=IbuprofenLimits(
                valueset=sets[ibuprofen["valueset"]],
                strength_mg={tuple(k.split("|", 1)): float(v) for k, v in ibuprofen["strength_mg"].items()},
            ),
            nsaids=sets[medicines["nsaid"]["valueset"]],
            opioids=sets[medicines["opioid"]["valueset"]],
            second_line=sets[medicines["second_line"]["valueset"]],
            nsaid_names=tuple(medicines["nsaid"]["names"]),
            second_line_names=tuple(medicines["second_line"]["names"]),
            safety=safety,
        ),
        startback=StarTBackCodes(
            risk_level=(loinc, stratified["codes"]["risk_level"]),
            total=(loinc, stratified["codes"]["total"]),
            distress=(loinc, stratified["codes"]["distress"]),
            items=tuple((loinc, code) for code in stratified["codes"]["items"]),
            risk_answers=stratified["risk_answers"],
            item9_positive=tuple(stratified["item9_positive_answers"]),
            agree_answers=tuple(stratified["agree_answers"]),
        ),
        answers=load_yes_no(_read("answers.json")),
        notes=_rule_notes(cards["rule_notes"]),
        cards=CardContent(cards, _read("citations.json"), _read("override_reasons.json")),
        sources=MappingProxyType({k: str(v) for k, v in _read("record_sources.json").items() if not k.startswith("_")}),
    )
    return kb
