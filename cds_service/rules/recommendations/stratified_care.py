"""Stratified care with the STarT Back tool.

Guideline ("Stratified Care Approach Based on Risk"): "At 2 weeks from pain onset, use the STarT Back
tool"; "Low-risk patients: Continue self-management with advice to stay active"; "Medium-risk patients:
Refer to physiotherapy with a patient-centered management plan"; "High-risk patients: Refer to
physiotherapy with skills to provide comprehensive biopsychosocial assessment".
- When a STarT Back result is on record (risk level; or total and distress subscore; or the nine item
  answers, scored here), Then advise by risk, offering the referral for medium and high risk.
- When two weeks or more have passed since onset and there is no result, Then suggest screening.
When the Observations could not be read, nothing is suggested: the tool may well have been used.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.domain.facts import Concept, ObservationFact, PatientRecord, Quantity
from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.knowledge.model import Knowledge, StarTBackCodes
from cds_service.knowledge.thresholds import Thresholds
from cds_service.rules.catalog import PATIENT_VIEW, register

RISK_RULE = register(
    "lbp-startback-risk",
    hooks=PATIENT_VIEW,
    thresholds=("startback_low_max_total", "startback_high_min_distress", "startback_item9_positive_min"),
)
SCREEN_RULE = register("lbp-startback-screen", hooks=PATIENT_VIEW, thresholds=("startback_screen_weeks",))


@dataclass(frozen=True)
class Answer:
    ref: str
    quantity: Quantity | None
    integer: int | None
    boolean: bool | None
    code: Concept | None


@dataclass(frozen=True)
class StarTBackResult:
    risk: str
    how: str
    evidence: tuple[str, ...]
    total: float | None = None  # None when only the risk level was recorded
    distress: float | None = None


def _answers(observations: tuple[ObservationFact, ...], codes: StarTBackCodes) -> dict[tuple[str, str], Answer]:
    """The latest answer per STarT Back code, from standalone Observations or the panel's components."""
    wanted = codes.all_codes
    latest: dict[tuple[str, str], tuple[str, Answer]] = {}
    for obs in observations:
        when = obs.effective.isoformat() if obs.effective else ""
        entries = [(obs.code, Answer(obs.ref, obs.quantity, obs.value_integer, obs.value_boolean, obs.value_code))]
        entries += [(c.code, Answer(obs.ref, c.quantity, c.value_integer, None, c.value_code)) for c in obs.components]
        for concept, answer in entries:
            for coding in concept.codings:
                if coding in wanted and (coding not in latest or latest[coding][0] <= when):
                    latest[coding] = (when, answer)
    return {code: answer for code, (_, answer) in latest.items()}


def _number(answer: Answer) -> float | None:
    if answer.integer is not None:
        return float(answer.integer)
    return answer.quantity.value if answer.quantity else None


def _text(answer: Answer) -> str:
    return answer.code.label().strip().lower() if answer.code else ""


def _item_score(index: int, answer: Answer, codes: StarTBackCodes, limits: Thresholds) -> int | None:
    if index < 8:
        if answer.boolean is not None:
            return int(answer.boolean)
        number = _number(answer)
        if number is not None:
            return 1 if number >= 1 else 0
        text = _text(answer)
        if text:
            return 1 if text in codes.agree_answers else 0
        return None
    number = _number(answer)
    if number is not None:
        return 1 if number >= limits.startback_item9_positive_min.value else 0  # 0 not at all ... 4 extremely
    text = _text(answer)
    return (1 if text in codes.item9_positive else 0) if text else None


def _risk(total: float, distress: float, limits: Thresholds) -> str:
    if total <= limits.startback_low_max_total.value:
        return "low"
    return "high" if distress >= limits.startback_high_min_distress.value else "medium"


def startback_result(record: PatientRecord, codes: StarTBackCodes, limits: Thresholds) -> StarTBackResult | None:
    answers = _answers(record.observations, codes)
    level = answers.get(codes.risk_level)
    if level and level.code:
        for _, code in level.code.codings:
            if code in codes.risk_answers:
                return StarTBackResult(codes.risk_answers[code], "recorded risk level", (level.ref,))
    total, distress = answers.get(codes.total), answers.get(codes.distress)
    if total and distress and _number(total) is not None and _number(distress) is not None:
        t, d = _number(total) or 0.0, _number(distress) or 0.0
        return StarTBackResult(
            _risk(t, d, limits), f"total score {t:g}, distress subscore {d:g}", (total.ref, distress.ref), t, d
        )
    scores = [_item_score(i, answers[c], codes, limits) if c in answers else None for i, c in enumerate(codes.items)]
    if all(s is not None for s in scores):
        t, d = sum(scores), sum(scores[4:])  # type: ignore[arg-type]
        refs = tuple(dict.fromkeys(answers[c].ref for c in codes.items))
        return StarTBackResult(
            _risk(t, d, limits), f"scored from the nine answers: total {t}, distress subscore {d}", refs, t, d
        )
    return None


def stratified_care(record: PatientRecord, episode: BackPainEpisode, kb: Knowledge) -> Finding | None:
    if record.gap(kb.sources["startback_results"]):
        return None
    result = startback_result(record, kb.startback, kb.thresholds)
    if result:
        return Finding(
            rule=RISK_RULE,
            indicator="info",
            episode=episode,
            evidence=result.evidence,
            facts={"variant": result.risk, "how": result.how},
        )
    if episode.weeks is not None and episode.weeks >= kb.thresholds.startback_screen_weeks.value:
        return Finding(rule=SCREEN_RULE, indicator="info", episode=episode, evidence=episode.evidence)
    return None
