"""Ibuprofen daily dose against ibuprofen_max_daily_mg (a card only above it), every way a dose is written;
opioids before an NSAID."""

from __future__ import annotations

from cds_service.domain.findings import BackPainEpisode
from cds_service.rules.recommendations.medicines import (
    DOSE_RULE,
    DOSE_UNKNOWN_RULE,
    OPIOID_RULE,
    daily_dose_mg,
    ibuprofen_doses,
    opioid_before_nsaid,
)

from ..builders import allergy, condition, dose, instant, medication, patient_record

EPISODE = BackPainEpisode(evidence=("Condition/lbp",), onset=None, weeks=2)
NOW = instant(condition(days_ago=0))
IBUPROFEN_800_TAB = "197807"  # RxNorm: ibuprofen 800 MG Oral Tablet
OXYCODONE = "1049621"  # RxNorm: oxycodone hydrochloride 5 MG Oral Tablet


def _draft(*lines: dict, rxnorm: str | None = IBUPROFEN_800_TAB, text: str | None = None, id: str = "ibu") -> dict:
    code = {"rxnorm": rxnorm} if rxnorm else {}
    if text:
        code["text"] = text
    return medication(status="draft", id=id, dosage=list(lines), **code)


def _cards(kb, drafts, history=(), hook="order-sign"):
    record = patient_record(list(history), drafts=list(drafts))
    return ibuprofen_doses(record.draft_orders, record, EPISODE, kb, hook, NOW)


def test_four_doses_adding_up_to_the_maximum_are_no_card(kb, limits):
    per_dose = limits.ibuprofen_max_daily_mg.value / 4
    assert _cards(kb, [_draft(dose(per_dose, per=4))]) == []


def test_four_doses_one_mg_over_the_maximum_are_a_card(kb, limits):
    per_dose = limits.ibuprofen_max_daily_mg.value / 4 + 1
    (finding,) = _cards(kb, [_draft(dose(per_dose, per=4))])
    assert (finding.rule, finding.indicator) == (DOSE_RULE, "warning")
    assert finding.target is not None and finding.target.ref == "MedicationRequest/ibu"
    assert finding.facts["daily_mg"] == f"{per_dose * 4:,.0f}"


def test_a_maximum_per_period_at_the_limit_is_no_card_and_above_it_is(kb, limits):
    limit = limits.ibuprofen_max_daily_mg.value
    assert _cards(kb, [_draft(dose(400, per=3, max_mg_per_day=limit))]) == []
    (finding,) = _cards(kb, [_draft(dose(400, per=3, max_mg_per_day=limit + 1))])
    assert finding.facts["how"].startswith(f"maximum {limit + 1:g} mg per 1 d")


def test_tablets_are_counted_through_the_coded_strength(kb, limits):
    tablets = int(limits.ibuprofen_max_daily_mg.value // 800)
    assert _cards(kb, [_draft(dose(1, "{tbl}", per=tablets))]) == []
    assert len(_cards(kb, [_draft(dose(1, "{tbl}", per=tablets + 1))])) == 1


def test_tablets_are_counted_through_the_strength_in_the_name(kb):
    uncoded = _draft(dose(2, "tablet", per=3), rxnorm=None, text="Ibuprofen 600 MG Oral Tablet")
    (finding,) = _cards(kb, [uncoded])  # 2 x 600 x 3 = 3600
    assert finding.facts["daily_mg"] == "3,600"


def test_grams_and_hours_are_converted(kb, limits):
    every_6h = dose(0.8, "g", per=1, every=6, period_unit="h")  # 4 x 800 mg
    assert daily_dose_mg(patient_record([], drafts=[_draft(every_6h)]).draft_orders[0], kb).mg == 3200


def test_lines_of_one_sequence_add_up_and_different_sequences_do_not(kb):
    same = _draft(dose(800, per=2, sequence=1), dose(800, per=2, sequence=1))
    apart = _draft(dose(800, per=3, sequence=1), dose(800, per=3, sequence=2))
    record = patient_record([], drafts=[same])
    assert daily_dose_mg(record.draft_orders[0], kb).mg == 3200
    record = patient_record([], drafts=[apart])
    assert daily_dose_mg(record.draft_orders[0], kb).mg == 2400


def test_another_open_ibuprofen_order_adds_to_the_day(kb):
    open_order = medication(status="active", rxnorm=IBUPROFEN_800_TAB, dosage=[dose(400, per=3)])
    stopped = medication(status="stopped", rxnorm=IBUPROFEN_800_TAB, dosage=[dose(400, per=3)])
    draft = _draft(dose(800, per=3))  # 2400 alone
    assert _cards(kb, [draft], history=[stopped]) == []
    (finding,) = _cards(kb, [draft], history=[open_order])  # 2400 + 1200
    assert finding.facts["daily_mg"] == "3,600"


def test_an_unreadable_dose_is_named_while_ordering_and_silent_on_the_chart(kb):
    text_only = _draft({"text": "take as directed"})
    (finding,) = _cards(kb, [text_only])
    assert finding.rule == DOSE_UNKNOWN_RULE and finding.facts["problem"]
    assert _cards(kb, [text_only], hook="patient-view") == []


def test_a_dose_in_an_unknown_unit_is_not_guessed(kb):
    (finding,) = _cards(kb, [_draft(dose(5, "mL", per=4))])
    assert finding.rule == DOSE_UNKNOWN_RULE and "'mL'" in finding.facts["problem"]


def test_a_count_of_a_product_with_no_known_strength_is_not_guessed(kb):
    (finding,) = _cards(kb, [_draft(dose(2, "{tbl}", per=4), rxnorm=None, text="ibuprofen tablets")])
    assert finding.rule == DOSE_UNKNOWN_RULE and "strength is not known" in finding.facts["problem"]


def _opioid() -> dict:
    return medication(status="draft", id="opioid", rxnorm=OXYCODONE)


def _opioid_cards(kb, history=()):
    record = patient_record(list(history), drafts=[_opioid()])
    return opioid_before_nsaid(record.draft_orders, record, EPISODE, kb, NOW)


def test_an_opioid_with_no_nsaid_tried_is_a_warning_offering_an_nsaid(kb):
    (finding,) = _opioid_cards(kb)
    assert (finding.rule, finding.indicator, finding.offer_medicine, finding.offer_cancel) == (
        OPIOID_RULE,
        "warning",
        True,
        True,
    )


def test_an_opioid_after_an_nsaid_is_no_card(kb):
    assert _opioid_cards(kb, [medication(rxnorm="197805")]) == []


def test_an_opioid_with_an_nsaid_allergy_informs_and_offers_nothing(kb):
    (finding,) = _opioid_cards(kb, [allergy(text="Ibuprofen")])
    assert (finding.indicator, finding.offer_medicine, finding.offer_cancel) == ("info", False, False)


def test_the_dose_findings_whole(kb):
    from cds_service.domain.findings import Finding

    record = patient_record([], drafts=[_draft(dose(1200, per=3), id="high"), _draft({"text": "prn"}, id="text")])
    high, unknown = ibuprofen_doses(record.draft_orders, record, EPISODE, kb, "order-sign", NOW)
    assert high == Finding(
        rule=DOSE_RULE,
        indicator="warning",
        target=record.draft_orders[0],
        episode=EPISODE,
        evidence=("MedicationRequest/high",),
        facts={"daily_mg": "3,600", "how": "1200 mg 3 times per 1 d"},
    )
    assert unknown == Finding(
        rule=DOSE_UNKNOWN_RULE,
        indicator="info",
        target=record.draft_orders[1],
        episode=EPISODE,
        evidence=("MedicationRequest/text",),
        facts={"problem": "no structured dose quantity; the dosage is text only"},
    )


def test_a_dose_card_names_what_stands_against_the_one_click_change(kb):
    record = patient_record([allergy(text="Naproxen")], drafts=[_draft(dose(1200, per=3))])
    (finding,) = ibuprofen_doses(record.draft_orders, record, EPISODE, kb, "order-sign", NOW)
    assert not finding.offer_medicine
    assert finding.evidence == ("MedicationRequest/ibu", record.allergies[0].ref)
    assert finding.notes and finding.notes[0].startswith("**Not offered in one click: NSAID or aspirin allergy")


def test_non_ibuprofen_orders_are_skipped_and_later_ibuprofen_still_checked(kb):
    record = patient_record(
        [], drafts=[medication(status="draft", id="opioid", rxnorm=OXYCODONE), _draft(dose(1200, per=3), id="ibu2")]
    )
    findings = ibuprofen_doses(record.draft_orders, record, EPISODE, kb, "order-sign", NOW)
    assert [f.target.ref for f in findings if f.target] == ["MedicationRequest/ibu2"]


def test_the_opioid_finding_whole_and_with_unread_medications(kb):
    from cds_service.domain.findings import Finding

    record = patient_record([medication(rxnorm="314076")], drafts=[_opioid()], gaps=("medicationRequests",))
    (finding,) = opioid_before_nsaid(record.draft_orders, record, EPISODE, kb, NOW)
    assert finding == Finding(
        rule=OPIOID_RULE,
        indicator="warning",
        target=record.draft_orders[0],
        episode=EPISODE,
        evidence=("MedicationRequest/opioid", "Condition/lbp"),
        checked=("the patient's medication orders on record, in any status",),
        not_checked=("medicationRequests: could not be read (test)",),
        notes=finding.notes,
        offer_medicine=False,
        offer_cancel=True,
    )
    assert finding.notes == (
        "**Not offered in one click:** could not check medication orders (anticoagulants, antiplatelets) "
        "(could not be read (test)).",
    )


def test_an_opioid_with_a_draft_nsaid_in_the_same_call_is_no_card(kb):
    record = patient_record([], drafts=[_opioid(), _draft(dose(400, per=3), id="ibu")])
    assert opioid_before_nsaid(record.draft_orders, record, EPISODE, kb, NOW) == []


def test_an_opioid_for_another_reason_and_a_non_opioid_are_no_card(kb):
    other = medication(status="draft", id="opioid", rxnorm=OXYCODONE, reason={"icd": "C50.911"})
    record = patient_record([], drafts=[other, medication(status="draft", id="x", rxnorm="314076")])
    assert opioid_before_nsaid(record.draft_orders, record, EPISODE, kb, NOW) == []
