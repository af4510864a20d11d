"""The first-line plan, once, on chart review.

Guideline ("First-Line Treatment"; "Expected Outcomes and Work Considerations"): "Begin immediately with
exercise therapy combined with superficial heat application while maintaining normal activity
levels—avoid bed rest entirely"; further options yoga, tai chi, massage, spinal manipulation, CBT or
mindfulness; "Modified work is preferable to complete work absence"; "Most patients show substantial
improvement within the first month".
When a patient with active low back pain and no red flag or inflammatory picture has their chart
opened, and nothing more urgent is being said, Then show the plan in one concise card.
"""

from __future__ import annotations

from cds_service.domain.findings import BackPainEpisode, Finding
from cds_service.rules.catalog import PATIENT_VIEW, register

RULE = register("lbp-first-line", hooks=PATIENT_VIEW)


def first_line_plan(episode: BackPainEpisode) -> Finding:
    return Finding(rule=RULE, indicator="info", episode=episode, evidence=episode.evidence)
