"""The benchmark's statistics: percentiles of latencies, the interleaved measurement of several servers side by
side (so that this shared VM's slow spells fall on each of them alike), and the merging of several rounds into
medians, where every CPU ratio to a floor pairs a service and a floor that were measured together."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import requests

from .processes import cpu_seconds, peak_rss_mb, workers

# Each CPU comparison with a floor: (label, service workload, floor workload), measured in the same round.
CPU_PAIRS = (
    ("W1", "W1 service", "W1 floor"), ("W1 stdlib", "W1 service", "W1 stdlib floor"),
    ("W2", "W2 service", "W2 floor"), ("W2 stdlib", "W2 service", "W2 stdlib floor"),
    ("W6", "W6 service", "W6 floor"), ("MIN", "MIN service", "MIN floor"), ("MIN+enc", "MIN+enc service", "MIN floor"),
    ("W4 load", "W4 service", "W4 floor"), ("MIN load", "MIN wrk", "MIN floor wrk"),
    ("MIN+enc load", "MIN+enc wrk", "MIN floor wrk"),
    ("MIN peer", "MIN service", "MIN peer"), ("MIN peer load", "MIN wrk", "MIN peer wrk"),
)  # fmt: skip


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Target:
    """One server and what to send it: a list of bodies is sent in turn (W6: each once)."""

    url: str
    bodies: list[bytes]
    master: int
    warm_up: bool = True


def interleaved(targets: dict[str, Target], n: int, block: int = 20) -> dict[str, dict[str, float]]:
    """`n` calls to each target, one after another, in alternating blocks of `block` calls.

    The service and its floors are measured in the same minutes, so a slow spell of this shared VM falls on
    each of them alike rather than on whichever was being measured at the time. Each block's CPU is read
    from that target's workers only (they are idle while the others are called)."""
    headers = {"Content-Type": "application/json"}
    sessions = {name: requests.Session() for name in targets}
    for name, t in targets.items():
        for _ in range(max(3, n // 10) if t.warm_up else 0):
            sessions[name].post(t.url, data=t.bodies[0], headers=headers, timeout=30)
    pids = {name: workers(t.master) for name, t in targets.items()}
    cpu = dict.fromkeys(targets, 0.0)
    busy = dict.fromkeys(targets, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    for first in range(0, n, block):
        for name, t in targets.items():
            cpu_before, started = cpu_seconds(pids[name]), time.perf_counter()
            for i in range(first, min(n, first + block)):
                sent = time.perf_counter()
                response = sessions[name].post(t.url, data=t.bodies[i % len(t.bodies)], headers=headers, timeout=30)
                latencies[name].append((time.perf_counter() - sent) * 1000)
                assert response.status_code == 200, response.text[:300]
            busy[name] += time.perf_counter() - started
            cpu[name] += cpu_seconds(pids[name]) - cpu_before
    return {
        name: {
            "p50": percentile(latencies[name], 50),
            "p95": percentile(latencies[name], 95),
            "p99": percentile(latencies[name], 99),
            "rps": n / busy[name],
            "cpu_ms": cpu[name] / n * 1000,
            "rss_mb": peak_rss_mb(pids[name]),
        }
        for name in targets
    }


def round_ratios(rounds: list[dict[str, dict]], service: str, floor: str) -> list[float]:
    """The service's CPU per request over the floor's, one ratio per round: each pair measured together."""
    return [
        r[service]["cpu_ms"] / r[floor]["cpu_ms"]
        for r in rounds
        if (r.get(floor) or {}).get("cpu_ms") and (r.get(service) or {}).get("cpu_ms")
    ]


def median_of(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Each figure of each workload: the median over the rounds that measured it. A CPU ratio to a floor is
    the median of the rounds' own ratios (`cpu vs <floor>`), never a ratio of medians from different rounds."""
    merged: dict[str, dict] = {}
    for workload in rounds[0]:
        figures: dict[str, float] = {}
        for name in rounds[0][workload]:
            values = [r[workload][name] for r in rounds if isinstance(r.get(workload, {}).get(name), int | float)]
            if values:
                figures[name] = statistics.median(values)
        merged[workload] = figures
    for _, service, floor in CPU_PAIRS:
        if ratios := round_ratios(rounds, service, floor):
            merged[service][f"cpu vs {floor}"] = statistics.median(ratios)
    return merged
