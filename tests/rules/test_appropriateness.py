"""The appropriateness rating of a lumbar imaging order (issue 31, item 3) follows the cards: a red flag or the
late variant (from imaging_early_weeks) is appropriate, the early variant on a record read whole is not
appropriate, an order no guideline statement covers is no-guidelines-apply, and nothing is claimed when the
card withholds its cancel or the onset is unknown. Only drafts, only the order hooks."""

from __future__ import annotations

from dataclasses import replace

from cds_service.domain.findings import RED_FLAG_RULE, BackPainEpisode, Finding
from cds_service.knowledge.model import knowledge
from cds_service.rules.appropriateness import rate_imaging
from cds_service.rules.recommendations.imaging import imaging_without_red_flags

from ..builders import lumbar_mri, patient_record


def _imaging(limits, weeks, *, gaps=()):
    record = patient_record([], drafts=[lumbar_mri()], gaps=gaps)
    episode = BackPainEpisode(evidence=("Condition/lbp",), onset=None, weeks=weeks)
    finding = imaging_without_red_flags(
        record.draft_orders[0], episode, record, ("checked",), (), 40, limits, knowledge().red_flags.sources,
        knowledge().notes,
    )  # fmt: skip
    return record, finding


def _codes(hook, record, findings):
    return [(r.order.ref, r.code) for r in rate_imaging(hook, record.draft_orders, findings, knowledge())]


def test_the_day_before_the_imaging_window_ends_the_order_is_not_appropriate(limits):
    record, finding = _imaging(limits, limits.imaging_early_weeks.value - 0.01)
    assert _codes("order-sign", record, [finding]) == [(record.draft_orders[0].ref, "not-appropriate")]


def test_at_the_end_of_the_imaging_window_the_order_is_appropriate(limits):
    record, finding = _imaging(limits, limits.imaging_early_weeks.value)
    assert _codes("order-select", record, [finding]) == [(record.draft_orders[0].ref, "appropriate")]


def test_a_red_flag_makes_the_order_appropriate_whatever_the_weeks(limits):
    record, _ = _imaging(limits, 1)
    red_flag = Finding(rule=RED_FLAG_RULE, indicator="critical")
    assert _codes("order-sign", record, [red_flag]) == [(record.draft_orders[0].ref, "appropriate")]


def test_an_imaging_order_no_guideline_statement_covers_is_no_guidelines_apply(limits):
    record, _ = _imaging(limits, 1)
    assert _codes("order-sign", record, []) == [(record.draft_orders[0].ref, "no-guidelines-apply")]


def test_no_verdict_when_a_red_flag_source_could_not_be_read(limits):
    record, finding = _imaging(limits, 1, gaps=("observations",))
    assert not finding.offer_cancel
    assert _codes("order-sign", record, [finding]) == []


def test_no_verdict_when_the_onset_is_not_recorded(limits):
    record, finding = _imaging(limits, None)
    assert finding.facts["variant"] == "early"  # the card warns, the order is not judged
    assert _codes("order-sign", record, [finding]) == []


def test_patient_view_and_orders_already_on_the_chart_get_no_rating(limits):
    record, finding = _imaging(limits, 1)
    assert _codes("patient-view", record, [finding]) == []
    signed = replace(record.draft_orders[0], is_draft=False)
    assert rate_imaging("order-sign", (signed,), [finding], knowledge()) == ()
