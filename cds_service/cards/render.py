"""Render Findings into CDS Hooks 2.0 cards, with text, citations and override reasons from knowledge files.

The spec's card rules live here: `summary` under 140 characters, `indicator` info|warning|critical,
`source.label` always (with a topic code per rule so that EHRs remember overrides), a `uuid` on every
card and suggestion, `selectionBehavior` whenever there are suggestions, optional fields omitted rather
than sent empty. Suggested orders are validated with fhir.resources before they are offered.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cds_service.domain.evidence import EntryName, name_entries
from cds_service.domain.facts import Order, OrderFact, PatientRecord
from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.fhir.models import model_for
from cds_service.knowledge.model import Knowledge
from cds_service.knowledge.terminology import display_for

SUMMARY_LIMIT = 140


@dataclass(frozen=True)
class CardContext:
    hook: str
    patient_id: str
    encounter_id: str | None
    user_id: str | None
    # The record the findings were drawn from: the cards name the entries they are based on from it, in words.
    record: PatientRecord | None = None
    # Where EHRs reach this service (CDS_PUBLIC_BASE_URL): a card's links to its own pages need it, and are
    # left out without it (never built from the request's Host header).
    base_url: str | None = None
    hook_instance: str | None = None  # handed to a SMART app the card launches, in the link's appContext


def _content(kb: Knowledge) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    return kb.cards.cards, kb.cards.citations, kb.cards.override_reasons


def rule_source(rule: str, kb: Knowledge) -> tuple[str, dict[str, str]]:
    """The guideline statement a rule's cards implement, and its citation (label, url, how it was checked)."""
    cards, citations, _ = _content(kb)
    spec = cards["rules"][rule]
    return spec["statement"], citations[spec["citation"]]


def override_reason_names(kb: Knowledge) -> dict[str, str]:
    """Override reason code -> the words a clinician picked."""
    reasons: dict[str, str] = dict(_content(kb)[2]["reasons"])
    return reasons


def rule_names(kb: Knowledge) -> dict[str, str]:
    """Rule id -> the name a clinician reads (the card topic's display)."""
    return {rule: spec["topic_display"] for rule, spec in _content(kb)[0]["rules"].items()}


def render(findings: list[Finding], ctx: CardContext, kb: Knowledge) -> list[dict[str, Any]]:
    # The record is scanned once for the entries every card of the call names, not once per card.
    names = name_entries([ref for finding in findings for ref in _refs(finding)], ctx.record)
    return [render_card(finding, ctx, kb, names) for finding in findings]


def render_card(finding: Finding, ctx: CardContext, kb: Knowledge, names: Mapping[str, EntryName]) -> dict[str, Any]:
    cards, citations, reasons = _content(kb)
    spec = cards["rules"][finding.rule]
    variant = spec.get("variants", {}).get(finding.facts.get("variant", ""), {})
    fields = _fields(finding, kb, names)
    summary = (variant.get("summary") or spec["summary"]).format_map(fields)
    detail = (variant.get("detail") or spec["detail"]).format_map(fields)
    if len(summary) >= SUMMARY_LIMIT:
        summary = summary[: SUMMARY_LIMIT - 2] + "…"
    citation = citations[finding.facts.get("citation") or spec["citation"]]
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "detail": detail,
        "indicator": finding.indicator,
        "source": {
            "label": citation["label"],
            "topic": {"system": cards["topic_system"], "code": spec["topic_code"], "display": spec["topic_display"]},
        },
    }
    if citation.get("url"):
        card["source"]["url"] = citation["url"]
    wanted = variant.get("suggestions", spec.get("suggestions", []))
    if not finding.offer_cancel:
        wanted = [s for s in wanted if not s.get("delete_target")]
    if not finding.offer_medicine:
        wanted = [s for s in wanted if not _orders_medicine(s, kb)]
    suggestions = [s for s in (_suggestion(s, finding, ctx, fields, kb) for s in wanted) if s]
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    if spec.get("links") and ctx.base_url:
        card["links"] = [_link(link, finding, ctx, ctx.base_url.rstrip("/")) for link in spec["links"]]
    # A variant may offer fewer reasons: only those that can apply to it ("beyond 6 weeks" not before 6 weeks).
    offered = variant.get("override_reasons", spec.get("override_reasons"))
    if offered:
        card["overrideReasons"] = [
            {"system": reasons["system"], "code": code, "display": reasons["reasons"][code]} for code in offered
        ]
    return card


def _link(link: Mapping[str, Any], finding: Finding, ctx: CardContext, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {"label": link["label"], "url": base + link["path"], "type": link.get("type", "absolute")}
    if out["type"] == "smart":
        # CDS Hooks 2.0 Link.appContext: a string the EHR hands to the app with its token. The app reads which
        # call launched it and when the episode began (it shows the date; the hook instance ties its writes
        # to the call in an audit).
        onset = finding.episode.onset if finding.episode else None
        context = {"hookInstance": ctx.hook_instance, "episodeStart": onset.date().isoformat() if onset else None}
        out["appContext"] = orjson.dumps(context).decode()
    return out


def _suggestion(
    spec: Mapping[str, Any], finding: Finding, ctx: CardContext, fields: Mapping[str, str], kb: Knowledge
) -> dict[str, Any] | None:
    label = str(spec["label"]).format_map(fields)
    target = finding.target
    # Changing or withdrawing an order is only offered for a draft of this ordering session, with an id.
    editable = target is not None and target.is_draft and ctx.hook != "patient-view" and not target.ref.endswith("/")
    action: dict[str, Any]
    if spec.get("delete_target") or spec.get("update_target"):
        if not editable or target is None:
            return None
        if spec.get("delete_target"):
            action = {"type": "delete", "description": label, "resourceId": target.ref}
        else:
            action = {
                "type": "update",
                "description": label,
                "resource": updated_order(spec["update_target"], target, kb),
            }
    else:
        resource = new_order(spec["create"], finding, ctx, kb)
        action = {"type": "create", "description": label, "resource": resource}
    return {"label": label, "uuid": str(uuid.uuid4()), "actions": [action]}


def _orders_medicine(spec: Mapping[str, Any], kb: Knowledge) -> bool:
    """A suggestion that creates or changes a medicine order."""
    cards, _, _ = _content(kb)
    template = spec.get("create") or spec.get("update_target")
    return bool(template) and cards["order_templates"][template]["resourceType"] == "MedicationRequest"


def updated_order(template_name: str, target: Order, kb: Knowledge) -> dict[str, Any]:
    """The draft order in its entirety (as the spec requires for `update`), with the template's
    medication and dosage in place of the old ones, validated with fhir.resources."""
    cards, _, _ = _content(kb)
    template = cards["order_templates"][template_name]
    resource = copy.deepcopy(dict(target.resource))
    for element in ("medicationCodeableConcept", "dosageInstruction"):
        resource[element] = _fresh_copy(template[element])
    resource.pop("medicationReference", None)
    return resource  # the draft was validated when read, the template parts at start-up


def _fresh_copy(template: Any) -> Any:
    """A deep copy of (part of) a JSON template: a round trip through orjson costs a tenth of copy.deepcopy."""
    return orjson.loads(orjson.dumps(template))


def new_order(template_name: str, finding: Finding, ctx: CardContext, kb: Knowledge) -> dict[str, Any]:
    """A draft order from a template, for this patient, validated with fhir.resources."""
    cards, _, _ = _content(kb)
    resource: dict[str, Any] = _fresh_copy(cards["order_templates"][template_name])
    resource["id"] = f"lbp-cds-{uuid.uuid4()}"
    resource["subject"] = {"reference": f"Patient/{ctx.patient_id}"}
    if ctx.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
    if ctx.user_id and ctx.user_id.split("/", 1)[0] in {"Practitioner", "PractitionerRole"}:
        resource["requester"] = {"reference": ctx.user_id}
    if finding.facts.get("urgency"):
        resource["priority"] = finding.facts["urgency"]
    if finding.episode and finding.episode.reason_condition:
        resource["reasonReference"] = [{"reference": finding.episode.reason_condition}]
    return resource  # validated at start-up: only ids and references vary per request


def validate_order_templates(kb: Knowledge) -> None:
    """Validate every suggested order with fhir.resources once, at start-up, filled as a request fills it.

    A malformed template must stop the service from starting, never reach an EHR; per request only ids
    and references change, so validating each copy again would cost time and prove nothing more.
    """
    cards, _, _ = _content(kb)
    for name, template in cards["order_templates"].items():
        sample = copy.deepcopy(template)
        sample.update(
            id="lbp-cds-template-check",
            subject={"reference": "Patient/example"},
            encounter={"reference": "Encounter/example"},
            requester={"reference": "Practitioner/example"},
            priority="stat",
            reasonReference=[{"reference": "Condition/example"}],
        )
        model = model_for(sample["resourceType"])
        if model is None:
            raise RuntimeError(f"order template {name!r} in cards.json has a resource type this service cannot read")
        try:
            model.model_validate(sample)
        except ValueError as exc:
            raise RuntimeError(f"order template {name!r} in cards.json is not valid FHIR: {exc}") from exc


def _order_label(order: Order | None, kb: Knowledge) -> str:
    if order is None:
        return "No order"
    concept = order.code if isinstance(order, OrderFact) else order.medication
    if concept.text:
        return concept.text
    return display_for(concept.codings, kb.valuesets.values()) or concept.label()


def _episode_text(episode: BackPainEpisode | None) -> str:
    if episode is None:
        return "no low back pain diagnosis on the record"
    if episode.onset is None:
        return "low back pain (onset not recorded, so its duration is unknown)"
    assert episode.weeks is not None
    # Complete days and weeks, as a clinician counts them: rounding said "11 days ago" beside an onset date 10
    # days back, and "6 weeks" for an episode of 5.6 weeks that the rules (rightly) call acute.
    ago = f"{int(episode.weeks * 7)} days" if episode.weeks < 2 else f"{int(episode.weeks)} weeks"
    return f"{episode.phase} low back pain (onset {episode.onset.date().isoformat()}, {ago} ago)"


def _capitalised(items: tuple[str, ...]) -> list[str]:
    return [item[:1].upper() + item[1:] for item in items]


def _bullets(items: list[str] | tuple[str, ...]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _refs(finding: Finding) -> list[str]:
    """The record entries a card names: what it is based on, its red flags' and its cautions' sources."""
    return [*finding.evidence, *(f.evidence for f in finding.red_flags), *(c.evidence for c in finding.cautions)]


def _fields(finding: Finding, kb: Knowledge, names: Mapping[str, EntryName]) -> dict[str, str]:
    checked, unchecked = _capitalised(finding.checked), _capitalised(finding.not_checked)
    not_checked = ""
    if unchecked:
        not_checked = "\n**Not checked** (data not available):\n\n" + _bullets(unchecked) + "\n"
    red_flags = _bullets(
        [f"**{f.category_label}**: {f.description} ({names[f.evidence].kind})" for f in finding.red_flags]
    )
    advice = _bullets(list(dict.fromkeys(f.advice for f in finding.red_flags)))
    episode = _episode_text(finding.episode)
    cautions = ""
    if finding.cautions:
        items = [f"**{c.label}**: {c.description} ({names[c.evidence].kind}); {c.why}" for c in finding.cautions]
        cautions = "\n**Also on the record** (not counted as red flags):\n\n" + _bullets(items) + "\n"
    notes = ("\n" + _bullets(finding.notes) + "\n") if finding.notes else ""
    cancel_note = ""
    if not finding.offer_cancel:
        cancel_note = (
            "\nNo one-click cancel is offered: part of the record could not be checked or needs a look first.\n"
        )
    return {
        **kb.thresholds.placeholders,  # {review_weeks}: card words and rule logic read one number
        **finding.facts,
        "order": _order_label(finding.target, kb),
        "episode": episode,
        "Episode": episode.capitalize(),
        "checked": _bullets(checked),
        # What was checked goes last and short: the reason and the alternative lead.
        "checked_count": str(len(finding.checked)),
        "checked_inline": "; ".join(checked),
        "not_checked_inline": " **Not checked** (data not available): " + "; ".join(unchecked) + "."
        if unchecked
        else "",
        "not_checked": not_checked,
        "red_flags": red_flags,
        "advice": advice,
        "red_flag_summary": _red_flag_summary(finding),
        "cautions": cautions,
        "notes": notes,
        "cancel_note": cancel_note,
        "evidence": "; ".join(names[ref].full for ref in dict.fromkeys(finding.evidence)),
        "urgency": finding.facts.get("urgency", ""),
    }


def _red_flag_summary(finding: Finding) -> str:
    """The most urgent flag's own summary (the rule puts it first), and how many other kinds there are."""
    if not finding.red_flags:
        return ""
    first = finding.red_flags[0]
    others = len({f.category_id for f in finding.red_flags} - {first.category_id})
    summary = first.summary or f"Red flag: {first.category_label}"
    return summary + (f" (+{others} more red flag{'s' if others > 1 else ''})" if others else "")
