"""Inflammatory back pain (axial spondyloarthritis).

Guideline ("Critical Initial Distinction"): "Inflammatory spondyloarthropathy presents with pain that
improves with exercise but not with rest, morning stiffness, and pain awakening in the second half of
the night"; "If there is any confusion ... you require evaluation for inflammatory conditions".
- When an axial spondyloarthritis / ankylosing spondylitis diagnosis is active, Then say the back pain
  should be managed as inflammatory disease, and hold back advice that assumes mechanical pain.
- When back pain has lasted more than 12 weeks and began before age 45 (the entry criteria of the ASAS
  classification), Then suggest asking about inflammatory features before routine mechanical care.
The individual features (morning stiffness, night pain, response to exercise) have no codes that could
be verified offline, so they are asked about, not read from the record.
"""

from __future__ import annotations

from cds_service.domain.facts import PatientRecord
from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.knowledge.model import Knowledge
from cds_service.rules.catalog import ALL_HOOKS, register

RULE = register(
    "lbp-inflammatory", hooks=ALL_HOOKS, thresholds=("inflammatory_chronic_weeks", "inflammatory_onset_age")
)


def inflammatory_back_pain(record: PatientRecord, episode: BackPainEpisode, kb: Knowledge) -> Finding | None:
    axspa = kb.vs("axial_spondyloarthritis_all")
    known = [c for c in record.conditions if c.is_active and axspa.matches(c.code.codings)]
    if known:
        return Finding(
            rule=RULE,
            indicator="info",
            episode=episode,
            evidence=tuple(c.ref for c in known),
            facts={"variant": "known", "diagnosis": known[0].code.label()},
        )
    if (
        episode.weeks is None
        or episode.weeks <= kb.thresholds.inflammatory_chronic_weeks.value
        or episode.onset is None
    ):
        return None
    patient = record.patient  # read (and validated) only now: most calls never need it
    if patient is None or patient.birth_date is None:
        return None
    onset = episode.onset.date()
    birth = patient.birth_date
    age_at_onset = onset.year - birth.year - ((onset.month, onset.day) < (birth.month, birth.day))
    if age_at_onset >= kb.thresholds.inflammatory_onset_age.value:
        return None
    return Finding(
        rule=RULE,
        indicator="info",
        episode=episode,
        evidence=(f"Patient/{patient.id}", *episode.evidence),
        facts={"variant": "screen", "age_at_onset": str(age_at_onset)},
    )
