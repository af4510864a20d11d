"""The knowledge files and the rules agree, checked at start-up: an unknown rule id, override reason or
citation stops the service with a message naming it, instead of a 500 the first time the rule fires."""

from __future__ import annotations

import copy
import json

import pytest

from cds_service.knowledge.loader import KNOWLEDGE_DIR
from cds_service.rules.registry import RULE_IDS, check_knowledge, knowledge_problems

FILES = {
    n: json.loads((KNOWLEDGE_DIR / f"{n}.json").read_text())
    for n in (
        "cards",
        "citations",
        "override_reasons",
        "memory",
        "low_value",
        "thresholds",
        "red_flags",
        "medicine_safety",
        "orders",
        "services",
        "record_sources",
    )
}


def test_the_shipped_knowledge_fits_the_rules() -> None:
    check_knowledge()
    assert knowledge_problems(**FILES) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["cards"]["rules"].pop("lbp-bed-rest"), "'lbp-bed-rest' has no card template"),
        (
            lambda f: f["cards"]["rules"].__setitem__("lbp-bed-rst", {"citation": "nice-ng59"}),
            "unknown rule 'lbp-bed-rst'",
        ),
        (
            lambda f: f["memory"]["suppressing_reasons"].__setitem__("lbp-imaging", ["other"]),
            "memory.json names unknown rule",
        ),
        (lambda f: f["memory"]["suppressing_reasons"]["lbp-bed-rest"].append("dose-intended"), "never offered reason"),
        (
            lambda f: f["cards"]["rules"]["lbp-review"].__setitem__("citation", "nice-ng95"),
            "unknown source 'nice-ng95'",
        ),
        (lambda f: f["cards"]["rules"]["lbp-bed-rest"]["override_reasons"].append("typo"), "unknown override reason"),
        (lambda f: f["low_value"]["interventions"][0].__setitem__("citation", "nowhere"), "low_value.json"),
        (
            lambda f: f["thresholds"]["thresholds"]["review_weeks"].__setitem__("citation", "nowhere"),
            "thresholds.json 'review_weeks' cites unknown source",
        ),
        (
            lambda f: f["thresholds"]["thresholds"].__setitem__("unused_weeks", {"value": 1, "citation": "guideline"}),
            "'unused_weeks' is read by no rule and printed by no card",
        ),
        (
            lambda f: f["red_flags"]["silences"]["rules"].append("lbp-startback"),
            "red_flags.json silences unknown rule 'lbp-startback'",
        ),
        (
            lambda f: f["red_flags"]["silences"].__setitem__("citation", "nowhere"),
            "red_flags.json 'silences' cites unknown source",
        ),
        (
            lambda f: f["thresholds"]["thresholds"].pop("review_weeks"),
            "a rule reads unknown threshold 'review_weeks'",
        ),
    ],
)
def test_a_knowledge_file_that_does_not_fit_is_named(change, message: str) -> None:
    files = copy.deepcopy(FILES)
    change(files)
    problems = knowledge_problems(**files)
    assert any(message in p for p in problems), problems


def test_every_rule_the_scenarios_expect_is_registered() -> None:
    scenarios = json.loads((KNOWLEDGE_DIR.parent.parent / "fhir_fixtures" / "scenarios.json").read_text())["scenarios"]
    assert {e["rule"] for s in scenarios for e in s["expect"]} <= RULE_IDS


def test_the_observations_prefetch_asks_for_every_code_a_red_flag_lab_is_read_by() -> None:
    from cds_service.cds_hooks.protocol import load_services
    from cds_service.knowledge.model import knowledge

    query = next(k.query for s in load_services().values() for k in s.prefetch if k.name == "observations")
    asked = {tuple(item.split("|", 1)) for item in query.split("code=", 1)[1].split("&", 1)[0].split(",")}
    lab_codes = {coding for lab in knowledge().red_flags.labs for coding in lab.codes}
    assert lab_codes and lab_codes <= asked


def test_a_sentence_the_rules_compose_missing_from_cards_json_stops_start_up():
    from cds_service.knowledge.loader import read_knowledge
    from cds_service.knowledge.model import RULE_NOTES, _rule_notes

    notes = dict(read_knowledge("cards.json")["rule_notes"])
    assert set(RULE_NOTES) <= set(notes)  # the shipped file has every one
    del notes["checked_fever"]
    with pytest.raises(RuntimeError, match="checked_fever"):
        _rule_notes(notes)


def test_a_record_source_that_is_no_prefetch_key_stops_start_up():
    files = copy.deepcopy(FILES)
    files["record_sources"]["pain_scores"] = "painScores"
    assert knowledge_problems(**files) == [
        "record_sources.json: 'pain_scores' names 'painScores', which is no prefetch key of services.json"
    ]
