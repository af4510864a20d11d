"""Reduce cards to what scenarios assert on: rule, indicator, suggestion actions (never prose)."""

from __future__ import annotations

import json
from typing import Any

from cds_service.package_data import KNOWLEDGE_DIR

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
