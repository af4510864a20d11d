"""Rules register themselves where they are defined: their id, the hooks they answer, and the thresholds
(knowledge/thresholds.json) they read. The registry's start-up check compares this catalogue with the
knowledge files, so an id without a card template, a template without a rule, or a threshold nobody reads
stops the service with a message instead of a 500 the first time a rule fires."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

ORDER_HOOKS = frozenset({"order-select", "order-sign"})
ALL_HOOKS = frozenset({"patient-view", *ORDER_HOOKS})
PATIENT_VIEW = frozenset({"patient-view"})


@dataclass(frozen=True)
class RuleInfo:
    id: str
    hooks: frozenset[str]
    thresholds: tuple[str, ...]


_RULES: dict[str, RuleInfo] = {}
_READERS: dict[str, tuple[str, ...]] = {}


def register(rule_id: str, *, hooks: frozenset[str], thresholds: tuple[str, ...] = ()) -> str:
    """Declare a rule (returns its id, so a module writes `RULE = register(...)`)."""
    if rule_id in _RULES:
        raise RuntimeError(f"rule id {rule_id!r} is registered twice")
    _RULES[rule_id] = RuleInfo(rule_id, hooks, thresholds)
    return rule_id


def reads_thresholds(reader: str, thresholds: tuple[str, ...]) -> None:
    """Declare thresholds read by shared logic that is not a card of its own (the episode, red flags)."""
    _READERS[reader] = thresholds


def rules() -> Mapping[str, RuleInfo]:
    return MappingProxyType(_RULES)


def thresholds_read() -> frozenset[str]:
    return frozenset(t for r in _RULES.values() for t in r.thresholds) | frozenset(
        t for keys in _READERS.values() for t in keys
    )
