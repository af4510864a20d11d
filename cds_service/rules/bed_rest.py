"""Bed rest for low back pain.

Guideline: "avoid bed rest entirely" ("First-Line Treatment"); "Bed rest—leads to deconditioning and
worsens outcomes" ("Critical Pitfalls to Avoid"); "Continue ordinary activities within pain limits".
When a bed-rest order is placed (or is active on the chart) for a patient with low back pain,
Then advise against it and offer exercise therapy instead.
"""

from __future__ import annotations

from ..record import Order
from .catalog import ALL_HOOKS, register
from .findings import BackPainEpisode, Finding

RULE = register("lbp-bed-rest", hooks=ALL_HOOKS)


def bed_rest_ordered(order: Order, episode: BackPainEpisode) -> Finding:
    return Finding(
        rule=RULE, indicator="warning", target=order, episode=episode, evidence=(order.ref, *episode.evidence)
    )
