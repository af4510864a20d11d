"""The printed results of `make bench`: the table of the median figures over the rounds, each workload's line
below it, and the spread of each round's own CPU ratios to the floor (this VM's noise is large, and the spread
shows how much of it a median hides). Formatting only: the figures arrive measured and merged."""

from __future__ import annotations

from collections.abc import Callable

from .stats import CPU_PAIRS, round_ratios


def spread(rounds: list[dict[str, dict]]) -> str:
    """The CPU ratios to the floor of each round, each round's service and floor measured together."""
    lines = [f"CPU vs the floor, each of {len(rounds)} rounds:"]
    for label, service, floor in CPU_PAIRS:
        ratios = round_ratios(rounds, service, floor)
        lines.append(f"  {label:<13}" + "  ".join(f"{x:.2f}x" for x in ratios))
    throughput = [r["W5 last"]["rps"] / r["W5 first"]["rps"] for r in rounds]
    lines.append("  W5 last/first throughput " + "  ".join(f"{x:.2f}" for x in throughput))
    drift_free = [r["W5 last"]["vs_floor"] / r["W5 first"]["vs_floor"] for r in rounds]
    lines.append("  W5 last/first CPU vs its floor " + "  ".join(f"{x:.2f}" for x in drift_free))
    return "\n".join(lines)


def peer_line(r: dict[str, dict], peer: dict[str, float], cpu_vs: Callable[[str, str], str]) -> str:
    """The peer on its own request beside the service's MIN, both measured in the same minutes."""
    service, load, service_load = r["MIN service"], r.get("MIN peer wrk") or {}, r.get("MIN wrk") or {}

    def cpu(m: dict[str, float]) -> str:
        return f"{m['cpu_ms']:.2f}" if m.get("cpu_ms") else "not measured (its process was not found: PEER_PID)"

    return (
        f"Peer on its own request (same run, interleaved with MIN): sequential CPU/req {cpu(peer)} against the "
        f"service's {service['cpu_ms']:.2f} (service/peer {cpu_vs('MIN service', 'MIN peer')}), p50 {peer['p50']:.2f} ms "
        f"against {service['p50']:.2f}; 16 connections {load.get('rps', 0):.0f} req/s, p99 {load.get('p99', 0):.1f} ms "
        f"against {service_load.get('p99', 0):.1f}, CPU/req {cpu(load)} against {service_load.get('cpu_ms', 0):.2f} "
        f"(service/peer {cpu_vs('MIN wrk', 'MIN peer wrk')}); targets: the service's CPU and p99 at most the peer's"
    )


def report(
    r: dict[str, dict],
    size1: int,
    size2: int,
    delay_ms: int,
    n_workers: int,
    *,
    history_calls: int,
    cold_patients: int,
) -> str:
    """The table and the lines under it; `history_calls` and `cold_patients` are W5's and W6's call counts."""

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a and b else "-"

    def cpu_vs(service: str, floor: str) -> str:
        paired = (r.get(service) or {}).get(f"cpu vs {floor}")
        return f"{paired:.2f}x" if paired else "-"

    lines = [
        f"Benchmarks, medians over rounds ({n_workers} gunicorn gthread workers x 8 threads each, service and floors alike; W1 body {size1 / 1024:.0f} KiB, W2 body {size2 / 1024:.0f} KiB)",
        "",
        f"{'workload':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>9}{'CPU ms/req':>12}{'peak RSS MB':>13}{'CPU vs floor':>14}{'p50 vs floor':>14}",
    ]
    for w in ("W1", "W2"):
        for who in ("service", "floor"):
            m = r[f"{w} {who}"]
            vs_cpu = cpu_vs(f"{w} service", f"{w} floor") if who == "service" else ""
            vs_p50 = ratio(m["p50"], r[f"{w} floor"]["p50"]) if who == "service" else ""
            lines.append(
                f"{w + ' ' + who:<22}{m['p50']:>9.2f}{m['p95']:>9.2f}{m['p99']:>9.2f}{m['rps']:>9.0f}{m['cpu_ms']:>12.2f}{m['rss_mb']:>13.0f}{vs_cpu:>14}{vs_p50:>14}"
            )
    w3, chain = r["W3 service"], r["W3 chain"]
    lines += [
        "",
        f"W3 no prefetch, {delay_ms} ms added per FHIR request: end to end p50 {w3['p50']:.1f} ms, p95 {w3['p95']:.1f} ms; "
        f"{chain['requests_per_call']:.0f} FHIR requests per call, up to {chain['max_in_flight']:.0f} in flight at once; "
        f"slowest chain p50 {chain['chain_p50']:.0f} ms (one after another they would take {chain['serial_p50']:.0f} ms); "
        f"end to end / slowest chain: p50 {chain['ratio_p50']:.2f}x, worst {chain['ratio_max']:.2f}x",
    ]
    lines += ["", "Against the fast floor (orjson) and the standard-library floor, each measured in the same rounds:"]
    for w in ("W1", "W2"):
        fast, slow = r[f"{w} floor"], r[f"{w} stdlib floor"]
        lines.append(
            f"{w}: service {r[f'{w} service']['cpu_ms']:.2f} ms CPU/req; orjson floor {fast['cpu_ms']:.2f} "
            f"({cpu_vs(f'{w} service', f'{w} floor')}); stdlib floor {slow['cpu_ms']:.2f} "
            f"({cpu_vs(f'{w} service', f'{w} stdlib floor')}); target <= 2x the orjson floor"
        )
    w6 = r["W6 service"]
    lines.append(
        f"W6 cold ({cold_patients} distinct patients, each once): {w6['cpu_ms']:.2f} ms CPU/req, p50 {w6['p50']:.2f} ms, p99 {w6['p99']:.2f} ms, "
        f"{w6['rps']:.0f} req/s; orjson floor (W1 body, interleaved with W6) {r['W6 floor']['cpu_ms']:.2f} "
        f"({cpu_vs('W6 service', 'W6 floor')}); target <= 2x"
    )
    floor_load = r.get("MIN floor wrk") or {}
    for name in ("MIN", "MIN+enc"):
        m, load = r[f"{name} service"], r.get(f"{name} wrk") or {}
        lines.append(
            f"{name:<8} minimal order-select (1.5 KB{', encounterId' if name.endswith('enc') else ''}), target <= 0.7 ms "
            f"CPU/req: sequential {m['cpu_ms']:.2f} (floor {r['MIN floor']['cpu_ms']:.2f}, "
            f"{cpu_vs(f'{name} service', 'MIN floor')}); 16 connections {load.get('cpu_ms', 0):.2f} "
            f"(floor {floor_load.get('cpu_ms', 0):.2f}, {cpu_vs(f'{name} wrk', 'MIN floor wrk')}), "
            f"{load.get('rps', 0):.0f} req/s, p99 {load.get('p99', 0):.1f} ms (target < 15; floor {floor_load.get('p99', 0):.1f})"
        )
    if peer := r.get("MIN peer"):
        lines.append(peer_line(r, peer, cpu_vs))
    lines.append(
        f"In process, no HTTP: MIN's hook pipeline alone {r['MIN in process']['cpu_ms']:.2f} ms CPU/call (the whole "
        f"call's target is 0.7); W6's fhir.resources validation alone {r['W6 validation']['cpu_ms']:.2f} ms CPU/call "
        f"({r['W6 validation']['resources']:.1f} resources per call; the W6 floor is {r['W6 floor']['cpu_ms']:.2f})"
    )
    first, last = r["W5 first"], r["W5 last"]
    lines.append(
        f"W5 history (one encounter, {history_calls} calls): first fifth {first['rps']:.0f} req/s, {first['cpu_ms']:.2f} ms CPU/req; "
        f"last fifth {last['rps']:.0f} req/s, {last['cpu_ms']:.2f} ms CPU/req "
        f"(last/first throughput {last['rps'] / first['rps']:.2f}; target >= 0.90); CPU vs a floor measured "
        f"within each fifth: first {first['vs_floor']:.2f}x, last {last['vs_floor']:.2f}x"
    )
    lines.append("")
    for who in ("service", "floor"):
        m = r.get(f"W4 {who}") or {}
        if m:
            vs = cpu_vs("W4 service", "W4 floor") if who == "service" else ""
            lines.append(
                f"W4 {who:<8} W1 at 16 connections: {m.get('rps', 0):.0f} req/s, p50 {m.get('p50', 0):.1f} ms, "
                f"p99 {m.get('p99', 0):.1f} ms, {m.get('cpu_ms', 0):.2f} ms CPU/req"
                + (f" ({vs} the floor)" if vs else "")
                + (f", {m['errors']:.0f} non-2xx" if m.get("errors") else "")
            )
        else:
            lines.append(f"W4 {who}: skipped (wrk is not installed)")
    return "\n".join(lines)
