"""Red-flag and episode scenarios coded the way real EHRs code: each is a small record (tests/builders.py),
a hook, and what the cards must say. Every back pain record gets an active low back pain problem
(M54.50, 10 days) unless the scenario says otherwise. Expectations:
- red_flags: the exact set of red-flag categories named on the red-flag card (empty: no red-flag card);
- critical: whether the red-flag card is critical;
- imaging: the imaging card's indicator ("warning"/"info"), or None for no imaging card;
- cancel: whether the imaging card offers the one-click cancel;
- cards: the exact number of cards, where that is the point;
- text: fragments the cards' summaries or details must contain."""

from __future__ import annotations

from typing import Any

from ..builders import condition, medication, observation, temperature

LBP = {"icd": "M54.50", "display": "Low back pain, unspecified"}


def _invalid(resource: dict[str, Any]) -> dict[str, Any]:
    resource["onsetDateTime"] = "last week"  # not a FHIR dateTime: the resource fails validation
    return resource


def s(name: str, resources: list[dict[str, Any]] | None = None, **expect: Any) -> dict[str, Any]:
    return {"name": name, "resources": resources or [], **expect}


RED_FLAG = dict(imaging=None)
NO_FLAG = dict(red_flags=set(), imaging="warning", cancel=True)

SCENARIOS: list[dict[str, Any]] = [
    # --- malignancy: history-of codes, deep descendants, undotted codes, SNOMED, text, negation, status
    s(
        "history of breast cancer coded Z85.3 is a malignancy red flag",
        [condition(icd="Z85.3", days_ago=3000)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "resolved history of prostate cancer Z85.46 still counts",
        [condition(icd="Z85.46", status="resolved", days_ago=4000)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "a deep ICD-10-CM descendant C50.911 counts as cancer",
        [condition(icd="C50.911", days_ago=400)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "an undotted ICD-10-CM code C50911 counts as cancer",
        [condition(icd="C50911", days_ago=400)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "cancer in remission counts as a history of cancer",
        [condition(icd="C91.01", status="remission", days_ago=900)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "SNOMED CT malignant neoplasm of breast counts as cancer",
        [condition(snomed="254837009", days_ago=700)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "a problem entered as text only naming colon cancer counts",
        [condition(text="Colon cancer, treated 2015", days_ago=None)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "a local code with a display naming metastases counts",
        [condition(text="Bone mets L3", snomed="999999999001", days_ago=20)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s("negated cancer text is not a red flag", [condition(text="No history of cancer", days_ago=5)], **NO_FLAG),
    s(
        "family history of cancer is not the patient's cancer",
        [condition(text="Family history of cancer", days_ago=5)],
        **NO_FLAG,
    ),
    s(
        "a cancer entered in error is not a red flag",
        [condition(icd="C79.51", verification="entered-in-error", days_ago=5)],
        **NO_FLAG,
    ),
    s("a refuted cancer is not a red flag", [condition(icd="C79.51", verification="refuted", days_ago=5)], **NO_FLAG),
    s(
        "an unconfirmed cancer counts: uncertainty makes the service careful",
        [condition(icd="C79.51", verification="unconfirmed", days_ago=5)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s(
        "unexplained weight loss R63.4 is a malignancy red flag",
        [condition(icd="R63.4", days_ago=20)],
        red_flags={"malignancy"},
        **RED_FLAG,
    ),
    s("a benign fibroid D25.9 is not a red flag", [condition(icd="D25.9", days_ago=2000)], **NO_FLAG),
    # --- recent trauma: 90-day window, falls, sprains are back pain not trauma
    s(
        "a lumbar vertebra fracture 30 days ago is trauma and fracture",
        [condition(icd="S32.010A", days_ago=30)],
        red_flags={"recent-trauma", "osteoporosis-fracture"},
        **RED_FLAG,
    ),
    s(
        "a lumbar dislocation 89 days ago is recent trauma",
        [condition(icd="S33.101A", days_ago=89)],
        red_flags={"recent-trauma"},
        **RED_FLAG,
    ),
    s(
        "a lumbar dislocation 91 days ago is no longer recent trauma",
        [condition(icd="S33.101A", days_ago=91)],
        **NO_FLAG,
    ),
    s(
        "a fall coded W19.XXXA 20 days ago is recent trauma",
        [condition(icd="W19.XXXA", days_ago=20)],
        red_flags={"recent-trauma"},
        **RED_FLAG,
    ),
    s("a lumbar sprain S33.5XXA is back pain, not trauma", [condition(icd="S33.5XXA", days_ago=5)], **NO_FLAG),
    s(
        "a text-only fall from a ladder 10 days ago is recent trauma",
        [condition(text="Fell from ladder at work", days_ago=10)],
        red_flags={"recent-trauma"},
        **RED_FLAG,
    ),
    # --- osteoporosis and fracture
    s(
        "osteoporosis with vertebral fracture M80.08XA is a red flag",
        [condition(icd="M80.08XA", days_ago=40)],
        red_flags={"osteoporosis-fracture"},
        **RED_FLAG,
    ),
    s(
        "osteoporosis without fracture M81.0 counts",
        [condition(icd="M81.0", days_ago=2000)],
        red_flags={"osteoporosis-fracture"},
        **RED_FLAG,
    ),
    s(
        "SNOMED CT osteoporosis counts",
        [condition(snomed="64859006", days_ago=2000)],
        red_flags={"osteoporosis-fracture"},
        **RED_FLAG,
    ),
    s(
        "collapsed lumbar vertebra M48.56XA counts",
        [condition(icd="M48.56XA", days_ago=100)],
        red_flags={"osteoporosis-fracture"},
        **RED_FLAG,
    ),
    s(
        "an old thoracic vertebra fracture S22.000A counts as fracture, not recent trauma",
        [condition(icd="S22.000A", days_ago=800)],
        red_flags={"osteoporosis-fracture"},
        **RED_FLAG,
    ),
    # --- fever from every site and unit, panels, window and threshold
    s(
        "an oral temperature of 38.4 Cel is fever",
        [temperature(38.4, "Cel", loinc="8331-1")],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s(
        "a tympanic temperature of 101.2 degF is fever",
        [temperature(101.2, "[degF]", loinc="8333-7")],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s(
        "a rectal temperature of 311.5 K is fever",
        [temperature(311.5, "K", loinc="8332-9")],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s(
        "a temperature inside a vital-signs panel is read",
        [temperature(38.5, "Cel", panel=True)],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s(
        "a temperature of exactly 38.0 Cel is fever",
        [temperature(38.0, "Cel", loinc="8328-7")],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s("an axillary temperature of 37.9 Cel is not fever", [temperature(37.9, "Cel", loinc="8328-7")], **NO_FLAG),
    s(
        "a fever 13 days ago is within the 14-day window",
        [temperature(39.0, "Cel", days_ago=13)],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s("a fever 15 days ago is outside the 14-day window", [temperature(39.0, "Cel", days_ago=15)], **NO_FLAG),
    s(
        "a coded fever R50.9 three days ago is a red flag",
        [condition(icd="R50.9", days_ago=3)],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s("a coded fever R50.9 a month ago is not", [condition(icd="R50.9", days_ago=30)], **NO_FLAG),
    s(
        "vertebral osteomyelitis M46.26 is a spinal infection",
        [condition(icd="M46.26", days_ago=30)],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    s(
        "discitis written as text is a spinal infection",
        [condition(text="L4-5 discitis", days_ago=30)],
        red_flags={"spinal-infection"},
        **RED_FLAG,
    ),
    # --- prolonged corticosteroids: summed courses, threshold both sides, route
    s(
        "four monthly prednisone prescriptions add up to a prolonged steroid course",
        [medication(text="prednisone 10 mg oral tablet", days_ago=d, supply_days=30) for d in (40, 100, 160, 220)],
        red_flags={"prolonged-corticosteroids"},
        **RED_FLAG,
    ),
    s(
        "two monthly prednisone prescriptions are not a prolonged course",
        [medication(text="prednisone 10 mg oral tablet", days_ago=d, supply_days=30) for d in (40, 100)],
        **NO_FLAG,
    ),
    s(
        "a 90-day steroid supply reaches the threshold",
        [medication(text="prednisolone 5 mg oral tablet", days_ago=120, supply_days=90)],
        red_flags={"prolonged-corticosteroids"},
        **RED_FLAG,
    ),
    s(
        "an 89-day steroid supply does not",
        [medication(text="prednisolone 5 mg oral tablet", days_ago=120, supply_days=89)],
        **NO_FLAG,
    ),
    s(
        "a 30-day supply with two repeats is 90 days",
        [medication(text="dexamethasone 2 mg oral tablet", days_ago=100, supply_days=30, repeats=2)],
        red_flags={"prolonged-corticosteroids"},
        **RED_FLAG,
    ),
    s(
        "an RxNorm-coded oral dexamethasone open for 100 days counts",
        [medication(rxnorm="197577", status="active", days_ago=100)],
        red_flags={"prolonged-corticosteroids"},
        **RED_FLAG,
    ),
    s(
        "steroid eye drops for a year are not systemic",
        [medication(text="prednisolone acetate 1% ophthalmic suspension", status="active", days_ago=365)],
        **NO_FLAG,
    ),
    s(
        "steroid courses more than a year ago do not count",
        [medication(text="prednisone 10 mg oral tablet", days_ago=d, supply_days=30) for d in (400, 460, 520, 580)],
        **NO_FLAG,
    ),
    s(
        "long-term steroid use coded Z79.52 is a red flag",
        [condition(icd="Z79.52", days_ago=500)],
        red_flags={"prolonged-corticosteroids"},
        **RED_FLAG,
    ),
    # --- cauda equina: SNOMED variants, text, negation, recency, history
    s(
        "SNOMED CT cauda equina syndrome not affecting bladder is critical",
        [condition(snomed="192971007", days_ago=2)],
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
        text=["Possible cauda equina syndrome: same-day"],
    ),
    s(
        "ICD-10-CM G83.4 cauda equina syndrome is critical",
        [condition(icd="G83.4", days_ago=2)],
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
    ),
    s(
        "saddle anaesthesia written as text two days ago is critical",
        [condition(text="Saddle anaesthesia since Tuesday", days_ago=2)],
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
    ),
    s(
        "denied saddle anaesthesia and bladder dysfunction is not a red flag",
        [condition(text="Denies saddle anaesthesia or bladder dysfunction", days_ago=2)],
        **NO_FLAG,
    ),
    s(
        "urinary retention R33.9 five days ago is critical",
        [condition(icd="R33.9", days_ago=5)],
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
    ),
    s(
        "urinary retention 27 days ago is still recent",
        [condition(icd="R33.9", days_ago=27)],
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
    ),
    s(
        "urinary retention 29 days ago is named but not an emergency",
        [condition(icd="R33.9", days_ago=29)],
        red_flags=set(),
        imaging="warning",
        cancel=False,
        text=["more than 28 days ago"],
    ),
    s(
        "a six-year-old incontinence entry raises no critical card and no one-click cancel",
        [condition(icd="R32", days_ago=6 * 365)],
        red_flags=set(),
        imaging="warning",
        cancel=False,
        text=["Also on the record"],
    ),
    s(
        "a resolved cauda equina syndrome is a warning, not an emergency",
        [condition(icd="G83.4", status="resolved", days_ago=1500)],
        red_flags={"cauda-equina"},
        critical=False,
        **RED_FLAG,
        text=["History of cauda equina syndrome"],
    ),
    s(
        "a suspected cauda equina given as the order's reason is critical",
        [],
        order_reason={"text": "?cauda equina - urgent"},
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
    ),
    # --- a red flag never depends on back pain being coded
    s(
        "cauda equina syndrome with a lumbar MRI and no back pain coded gets the critical card",
        [condition(icd="G83.4", days_ago=2)],
        back_pain=False,
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
        cards=1,
    ),
    s(
        "recent urinary retention with a lumbar MRI and no back pain coded gets the critical card",
        [condition(icd="R33.9", days_ago=2)],
        back_pain=False,
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
        cards=1,
    ),
    s(
        "cauda equina syndrome on patient-view with no back pain coded gets the critical card",
        [condition(icd="G83.4", days_ago=2)],
        back_pain=False,
        hook="patient-view",
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
        cards=1,
    ),
    s(
        "urinary retention alone on patient-view with no back pain is not cauda equina",
        [condition(icd="R33.9", days_ago=2)],
        back_pain=False,
        hook="patient-view",
        red_flags=set(),
        imaging=None,
        cards=0,
    ),
    # --- neurological deficit versus vague symptoms
    s(
        "foot drop M21.371 is a neurological deficit",
        [condition(icd="M21.371", days_ago=10)],
        red_flags={"neurologic-deficit"},
        **RED_FLAG,
    ),
    s(
        "SNOMED CT compression of lumbar nerve root counts as a deficit",
        [condition(snomed="299966003", days_ago=10)],
        red_flags={"neurologic-deficit"},
        **RED_FLAG,
    ),
    s(
        "paraesthesia R20.2 is not a progressive deficit but withholds the cancel",
        [condition(icd="R20.2", days_ago=10)],
        red_flags=set(),
        imaging="warning",
        cancel=False,
    ),
    s(
        "difficulty walking R26.2 is not a progressive deficit but withholds the cancel",
        [condition(icd="R26.2", days_ago=10)],
        red_flags=set(),
        imaging="warning",
        cancel=False,
    ),
    s(
        "a foot drop from three years ago is named, not counted as new",
        [condition(icd="M21.372", days_ago=3 * 365)],
        red_flags=set(),
        imaging="warning",
        cancel=False,
    ),
    # --- injection drug use, HIV, transplant, surgery, spondylopathy
    s(
        "active opioid dependence from years ago is an injection drug use red flag",
        [condition(icd="F11.20", days_ago=900)],
        red_flags={"iv-drug-use"},
        **RED_FLAG,
    ),
    s(
        "opioid dependence resolved two years ago is named, not counted",
        [condition(icd="F11.21", status="resolved", days_ago=730)],
        red_flags=set(),
        imaging="warning",
        cancel=False,
    ),
    s("HIV coded B20 is a red flag", [condition(icd="B20", days_ago=3000)], red_flags={"hiv"}, **RED_FLAG),
    s(
        "kidney transplant status Z94.0 is a red flag",
        [condition(icd="Z94.0", days_ago=3000)],
        red_flags={"transplant-immunosuppression"},
        **RED_FLAG,
    ),
    s(
        "a liver transplant written as text is a red flag",
        [condition(text="s/p liver transplant 2018", days_ago=None)],
        red_flags={"transplant-immunosuppression"},
        **RED_FLAG,
    ),
    s(
        "postlaminectomy syndrome M96.1 is past lumbar surgery",
        [condition(icd="M96.1", days_ago=1000)],
        red_flags={"lumbar-surgery"},
        **RED_FLAG,
    ),
    s(
        "a laminectomy written as text is past lumbar surgery",
        [condition(text="L4-5 laminectomy 2019", days_ago=None)],
        red_flags={"lumbar-surgery"},
        **RED_FLAG,
    ),
    s(
        "sacroiliitis M46.1 is a spondylopathy",
        [condition(icd="M46.1", days_ago=300)],
        red_flags={"spondylopathy"},
        **RED_FLAG,
    ),
    # --- the episode: retired codes, text, start of the current episode
    s("the retired code M54.5 alone is a back pain episode", [], back_pain={"icd": "M54.5"}, **NO_FLAG),
    s("an undotted M5450 is a back pain episode", [], back_pain={"icd": "M5450"}, **NO_FLAG),
    s("lumbago with sciatica M54.42 is a back pain episode", [], back_pain={"icd": "M54.42"}, **NO_FLAG),
    s(
        "a text-only problem 'Acute lower back pain' is a back pain episode",
        [],
        back_pain={"text": "Acute lower back pain"},
        **NO_FLAG,
    ),
    s(
        "'no back pain' text is not a back pain episode",
        [],
        back_pain={"text": "No back pain"},
        red_flags=set(),
        imaging=None,
        cards=0,
    ),
    s(
        "no back pain anywhere and no red flag gives no cards",
        [],
        back_pain=False,
        red_flags=set(),
        imaging=None,
        cards=0,
    ),
    s(
        "back pain given only as the order's reason is an episode of unknown onset",
        [],
        back_pain=False,
        order_reason={"icd": "M54.50"},
        **NO_FLAG,
        text=["onset not recorded"],
    ),
    s(
        "a new flare 10 days ago after years without entries is a new acute episode",
        [condition(icd="M54.50", days_ago=5 * 365)],
        **NO_FLAG,
        text=["10 days ago"],
    ),
    s(
        "a single back pain entry from years ago is chronic: imaging is information",
        [],
        back_pain={"icd": "M54.50", "days_ago": 3 * 365},
        red_flags=set(),
        imaging="info",
        cancel=True,
    ),
    s(
        "entries 179 days apart are one episode",
        [condition(icd="M54.50", days_ago=189)],
        red_flags=set(),
        imaging="info",
        cancel=True,
    ),
    s("entries 181 days apart are two episodes", [condition(icd="M54.50", days_ago=191)], **NO_FLAG),
    # --- age
    s("a 16-year-old gets no advice written for adults", [], age=16, red_flags=set(), imaging=None, cards=0),
    s("a 17-year-old gets no adult advice", [], age=17.9, red_flags=set(), imaging=None, cards=0),
    s("an 18-year-old gets the adult advice", [], age=18, **NO_FLAG),
    s(
        "a 16-year-old with cauda equina syndrome still gets the critical card",
        [condition(icd="G83.4", days_ago=1)],
        age=16,
        red_flags={"cauda-equina"},
        critical=True,
        **RED_FLAG,
        cards=1,
    ),
    s("at 50 age is not named as a risk factor", [], age=50.5, **NO_FLAG, no_text=["risk factor for cancer"]),
    s("at 51 age is named as a risk factor for cancer", [], age=51, **NO_FLAG, text=["risk factor for cancer"]),
    s(
        "at 75 the patient is inside the measure's population",
        [],
        age=75.5,
        **NO_FLAG,
        no_text=["outside the imaging measure"],
    ),
    s(
        "at 76 the card says the patient is outside the measure's population",
        [],
        age=76,
        **NO_FLAG,
        text=["outside the imaging measure"],
    ),
    # --- when in doubt, no cancel
    s(
        "unreadable observations withhold the cancel and say so",
        [],
        omit=("observations",),
        red_flags=set(),
        imaging="warning",
        cancel=False,
        text=["Not checked"],
    ),
    s(
        "unreadable medication orders withhold the cancel",
        [],
        omit=("medicationRequests",),
        red_flags=set(),
        imaging="warning",
        cancel=False,
        text=["Not checked"],
    ),
    # --- red flags carried by laboratory results, with their negative twins (the same record, a normal value)
    s(
        "a raised ESR of 62 mm/h with no diagnosis is a red flag",
        [observation(value=62, unit="mm/h", loinc="4537-7", display="Erythrocyte sedimentation rate", days_ago=5)],
        red_flags={"raised-inflammatory-markers"},
        **RED_FLAG,
    ),
    s(
        "a normal ESR of 12 mm/h leaves the ordinary imaging advice",
        [observation(value=12, unit="mm/h", loinc="4537-7", display="Erythrocyte sedimentation rate", days_ago=5)],
        **NO_FLAG,
    ),
    s(
        "a CRP of 4.8 mg/dL (48 mg/L) is a red flag",
        [observation(value=4.8, unit="mg/dL", loinc="1988-5", display="C reactive protein", days_ago=2)],
        red_flags={"raised-inflammatory-markers"},
        **RED_FLAG,
    ),
    s(
        "a CRP of 0.4 mg/dL (4 mg/L) is not",
        [observation(value=0.4, unit="mg/dL", loinc="1988-5", display="C reactive protein", days_ago=2)],
        **NO_FLAG,
    ),
    s(
        "a white cell count of 15.2 x10^3/uL is a red flag",
        [observation(value=15.2, unit="10*3/uL", loinc="6690-2", display="WBC", days_ago=1)],
        red_flags={"raised-inflammatory-markers"},
        **RED_FLAG,
    ),
    s(
        "a white cell count of 7.1 x10^3/uL is not",
        [observation(value=7.1, unit="10*3/uL", loinc="6690-2", display="WBC", days_ago=1)],
        **NO_FLAG,
    ),
    s(
        "a DXA femoral neck T-score of -2.7 is osteoporosis",
        [observation(value=-2.7, unit="{T-score}", text="DXA femoral neck T-score", days_ago=200)],
        red_flags={"osteoporosis-fracture"},
        **RED_FLAG,
    ),
    s(
        "a DXA T-score of -1.8 is osteopenia, not osteoporosis",
        [observation(value=-1.8, unit="{T-score}", text="DXA femoral neck T-score", days_ago=200)],
        **NO_FLAG,
    ),
    s(
        "a CRP in a unit that cannot be read withholds the cancel",
        [observation(value=3, unit="mg/mmol", loinc="1988-5", display="C reactive protein", days_ago=2)],
        red_flags=set(),
        imaging="warning",
        cancel=False,
    ),
    # --- deficits no category used to list: spinal cord compression and myelopathy
    s(
        "spinal cord compression G95.20 is a neurological deficit red flag",
        [condition(icd="G95.20", display="Cord compression, unspecified", days_ago=3)],
        red_flags={"neurologic-deficit"},
        **RED_FLAG,
    ),
    s(
        "myelopathy in a disease classified elsewhere (G99.2) is a neurological deficit red flag",
        [condition(icd="G99.2", display="Myelopathy in diseases classified elsewhere", days_ago=20)],
        red_flags={"neurologic-deficit"},
        **RED_FLAG,
    ),
    s(
        "lumbar spinal stenosis without claudication (M48.061) is not a deficit",
        [condition(icd="M48.061", display="Spinal stenosis, lumbar region without neurogenic claudication")],
        **NO_FLAG,
    ),
]
