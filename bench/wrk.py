"""The wrk driver: throughput, latency percentiles and the workers' CPU per request of one server under 16
connections, read from wrk's own report, and several servers under wrk in turns that alternate between them.
Nothing is measured, and every figure is left empty, where wrk is not installed; `ensure_wrk` installs it from
Debian when it can."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

from .processes import cpu_seconds, workers


def ensure_wrk() -> None:
    """wrk comes from Debian; install it when this is a root shell that can."""
    if shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk", shell=True, check=False
        )


def run_wrk(url: str, body_file: Path, seconds: int, connections: int, master: int) -> dict[str, float] | None:
    """wrk's throughput and latency percentiles, and the workers' CPU per request over the run (under load the
    per-request CPU drops below the sequential figure: no wake-up per request; the issue's table is this one)."""
    if shutil.which("wrk") is None:
        return None
    script = body_file.with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"local f = io.open({json.dumps(str(body_file))}, 'rb'); wrk.body = f:read('*a'); f:close()\n"
    )
    pids = workers(master)
    cpu_before = cpu_seconds(pids)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    result: dict[str, float] = {"cpu_s": cpu_seconds(pids) - cpu_before, "seconds": seconds}
    return result | parse_output(out)


def parse_output(out: str) -> dict[str, float]:
    """The figures of wrk's `--latency` report: requests, p50 and p99 in ms, and non-2xx answers if any."""
    result: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if "requests in" in line and parts[0].isdigit():
            result["requests"] = int(parts[0])
        elif parts[:1] == ["99%"]:
            result["p99"] = _ms(parts[1])
        elif parts[:1] == ["50%"]:
            result["p50"] = _ms(parts[1])
        elif "Non-2xx" in line:
            result["errors"] = float(parts[-1])
    return result


def wrk_interleaved(targets: dict[str, tuple[str, Path, int]], seconds: int, chunks: int = 3) -> dict[str, dict]:
    """Each target under wrk for `seconds` in all, in `chunks` turns that alternate between the targets (the same
    reason as `bench.stats.interleaved`). p50 is the median of the turns' p50s, p99 the worst turn's p99."""
    if shutil.which("wrk") is None:
        return {name: {} for name in targets}
    turns: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for url, body, master in targets.values():
        run_wrk(url, body, 1, 16, master)  # connections opened and workers warm before anything counts
    for _ in range(chunks):
        for name, (url, body, master) in targets.items():
            turns[name].append(run_wrk(url, body, max(1, seconds // chunks), 16, master) or {})
    out: dict[str, dict] = {}
    for name, runs in turns.items():
        requests_ = sum(r.get("requests", 0) for r in runs)
        out[name] = {
            "rps": requests_ / sum(r["seconds"] for r in runs),
            "cpu_ms": sum(r["cpu_s"] for r in runs) / requests_ * 1000 if requests_ else 0.0,
            "p50": statistics.median(r.get("p50", 0.0) for r in runs),
            "p99": max(r.get("p99", 0.0) for r in runs),
            "errors": sum(r.get("errors", 0.0) for r in runs),
        }
    return out


def _ms(text: str) -> float:
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)
