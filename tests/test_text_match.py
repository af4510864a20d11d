"""Free text is read with negation: a term counts unless a negation cue governs it in the same clause."""

from __future__ import annotations

import pytest

from cds_service.domain.clock import wall_clock
from cds_service.knowledge.model import knowledge

KB = knowledge()


def categories(text: str) -> set[str]:
    return {key.split(":")[0] for key in KB.text.find(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Saddle anaesthesia", {"cauda-equina"}),
        ("denies saddle anaesthesia", set()),
        ("No saddle numbness; urinary retention since Monday", {"cauda-equina"}),
        ("bladder dysfunction ruled out", set()),
        ("Negative for cauda equina", set()),
        ("?cauda equina", {"cauda-equina"}),
        ("Rule out cauda equina syndrome", {"cauda-equina"}),
        ("Family history of cancer", set()),
        ("History of cancer", {"malignancy"}),
        ("cancer history negative", set()),
        ("No fever but weight loss unexplained", set()),
        ("No fever, but unexplained weight loss", {"malignancy"}),
        ("Absent ankle reflex, foot drop", {"neurologic-deficit"}),
    ],
)
def test_red_flag_terms_with_negation(text: str, expected: set[str]) -> None:
    assert categories(text) - {"caution", "episode"} == expected


@pytest.mark.parametrize(
    ("text", "is_back_pain"),
    [("Acute low back pain", True), ("LBP", True), ("Lumbago", True), ("No back pain", False), ("Neck pain", False)],
)
def test_back_pain_text(text: str, is_back_pain: bool) -> None:
    assert (KB.episode.text_key in KB.text.find(text)) == is_back_pain


@pytest.mark.parametrize(
    ("label", "named"),
    [
        ("Duloxetine 30 mg daily", True),
        ("no ibuprofen - allergy", False),
        ("Stop prednisone; start paracetamol", False),
        ("Prednisone taper. Not for long-term use", True),
        ("avoid naproxen", False),
    ],
)
def test_medicine_names_in_uncoded_orders_are_read_with_negation(label: str, named: bool) -> None:
    from cds_service.domain.text_match import names_a_medicine

    assert names_a_medicine(label, ("duloxetine", "ibuprofen", "prednisone", "naproxen")) == named


def test_an_uncoded_duloxetine_order_is_read() -> None:
    from cds_service.fhir.selection import selector_for

    order = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "medicationCodeableConcept": {"text": "Duloxetine 30mg"},
    }
    assert selector_for(KB, 14, wall_clock).is_relevant(order)


def _fresh_matcher():
    from cds_service.domain.text_match import TextMatcher

    return TextMatcher.build({"flag": ["saddle (?:anaesthesia|numbness)"]}, ["no"], ["ruled out"])


def test_might_match_sees_a_term_in_any_case_negated_or_not():
    matcher = _fresh_matcher()
    assert matcher.might_match("SADDLE ANAESTHESIA")
    assert matcher.might_match("no saddle numbness")  # worth reading; find() then applies the negation
    assert not matcher.might_match("knee pain")
    assert not matcher.might_match("")


def test_might_match_remembers_each_answer_and_stays_bounded(monkeypatch):
    from cds_service.domain import text_match

    monkeypatch.setattr(text_match, "SEEN_LIMIT", 3)
    matcher = _fresh_matcher()
    for text in ("a", "saddle numbness", "c", "d", "e"):
        matcher.might_match(text)
    assert list(matcher.seen.answers) == ["c", "d", "e"]  # oldest first out
    assert matcher.seen.answers["e"] is False
    assert matcher.might_match("saddle numbness") is True  # forgotten, asked again, same answer
    other = _fresh_matcher()
    assert other.seen.answers == {}  # answers belong to their matcher


def test_find_remembers_each_answer_per_text_and_keys_and_stays_bounded(monkeypatch):
    from cds_service.domain import text_match

    monkeypatch.setattr(text_match, "SEEN_LIMIT", 2)
    matcher = text_match.TextMatcher.build(
        {"flag": ["saddle numbness"], "other": ["urinary retention"]}, ["no"], ["ruled out"]
    )
    assert matcher.find("saddle numbness and urinary retention") == {"flag", "other"}
    assert matcher.find("saddle numbness and urinary retention", ("other",)) == {"other"}  # the keys asked count
    assert list(matcher.found.answers) == [
        ("saddle numbness and urinary retention", None),
        ("saddle numbness and urinary retention", ("other",)),
    ]
    assert matcher.find("no saddle numbness") == frozenset()  # negated: remembered as found nothing
    assert ("no saddle numbness", None) in matcher.found.answers
    assert len(matcher.found.answers) == 2  # oldest first out
    assert matcher.find("saddle numbness and urinary retention") == {"flag", "other"}  # asked again, same answer
