"""Reading free text for clinical terms, with negation: the safety net under coded data.

Real problem lists hold entries with text only ("Saddle numbness since Tuesday"), local codes with a
display, and negated notes ("denies bladder symptoms"). A term counts when it occurs in a clause with
no negation cue before it ("no", "denies", "negative for", "family history of"…) and no negating cue
after it ("ruled out", "history negative"…). Uncertainty ("?", "possible", "rule out") is not
negation: a suspected red flag makes the service more careful, never less. This is a small NegEx-style
matcher (Chapman et al., J Biomed Inform 2001); the cues live in knowledge/text_matching.json.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cds_service.domain.memo import Remembered

SEEN_LIMIT = 20_000
CLAUSE_BREAK = re.compile(r"[.;:\n|]|\bbut\b|\bhowever\b")


@dataclass(frozen=True)
class TextMatcher:
    terms: Mapping[str, re.Pattern[str]]  # key (a red-flag signal, "low back pain"…) -> its terms
    negated_before: re.Pattern[str]
    negated_after: re.Pattern[str]
    any_term: re.Pattern[str]  # every term at once: a cheap first look
    # might_match's and find's answers, per matcher (two matchers with different terms must not share them)
    seen: Remembered[str, bool] = field(default_factory=lambda: Remembered(SEEN_LIMIT), compare=False, repr=False)
    found: Remembered[tuple[str, tuple[str, ...] | None], frozenset[str]] = field(
        default_factory=lambda: Remembered(SEEN_LIMIT), compare=False, repr=False
    )

    # Built once per process with Knowledge; not mutation-tested (see medicine_safety.load_medicine_safety).
    # pragma: no mutate start
    @classmethod
    def build(cls, terms: Mapping[str, Sequence[str]], before: Sequence[str], after: Sequence[str]) -> TextMatcher:
        def alternation(words: Sequence[str]) -> str:
            return "|".join(f"(?:{w})" for w in words)

        compiled = {key: re.compile(rf"\b(?:{alternation(words)})") for key, words in terms.items() if words}
        every = [w for words in terms.values() for w in words]
        return cls(
            terms=compiled,
            negated_before=re.compile(rf"\b(?:{alternation(before)})\b"),
            negated_after=re.compile(rf"\b(?:{alternation(after)})\b"),
            any_term=re.compile(rf"\b(?:{alternation(every)})" if every else r"$^"),
        )

    # pragma: no mutate end

    def might_match(self, text: str) -> bool:
        """True when any term occurs at all, negated or not (to decide whether a resource is worth reading).

        The same problem-list texts come back on every hook call for a chart: answers are remembered
        (bounded, oldest first), which changes speed, never an answer."""
        return self.seen.answer(text, lambda: self.any_term.search(text.lower()) is not None)

    def find(self, text: str, keys: Sequence[str] | None = None) -> frozenset[str]:
        """The keys whose terms occur in ``text`` without negation.

        Remembered per text and keys, as might_match is: every rule reads the same problem-list texts again on
        every call for a chart (a third of the rules' time on a typical record, issue 17)."""
        if not text or not self.might_match(text):
            return frozenset()
        asked = tuple(keys) if keys is not None else None
        return self.found.answer((text, asked), lambda: self._find(text, asked))

    def _find(self, text: str, keys: tuple[str, ...] | None) -> frozenset[str]:
        lowered = text.lower()
        found: set[str] = set()
        for clause in CLAUSE_BREAK.split(lowered):
            for key in keys if keys is not None else self.terms:
                pattern = self.terms.get(key)
                if pattern is None or key in found:
                    continue
                for match in pattern.finditer(clause):
                    before, after = clause[: match.start()], clause[match.end() :]
                    if not self.negated_before.search(before) and not self.negated_after.search(after):
                        found.add(key)
                        break
        return frozenset(found)


# Before a medicine's name in an uncoded order's text: the order says not to give it.
NEGATED_NAME = re.compile(
    r"\b(?:no|not|stop|stopped|avoid|discontinue|discontinued|allergic to|allergy to|held|hold)\b"
)


def names_a_medicine(label: str, names: Sequence[str]) -> bool:
    """Whether free text names one of ``names`` without a negation before it ("no ibuprofen - allergy",
    "stop prednisone" do not order them)."""
    text = label.lower()
    for name in names:
        at = text.find(name)
        if at >= 0 and not NEGATED_NAME.search(CLAUSE_BREAK.split(text[:at])[-1]):
            return True
    return False
