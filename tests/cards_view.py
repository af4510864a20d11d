"""Reduce cards to what scenarios assert on: rule, indicator, suggestion actions (never prose)."""

from __future__ import annotations

import json
import re
from typing import Any

from cds_service.knowledge.loader import KNOWLEDGE_DIR

_CARDS = json.loads((KNOWLEDGE_DIR / "cards.json").read_text())
RULE_BY_TOPIC = {spec["topic_code"]: rule for rule, spec in _CARDS["rules"].items()}
RED_FLAG_LABELS = {
    c["id"]: c["label"] for c in json.loads((KNOWLEDGE_DIR / "red_flags.json").read_text())["categories"]
}


def card_view(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": RULE_BY_TOPIC[card["source"]["topic"]["code"]],
        "indicator": card["indicator"],
        "actions": [a["type"] for s in card.get("suggestions", []) for a in s["actions"]],
    }


def red_flag_categories_named(card: dict[str, Any]) -> set[str]:
    return {cid for cid, label in RED_FLAG_LABELS.items() if f"**{label}**" in card.get("detail", "")}


def _summary_pattern(template: str) -> re.Pattern[str]:
    """A card summary template as a pattern: literal text exact, each {placeholder} any text."""
    parts = re.split(r"\{[A-Za-z_]+\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


def variant_of(card: dict[str, Any]) -> str | None:
    """Which variant of its rule's template a card was rendered from (None: the rule has no variants),
    read from the summary the EHR shows."""
    spec = _CARDS["rules"][RULE_BY_TOPIC[card["source"]["topic"]["code"]]]
    variants = spec.get("variants", {})
    if not variants:
        return None
    summary = card["summary"].removesuffix("…")
    for name, variant in variants.items():
        pattern = _summary_pattern(variant.get("summary") or spec["summary"])
        if pattern.fullmatch(summary) or (card["summary"].endswith("…") and pattern.match(summary + "x" * 200)):
            return name
    return "(no variant matched)"


def target_of(card: dict[str, Any]) -> str | None:
    """The order a card's suggestions withdraw or change (delete/update), if any."""
    targets = {
        a.get("resourceId") or f"{a['resource']['resourceType']}/{a['resource']['id']}"
        for s in card.get("suggestions", [])
        for a in s["actions"]
        if a["type"] in {"delete", "update"}
    }
    return targets.pop() if len(targets) == 1 else (sorted(targets) or None)  # type: ignore[return-value]
