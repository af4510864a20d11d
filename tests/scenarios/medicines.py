"""Medicine, memory-free order scenarios for issue 13, with negative twins: the same order with the
contraindication absent gets the one-click medicine; with it present, not. Every record has an active low
back pain problem (M54.50, 10 days) and the draft orders listed. Expectations:
- cards: the rules whose cards appear (a set of rule ids);
- medicine: whether any suggestion creates or changes a MedicationRequest;
- contraindicated: the record holds a recorded NSAID contraindication (checked by the safety test);
- text: fragments the cards must contain."""

from __future__ import annotations

from typing import Any

from ..builders import allergy, condition, dose, medication, observation, service_order

RX = "rxnorm"
TRAMADOL = {"rxnorm": "835603", "display": "tramadol hydrochloride 50 MG Oral Tablet"}
IBU_800 = {"rxnorm": "197807", "display": "Ibuprofen 800 MG Oral Tablet"}
OPIOID_CARD = "lbp-opioid-before-nsaid"
DOSE_CARD = "lbp-ibuprofen-dose"


def tramadol(**kw: Any) -> dict[str, Any]:
    return medication(status="draft", days_ago=0, id="draft-tramadol", dosage=[dose(50, "mg", per=4)], **TRAMADOL, **kw)


def ibuprofen(*lines: dict[str, Any], code: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return medication(status="draft", days_ago=0, id="draft-ibuprofen", dosage=list(lines), **(code or IBU_800), **kw)


def s(name: str, drafts: list[dict], resources: list[dict] | None = None, **expect: Any) -> dict[str, Any]:
    return {"name": name, "drafts": drafts, "resources": resources or [], **expect}


OFFERED = dict(cards={OPIOID_CARD}, medicine=True)
WITHHELD = dict(cards={OPIOID_CARD}, medicine=False, contraindicated=True)

SCENARIOS: list[dict[str, Any]] = [
    # --- what the opioid is for
    s("tramadol for back pain with no NSAID tried offers ibuprofen", [tramadol()], **OFFERED),
    s(
        "buprenorphine with naloxone for opioid use disorder gets no NSAID-first card",
        [
            medication(
                status="draft",
                days_ago=0,
                id="draft-bup",
                rxnorm="1010600",
                display="buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film",
            )
        ],
        cards=set(),
        medicine=False,
    ),
    s(
        "methadone gets no NSAID-first card",
        [
            medication(
                status="draft",
                days_ago=0,
                id="draft-methadone",
                rxnorm="864706",
                display="methadone hydrochloride 10 MG Oral Tablet",
            )
        ],
        cards=set(),
        medicine=False,
    ),
    s(
        "a codeine cough syrup gets no NSAID-first card",
        [
            medication(
                status="draft",
                days_ago=0,
                id="draft-cough",
                rxnorm="995483",
                display="codeine phosphate 2 MG/ML / guaifenesin 40 MG/ML Oral Solution",
            )
        ],
        cards=set(),
        medicine=False,
    ),
    s(
        "tramadol ordered for acute bronchitis is not this guideline's question",
        [tramadol(reason={"icd": "J20.9"})],
        cards=set(),
        medicine=False,
    ),
    s(
        "tramadol ordered for cancer pain is not this guideline's question",
        [tramadol(reason={"icd": "G89.3"})],
        cards=set(),
        medicine=False,
    ),
    s(
        "tramadol ordered for a knee gets no NSAID-first card",
        [tramadol(reason={"icd": "M17.11"})],
        cards=set(),
        medicine=False,
    ),
    s("tramadol ordered for low back pain gets the card", [tramadol(reason={"icd": "M54.50"})], **OFFERED),
    # --- contraindications and their negative twins
    s(
        "a pregnancy at 32 weeks withholds the one-click ibuprofen",
        [tramadol()],
        [condition(icd="Z3A.32", days_ago=20)],
        **WITHHELD,
        text=["pregnancy"],
    ),
    s(
        "a pregnancy entry from 400 days ago is stale and does not withhold it",
        [tramadol()],
        [condition(icd="Z3A.32", days_ago=400)],
        **OFFERED,
    ),
    s(
        "a pregnancy status observation 'Pregnant' withholds it",
        [tramadol()],
        [observation(loinc="82810-3", answer={"loinc": "LA15173-0", "display": "Pregnant"})],
        **WITHHELD,
    ),
    s(
        "a pregnancy status observation 'Not pregnant' does not",
        [tramadol()],
        [observation(loinc="82810-3", answer={"loinc": "LA26683-5", "display": "Not pregnant"})],
        **OFFERED,
    ),
    s(
        "an ibuprofen allergy coded in RxNorm withholds it",
        [tramadol()],
        [allergy(rxnorm="5640", display="ibuprofen")],
        **WITHHELD,
        text=["allergy or intolerance"],
    ),
    s("an aspirin allergy written as text withholds it", [tramadol()], [allergy(text="Aspirin - hives")], **WITHHELD),
    s(
        "a refuted ibuprofen allergy does not",
        [tramadol()],
        [allergy(rxnorm="5640", verification="refuted")],
        **OFFERED,
    ),
    s("an inactive ibuprofen allergy does not", [tramadol()], [allergy(rxnorm="5640", status="inactive")], **OFFERED),
    s("a penicillin allergy does not", [tramadol()], [allergy(text="Penicillin")], **OFFERED),
    s(
        "an eGFR of 25 withholds it",
        [tramadol()],
        [observation(loinc="62238-1", value=25, unit="mL/min/{1.73_m2}", days_ago=30)],
        **WITHHELD,
        text=["eGFR 25"],
    ),
    s(
        "an eGFR of exactly 30 does not",
        [tramadol()],
        [observation(loinc="62238-1", value=30, unit="mL/min/{1.73_m2}", days_ago=30)],
        **OFFERED,
    ),
    s(
        "an eGFR of 29 withholds it",
        [tramadol()],
        [observation(loinc="98979-8", value=29, unit="mL/min/{1.73_m2}", days_ago=30)],
        **WITHHELD,
    ),
    s(
        "an old low eGFR followed by a normal one does not",
        [tramadol()],
        [
            observation(loinc="62238-1", value=25, unit="mL/min/{1.73_m2}", days_ago=200),
            observation(loinc="62238-1", value=70, unit="mL/min/{1.73_m2}", days_ago=20),
        ],
        **OFFERED,
    ),
    s("CKD stage 4 withholds it", [tramadol()], [condition(icd="N18.4", days_ago=900)], **WITHHELD),
    s("CKD stage 3 does not", [tramadol()], [condition(icd="N18.30", days_ago=900)], **OFFERED),
    s("an active peptic ulcer withholds it", [tramadol()], [condition(icd="K25.9", days_ago=60)], **WITHHELD),
    s(
        "a peptic ulcer resolved 200 days ago withholds it",
        [tramadol()],
        [condition(icd="K25.9", status="resolved", days_ago=200)],
        **WITHHELD,
    ),
    s(
        "a peptic ulcer resolved two years ago does not",
        [tramadol()],
        [condition(icd="K25.9", status="resolved", days_ago=730)],
        **OFFERED,
    ),
    s(
        "an active warfarin order withholds it",
        [tramadol()],
        [medication(status="active", days_ago=100, text="Warfarin 5 mg tablet")],
        **WITHHELD,
        text=["anticoagulant"],
    ),
    s(
        "a clopidogrel order withholds it",
        [tramadol()],
        [medication(status="active", days_ago=100, text="clopidogrel 75 mg oral tablet")],
        **WITHHELD,
    ),
    s(
        "a completed warfarin course does not",
        [tramadol()],
        [medication(status="completed", days_ago=400, text="Warfarin 5 mg tablet")],
        **OFFERED,
    ),
    s("heart failure withholds it", [tramadol()], [condition(icd="I50.22", days_ago=900)], **WITHHELD),
    s(
        "heart failure written as text withholds it",
        [tramadol()],
        [condition(text="CHF, NYHA II", days_ago=900)],
        **WITHHELD,
    ),
    s(
        "no allergy data withholds it and says allergies were not checked",
        [tramadol()],
        omit=("allergyIntolerances",),
        cards={OPIOID_CARD},
        medicine=False,
        text=["could not check allergies"],
    ),
    # --- dose arithmetic
    s(
        "800 mg every 4 hours is over the maximum and offers a dose in range",
        [ibuprofen(dose(800, per=6))],
        cards={DOSE_CARD},
        medicine=True,
        text=["4,800 mg a day"],
    ),
    s("800 mg three times a day is within the maximum", [ibuprofen(dose(800, per=3))], cards=set(), medicine=False),
    s(
        "three concurrent dosage lines adding up to 4000 mg are over the maximum",
        [ibuprofen(dose(1200), dose(1600), dose(1200))],
        cards={DOSE_CARD},
        medicine=True,
        text=["4,000 mg a day"],
    ),
    s(
        "two sequential dosage lines of 2400 mg are each within the maximum",
        [ibuprofen(dose(800, per=3, sequence=1), dose(800, per=3, sequence=2))],
        cards=set(),
        medicine=False,
    ),
    s(
        "five 800 mg pills a day ({pill}) are over the maximum",
        [ibuprofen(dose(1, "{pill}", per=5))],
        cards={DOSE_CARD},
        medicine=True,
        text=["4,000 mg a day"],
    ),
    s(
        "four 800 mg pills a day are exactly the maximum",
        [ibuprofen(dose(1, "{pill}", per=4))],
        cards=set(),
        medicine=False,
    ),
    s(
        "pills of a text-only 800 mg product are counted through the name's strength",
        [ibuprofen(dose(2, "{tbl}", per=3), code={"text": "Ibuprofen 800 MG Oral Tablet"})],
        cards={DOSE_CARD},
        medicine=True,
    ),
    s(
        "an open chart order is added to the draft",
        [ibuprofen(dose(400, per=3))],
        [medication(status="active", days_ago=20, dosage=[dose(800, per=3)], **IBU_800)],
        cards={DOSE_CARD},
        medicine=True,
        text=["also open"],
    ),
    s(
        "a maximum of 4000 mg a day as needed is over the maximum",
        [
            ibuprofen(
                {
                    **dose(400, per=1),
                    "maxDosePerPeriod": {
                        "numerator": {"value": 4000, "unit": "mg", "code": "mg", "system": "http://unitsofmeasure.org"},
                        "denominator": {"value": 1, "unit": "d", "code": "d", "system": "http://unitsofmeasure.org"},
                    },
                }
            )
        ],
        cards={DOSE_CARD},
        medicine=True,
    ),
    s(
        "a dose in millilitres cannot be computed and the card says so",
        [ibuprofen(dose(10, "mL", per=3), code={"text": "Ibuprofen 100 mg/5 mL oral suspension"})],
        cards={"lbp-ibuprofen-dose-unknown"},
        medicine=False,
        text=["not understood"],
    ),
    s(
        "an over-maximum dose for a pregnant patient offers no dose change",
        [ibuprofen(dose(800, per=6))],
        [condition(icd="Z3A.24", days_ago=10)],
        cards={DOSE_CARD},
        medicine=False,
        contraindicated=True,
        text=["pregnancy"],
    ),
    # --- text, reasons and body sites
    s(
        "'avoid bed rest' is not a bed-rest order",
        [service_order(text="Activity as tolerated - avoid bed rest")],
        cards=set(),
        medicine=False,
    ),
    s(
        "'strict bed rest' is a bed-rest order",
        [service_order(text="Strict bed rest x 3 days")],
        cards={"lbp-bed-rest"},
        medicine=False,
    ),
    s(
        "a lumbar brace for a vertebral fracture is not called low value",
        [service_order("DeviceRequest", snomed="77476009", display="Lumbar support")],
        [condition(icd="M80.08XA", days_ago=20)],
        cards=set(),
        medicine=False,
        red_flag_ok=True,
    ),
    s(
        "a lumbar brace without a fracture is low value",
        [service_order("DeviceRequest", snomed="77476009", display="Lumbar support")],
        cards={"lbp-low-value"},
        medicine=False,
    ),
    s(
        "TENS for the knee is not this guideline's question",
        [service_order(cpt="64550", body_site="Right knee")],
        cards=set(),
        medicine=False,
    ),
    s(
        "TENS for the lower back is low value",
        [service_order(cpt="64550", body_site="Lumbar region")],
        cards={"lbp-low-value"},
        medicine=False,
    ),
    s(
        "a trigger point injection for shoulder pain is not this guideline's question",
        [service_order(cpt="20552", reason={"icd": "M25.511"})],
        cards=set(),
        medicine=False,
    ),
]
