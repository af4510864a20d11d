"""Every way a daily ibuprofen dose is written, with the exact total and the exact words the card shows
("how" it was computed, or why it could not be)."""

from __future__ import annotations

import pytest

from cds_service.rules.recommendations.medicines import daily_dose_mg

from ..builders import dose, medication, patient_record

TAB_800 = {"rxnorm": "197807"}
UNCODED = {"text": "ibuprofen suspension"}


def _no_frequency(**change) -> dict:
    line = dose(400)
    line["timing"]["repeat"].update(change)
    return line


def _unitless(amount: float, per: int) -> dict:
    line = dose(amount, per=per)
    quantity = line["doseAndRate"][0]["doseQuantity"]
    del quantity["unit"], quantity["code"], quantity["system"]
    return line


def _frequency_max(low: int, high: int) -> dict:
    line = dose(400, per=low, every=1)
    line["timing"]["repeat"]["frequencyMax"] = high
    return line


CASES = [
    ("mg per day", TAB_800, [dose(400, per=3)], 1200, "400 mg 3 times per 1 d", None),
    ("once every 8 hours", TAB_800, [dose(800, every=8, period_unit="h")], 2400, "800 mg every 8 h", None),
    ("as needed", TAB_800, [dose(400, per=1, every=4, period_unit="h", prn=True)], 2400,
     "400 mg every 4 h as needed, if taken as often as allowed", None),
    ("grams", TAB_800, [dose(1, "g", per=2)], 2000, "1000 mg 2 times per 1 d", None),
    ("micrograms", TAB_800, [dose(400000, "ug", per=1)], 400, "400 mg every 1 d", None),
    ("tablets", TAB_800, [dose(1, "{tbl}", per=3)], 2400, "800 mg 3 times per 1 d", None),
    ("frequencyMax counts", TAB_800, [_frequency_max(3, 4)], 1600, "400 mg 4 times per 1 d", None),
    ("weekly", TAB_800, [dose(700, per=1, every=1, period_unit="wk")], 100, "700 mg every 1 wk", None),
    ("maximum per period", TAB_800, [dose(400, per=3, max_mg_per_day=2400)], 2400, "maximum 2400 mg per 1 d", None),
    ("lines of one sequence add", TAB_800, [dose(400, per=2), dose(800, per=1)], 1600,
     "400 mg 2 times per 1 d plus 800 mg every 1 d", None),
    ("the larger sequence counts", TAB_800, [dose(400, per=1, sequence=1), dose(800, per=3, sequence=2)], 2400,
     "800 mg 3 times per 1 d", None),
    ("no dosage", TAB_800, [], None, "", "no dosage instructions"),
    ("text only", TAB_800, [{"text": "two tablets when needed"}], None, "",
     "no structured dose quantity; the dosage is text only"),
    ("no frequency", TAB_800, [{"doseAndRate": dose(400)["doseAndRate"]}], None, "",
     "no structured frequency (timing.repeat)"),
    ("zero period", TAB_800, [_no_frequency(period=0)], None, "", "no structured frequency (timing.repeat)"),
    ("unknown period unit", TAB_800, [_no_frequency(periodUnit="a")], None, "",
     "no structured frequency (timing.repeat)"),
    ("count of unknown strength", UNCODED, [dose(2, "{tbl}", per=3)], None, "",
     "dose given as a count ({tbl}) of a product whose strength is not known"),
    ("count without a unit", UNCODED, [_unitless(2, 3)], None, "",
     "dose given as a count (no unit) of a product whose strength is not known"),
    ("unknown unit", TAB_800, [dose(5, "mL", per=3)], None, "", "dose unit 'mL' not understood"),
    ("one unreadable line spoils the day", TAB_800, [dose(400, per=2), {"text": "and more at night"}], None, "",
     "no structured dose quantity; the dosage is text only"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "lines", "mg", "how", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_daily_dose(kb, code, lines, mg, how, problem):
    order = medication(status="draft", id="ibu", dosage=lines or None, **code)
    (draft,) = patient_record([], drafts=[order]).draft_orders
    result = daily_dose_mg(draft, kb)
    assert (result.mg, result.how, result.problem) == (mg, how, problem)


def test_a_maximum_per_period_in_an_unknown_unit_falls_back_to_the_dose(kb):
    line = dose(400, per=3, max_mg_per_day=2400)
    line["maxDosePerPeriod"]["denominator"]["unit"] = line["maxDosePerPeriod"]["denominator"]["code"] = "a"
    (draft,) = patient_record([], drafts=[medication(status="draft", dosage=[line], **TAB_800)]).draft_orders
    assert daily_dose_mg(draft, kb).mg == 1200


def test_a_maximum_per_period_counted_in_tablets_uses_the_strength(kb):
    line = dose(400, per=3, max_mg_per_day=4)
    line["maxDosePerPeriod"]["numerator"].update(unit="{tbl}", code="{tbl}")
    (draft,) = patient_record([], drafts=[medication(status="draft", dosage=[line], **TAB_800)]).draft_orders
    assert daily_dose_mg(draft, kb).mg == 3200


def test_a_maximum_per_period_over_two_days_is_halved(kb):
    line = dose(400, per=3, max_mg_per_day=4800)
    line["maxDosePerPeriod"]["denominator"]["value"] = 2
    (draft,) = patient_record([], drafts=[medication(status="draft", dosage=[line], **TAB_800)]).draft_orders
    assert daily_dose_mg(draft, kb).mg == 2400


def test_a_maximum_per_period_in_a_unit_not_understood_is_named(kb):
    line = dose(400, per=3, max_mg_per_day=10)
    line["maxDosePerPeriod"]["numerator"].update(unit="mL", code="mL")
    (draft,) = patient_record([], drafts=[medication(status="draft", dosage=[line], **TAB_800)]).draft_orders
    result = daily_dose_mg(draft, kb)
    assert (result.mg, result.how, result.problem) == (None, "", "dose unit 'mL' not understood")
