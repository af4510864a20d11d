"""One evaluation sequence for every hook: find the episode, the orders in question, the red flags,
then let each rule speak. Hook differences are only in which orders are advised on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from cds_service.domain.facts import Order, PatientRecord
from cds_service.domain.findings import INDICATOR_RANK, RED_FLAG_RULE, BackPainEpisode, Finding, RedFlag
from cds_service.domain.windows import ClinicalWindows
from cds_service.knowledge.model import Knowledge
from cds_service.knowledge.thresholds import default_windows
from cds_service.rules.catalog import ALL_HOOKS, ORDER_HOOKS, register
from cds_service.rules.recommendations.back_pain import back_pain_episode
from cds_service.rules.recommendations.bed_rest import bed_rest_ordered
from cds_service.rules.recommendations.first_line import first_line_plan
from cds_service.rules.recommendations.imaging import imaging_without_red_flags
from cds_service.rules.recommendations.inflammatory import inflammatory_back_pain
from cds_service.rules.recommendations.low_value import low_value_interventions
from cds_service.rules.recommendations.medicines import ibuprofen_doses, opioid_before_nsaid
from cds_service.rules.recommendations.orders import is_bed_rest, is_lumbar_imaging
from cds_service.rules.recommendations.red_flags import assess_red_flags
from cds_service.rules.recommendations.review import review_and_referral
from cds_service.rules.recommendations.stratified_care import stratified_care


def orders_in_question(hook: str, record: PatientRecord, selections: Sequence[str]) -> tuple[Order, ...]:
    """order-select: the newly selected drafts; order-sign: every draft; patient-view: open orders on the chart."""
    if hook == "patient-view":
        # What the patient reports taking (a MedicationStatement) is history, not an order to advise on.
        return (
            *(o for o in record.orders if o.is_open),
            *(m for m in record.medications if m.is_open and not m.is_statement),
        )
    if hook == "order-select":
        return tuple(o for o in record.draft_orders if is_selected(o.ref, selections))
    return record.draft_orders


def is_selected(ref: str, selections: Sequence[str]) -> bool:
    """order-select's `selections` name drafts as "Type/id" (the spec) or, from some clients, by bare id."""
    return ref in selections or ref.split("/", 1)[-1] in selections


ORDER_NOT_CHECKED_RULE = register("lbp-order-not-checked", hooks=ORDER_HOOKS)
register(RED_FLAG_RULE, hooks=ALL_HOOKS, thresholds=("adult_min_age",))


def unreadable_orders(hook: str, record: PatientRecord, selections: Sequence[str]) -> list[Finding]:
    """Draft orders that could not be read are named, never dropped: any of them could be the order the
    guideline speaks about (order-select: the selected ones; order-sign: all)."""
    if hook == "patient-view":
        return []
    return [
        Finding(
            rule=ORDER_NOT_CHECKED_RULE,
            indicator="info",
            evidence=(order.ref,),
            facts={"unreadable_order": order.label, "problems": "; ".join(order.problems) or "not valid FHIR"},
        )
        for order in record.unreadable_drafts
        if hook == "order-sign" or is_selected(order.ref, selections)
    ]


def evaluate(
    hook: str,
    record: PatientRecord,
    orders: Iterable[Order],
    kb: Knowledge,
    now: datetime,
    windows: ClinicalWindows | None = None,
) -> list[Finding]:
    """`windows`: the site's settings; by default the values in thresholds.json."""
    windows = windows or default_windows(kb.thresholds)
    orders = tuple(orders)
    episode = back_pain_episode(record, orders, kb, now)
    imaging = [o for o in orders if is_lumbar_imaging(o, kb)]
    bed_rest = [o for o in orders if is_bed_rest(o, kb)]
    assessment = assess_red_flags(record, orders, kb, now, windows)
    flags = assessment.flags
    if episode is None:
        # A red flag never depends on back pain being coded: an emergency (cauda equina) with a lumbar
        # imaging order, or a specific sign of it on the chart, gets its card. A non-specific sign alone
        # (urinary retention with no back pain anywhere) is not cauda equina and would only cry wolf.
        critical = [f for f in flags if f.critical]
        if critical and (imaging or (hook == "patient-view" and any(f.specific for f in critical))):
            return [_red_flag_finding(flags, None, imaging)]
        return []
    inflammatory = inflammatory_back_pain(record, episode, kb)
    known_axspa = inflammatory is not None and inflammatory.facts["variant"] == "known"
    findings: list[Finding] = []
    if flags and (hook == "patient-view" or imaging or bed_rest):
        findings.append(_red_flag_finding(flags, episode, imaging))
    age = age_in_years(record, now)
    if age is not None and age < kb.thresholds.adult_min_age.value:
        return findings  # a child gets no advice written for adults; red flags are never hidden
    # Safety: advice against imaging exists only when no red flag was found, and not for known
    # inflammatory disease, where "most episodes resolve in 6 weeks" would mislead.
    if not flags and not known_axspa:
        checked = _checked(kb, windows, record)
        findings.extend(
            imaging_without_red_flags(
                o, episode, record, checked, assessment.cautions, age, kb.thresholds, kb.red_flags.sources, kb.notes
            )
            for o in imaging
        )
    if inflammatory is not None and (hook == "patient-view" or (imaging and known_axspa)):
        findings.append(inflammatory)
    findings.extend(bed_rest_ordered(o, episode, record, kb, now) for o in bed_rest)
    findings.extend(low_value_interventions(orders, record, episode, kb))
    findings.extend(ibuprofen_doses(orders, record, episode, kb, hook, now))
    findings.extend(opioid_before_nsaid(orders, record, episode, kb, now))
    if hook == "patient-view":
        # STarT Back stratifies mechanical back pain; it does not apply to known inflammatory disease.
        stratified = None if known_axspa else stratified_care(record, episode, kb)
        findings.extend(f for f in (stratified, review_and_referral(record, episode, kb)) if f)
        urgent = any(f.indicator != "info" for f in findings)
        if inflammatory is None and not urgent:
            findings.append(first_line_plan(episode))
    if flags:
        # Routine advice beside a red flag is noise at the moment the clinician must act on the red flag.
        findings = [f for f in findings if f.rule not in kb.red_flags.silences]
    return _ordered(findings)


def age_in_years(record: PatientRecord, now: datetime) -> int | None:
    return record.age_on(now.date())


def _red_flag_finding(flags: tuple[RedFlag, ...], episode: BackPainEpisode | None, imaging: list[Order]) -> Finding:
    critical = any(f.critical for f in flags)
    # Most urgent first: the card's summary names the flag that decides what to do today.
    flags = tuple(sorted(flags, key=lambda f: (not f.critical, INDICATOR_RANK[f.indicator])))
    return Finding(
        rule=RED_FLAG_RULE,
        indicator="critical" if critical else "warning",
        target=imaging[0] if imaging else None,
        episode=episode,
        red_flags=flags,
        evidence=tuple(dict.fromkeys(f.evidence for f in flags)),
        facts={"urgency": "stat" if critical else "urgent"},
    )


def _checked(kb: Knowledge, windows: ClinicalWindows, record: PatientRecord) -> tuple[str, ...]:
    """What was looked at; a source that could not be read is under "Not checked" instead, never both."""
    checked = [c.label for c in kb.red_flags.categories]
    if record.gap(kb.sources["body_temperature"]) is None:
        fever = kb.notes["checked_fever"]
        checked.append(fever.format(fever_celsius=windows.fever_celsius, fever_days=windows.fever_days))
    if record.gap(kb.sources["steroid_orders"]) is None:
        checked.append(kb.notes["checked_steroids"].format(long_term_steroid_days=windows.long_term_steroid_days))
    return tuple(checked)


def _ordered(findings: list[Finding]) -> list[Finding]:
    """No duplicate cards (one per rule and order), most urgent first; sorting is stable."""
    unique: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        unique.setdefault(finding.dedup_key, finding)
    return sorted(unique.values(), key=lambda f: INDICATOR_RANK[f.indicator])
