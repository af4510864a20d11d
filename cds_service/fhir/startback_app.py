"""The FHIR resources of the STarT Back SMART app (issue 31, item 1): the tool as a Questionnaire (from
knowledge/startback_questionnaire.json), the check of a QuestionnaireResponse against it, and the Observations
of its score that the app writes back: the total (LOINC 91351-7), the distress subscore (91350-9) and the risk
level (91352-5), each `derivedFrom` the response.

The score itself is the rules' own (rules/recommendations/stratified_care.py `startback_result`): the response
is read as the Observations it stands for (facts.questionnaire_observations, linkId = LOINC item code), so the
app and the next hook call can never score the same answers differently."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from cds_service.domain.facts import PatientRecord
from cds_service.fhir.facts import questionnaire_observations
from cds_service.knowledge.loader import read_knowledge
from cds_service.knowledge.model import Knowledge
from cds_service.rules.recommendations.stratified_care import StarTBackResult, startback_result

LOINC = "http://loinc.org"
SURVEY = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey", "display": "Survey"}
    ]
}
RISK_DISPLAY = {"low": "Low risk", "medium": "Medium risk", "high": "High risk"}


@cache
def questionnaire() -> Mapping[str, Any]:
    """The STarT Back Questionnaire resource (read once: the knowledge does not change while the service runs)."""
    resource: Mapping[str, Any] = read_knowledge("startback_questionnaire.json")["questionnaire"]
    return resource


def response_problems(response: Any) -> list[str]:
    """What is wrong with a QuestionnaireResponse to this Questionnaire, in words (empty: it can be scored).
    Every item must be answered once, with one of its own options: a partial tool has no score."""
    if not isinstance(response, Mapping) or response.get("resourceType") != "QuestionnaireResponse":
        return ["the body must be a FHIR QuestionnaireResponse (resourceType QuestionnaireResponse)"]
    form = questionnaire()
    problems = []
    if response.get("questionnaire") != form["url"]:
        problems.append(f"questionnaire must be {form['url']}")
    if response.get("status") != "completed":
        problems.append("status must be completed: only a finished tool is scored")
    items = response.get("item")
    given: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("linkId"), str):
            if item["linkId"] in given:
                problems.append(f"item {item['linkId']} is given twice")
            given[item["linkId"]] = item.get("answer")
    questions = [q for q in form["item"] if q["type"] != "display"]
    known = {q["linkId"] for q in questions}
    problems += [f"item {link} is not in this questionnaire" for link in given if link not in known]
    for number, question in enumerate(questions, start=1):
        answers = given.get(question["linkId"])
        if not isinstance(answers, list) or len(answers) != 1 or not isinstance(answers[0], Mapping):
            problems.append(f"item {number} ({question['linkId']}) needs exactly one answer")
            continue
        coding = answers[0].get("valueCoding")
        allowed = {(o["valueCoding"]["system"], o["valueCoding"]["code"]) for o in question["answerOption"]}
        if not isinstance(coding, Mapping) or (coding.get("system"), coding.get("code")) not in allowed:
            problems.append(f"item {number} ({question['linkId']}): the answer must be one of its options")
    return problems


def score(response: Mapping[str, Any], kb: Knowledge) -> StarTBackResult:
    """The rules' score of a checked response (response_problems empty)."""
    record = PatientRecord(patient_id="", observations=questionnaire_observations(response))
    result = startback_result(record, kb.startback, kb.thresholds)
    if result is None or result.total is None or result.distress is None:
        raise ValueError("a checked response must score")  # response_problems lets no unscorable one through
    return result


def score_observations(
    result: StarTBackResult, *, patient: str, response_ref: str, when: datetime, kb: Knowledge
) -> list[dict[str, Any]]:
    """The total, the distress subscore and the risk level as Observations, derivedFrom the response."""
    codes = kb.startback
    risk_code = next(code for code, risk in codes.risk_answers.items() if risk == result.risk)

    def observation(code: str, display: str, value: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "status": "final",
            "category": [SURVEY],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": when.isoformat(),
            "derivedFrom": [{"reference": response_ref}],
            **value,
        }

    return [
        observation(codes.total[1], "Total score [STarT Back]", {"valueInteger": int(result.total or 0)}),
        observation(codes.distress[1], "Distress subscore [STarT Back]", {"valueInteger": int(result.distress or 0)}),
        observation(
            codes.risk_level[1],
            "STarT Back Screening risk level",
            {
                "valueCodeableConcept": {
                    "coding": [{"system": LOINC, "code": risk_code, "display": RISK_DISPLAY[result.risk]}],
                    "text": RISK_DISPLAY[result.risk],
                }
            },
        ),
    ]
