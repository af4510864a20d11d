"""Every rule the engine can fire (each registers itself in its module, rules/catalog.py), and a start-up
check that the knowledge agrees.

A rule id is written in its module, in cards.json, in memory.json and in the scenarios. A typo there used to
be a KeyError (a 500) the first time the rule fired; now the service refuses to start and says which id
and file disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cds_service.knowledge.loader import read_knowledge
from cds_service.rules import engine  # noqa: F401 - importing the engine imports every rule module, and each registers itself
from cds_service.rules.catalog import rules, thresholds_read

RULE_IDS = frozenset(rules())


def knowledge_problems(
    cards: Mapping[str, Any],
    citations: Mapping[str, Any],
    override_reasons: Mapping[str, Any],
    memory: Mapping[str, Any],
    low_value: Mapping[str, Any],
    thresholds: Mapping[str, Any],
    red_flags: Mapping[str, Any],
    medicine_safety: Mapping[str, Any],
    orders: Mapping[str, Any],
    services: Mapping[str, Any],
    record_sources: Mapping[str, Any],
) -> list[str]:
    """What in the knowledge files does not fit the rules (empty when all agree)."""
    problems = []
    templates = set(cards["rules"])
    problems += [f"rule {r!r} has no card template in cards.json" for r in sorted(RULE_IDS - templates)]
    problems += [f"cards.json has a template for unknown rule {r!r}" for r in sorted(templates - RULE_IDS)]
    for rule, spec in cards["rules"].items():
        if spec.get("citation") not in citations:
            problems.append(f"cards.json rule {rule!r} cites unknown source {spec.get('citation')!r}")
        offers = [spec.get("override_reasons", [])]
        offers += [v["override_reasons"] for v in spec.get("variants", {}).values() if "override_reasons" in v]
        for reason in (r for offer in offers for r in offer):
            if reason not in override_reasons["reasons"]:
                problems.append(f"cards.json rule {rule!r} offers unknown override reason {reason!r}")
    for rule, reasons in memory["suppressing_reasons"].items():
        if rule not in RULE_IDS:
            problems.append(f"memory.json names unknown rule {rule!r}")
            continue
        offered = set(cards["rules"].get(rule, {}).get("override_reasons", []))
        problems += [f"memory.json: {rule!r} is never offered reason {r!r}" for r in reasons if r not in offered]
    problems += [
        f"memory.json once_per_encounter names unknown rule {r!r}"
        for r in memory["once_per_encounter"]
        if r not in RULE_IDS
    ]
    silences = red_flags["silences"]
    problems += [f"red_flags.json silences unknown rule {r!r}" for r in silences["rules"] if r not in RULE_IDS]
    if silences.get("citation") not in citations:
        problems.append(f"red_flags.json 'silences' cites unknown source {silences.get('citation')!r}")
    for item in low_value["interventions"]:
        if item.get("citation") not in citations:
            problems.append(f"low_value.json {item['id']!r} cites unknown source {item.get('citation')!r}")
    card_text = json.dumps(cards)
    criteria = [
        s[kind] for c in red_flags["categories"] for s in c["signals"] for kind in ("lab", "medicine") if kind in s
    ]
    by_labs = {item[k] for item in criteria for k in ("threshold", "window") if k in item}
    # Thresholds the knowledge files name for the rules (a lab's limit, a medicine's or operation's window).
    named = {medicine_safety["older_adult"]["threshold"], orders["bed_rest"]["post_operative"]["window"]}
    read = thresholds_read() | by_labs | named
    for name, item in thresholds["thresholds"].items():
        if item.get("citation") not in citations:
            problems.append(f"thresholds.json {name!r} cites unknown source {item.get('citation')!r}")
        if name not in read and "{" + name + "}" not in card_text:
            problems.append(f"thresholds.json {name!r} is read by no rule and printed by no card")
    problems += [f"a rule reads unknown threshold {t!r}" for t in sorted(read - set(thresholds["thresholds"]))]
    keys = set(services["prefetch"])
    problems += [
        f"record_sources.json: {kind!r} names {key!r}, which is no prefetch key of services.json"
        for kind, key in record_sources.items()
        if not kind.startswith("_") and key not in keys
    ]
    return problems


def check_knowledge() -> None:
    """Refuse to start when the knowledge files and the rules disagree (an unknown rule id, reason or citation)."""
    names = (
        *("cards", "citations", "override_reasons", "memory", "low_value", "thresholds"),
        *("red_flags", "medicine_safety", "orders", "services", "record_sources"),
    )
    problems = knowledge_problems(**{name: read_knowledge(f"{name}.json") for name in names})
    if problems:
        raise RuntimeError("the knowledge files do not fit the rules: " + "; ".join(problems))
