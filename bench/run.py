"""`make bench`: latency, throughput, CPU and memory of the service against a floor, on this machine.

Prints a table; never fails on timing (targets are in the issue and the README, not asserted here).
Workloads: W1 typical order-sign with full prefetch; W2 a large record with full prefetch; W3 no prefetch
against the real local FHIR server with a delay per request; W4 throughput under wrk; W5 history: 10,000
calls on one encounter and patient, feedback on some, first against last 2,000; W6 cold: 600
distinct W1-shaped patients, each sent once (no content-keyed cache can help); MIN: the sandbox's minimal order-select shape, with and without an
encounterId. Floors: the same Flask/gunicorn answering a constant card after parsing with orjson (the
service's parser, the floor ratios use) and with the standard library (a second reference line). Two more
reference lines are measured in process, with no HTTP (bench/in_process.py): MIN's hook pipeline alone, and
W6's fhir.resources validation alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from cds_service.cli import gunicorn_command, load_fixtures
from cds_service.fixtures import DEFAULT_DIR
from cds_service.local_fhir import LocalFhirServer
from cds_service.readiness import NotReady, wait_until_ready

from . import in_process, workloads

n5, n6 = 10_000, 600  # W5 calls, W6 calls (set by --quick)
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICE_PATH = "/cds-services/lbp-order-sign"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/healthz", 90, process)
        except NotReady as exc:
            raise SystemExit(f"server did not start ({exc}): {' '.join(command)}") from exc
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def service_env(database: Path, **extra: str) -> dict[str, str]:
    """What a benchmarked service runs with: authentication off, its own SQLite database."""
    return {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{database}", **extra}


def first_answer(url: str, body: Path, into: Path) -> Path:
    """The service's own answer to `body`, saved for the floors to send back: the same bytes on the wire."""
    answer = requests.post(url, data=body.read_bytes(), headers={"Content-Type": "application/json"}, timeout=30)
    into.write_bytes(answer.content)
    return into


def start_floor(
    running: ExitStack, port: int, answer: Path, workers: int, *, parser: str = "orjson", pythonpath: str | None = None
) -> subprocess.Popen:
    """A floor (bench/floor_app.py) served by the service's own gunicorn command, workers and threads."""
    command = gunicorn_command("127.0.0.1", port, workers, app="bench.floor_app:app")
    env = {"FLOOR_ANSWER_FILE": str(answer), "FLOOR_PARSER": parser} | (
        {"PYTHONPATH": pythonpath} if pythonpath else {}
    )
    return running.enter_context(server(command, env, port))


def workers(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def peak_rss_mb(pids: list[int]) -> float:
    peaks = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks) if peaks else float("nan")


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


def wrk(url: str, body_file: Path, seconds: int, connections: int, master: int) -> dict[str, float] | None:
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
    reason as `interleaved`). p50 is the median of the turns' p50s, p99 the worst turn's p99."""
    if shutil.which("wrk") is None:
        return {name: {} for name in targets}
    turns: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for url, body, master in targets.values():
        wrk(url, body, 1, 16, master)  # connections opened and workers warm before anything counts
    for _ in range(chunks):
        for name, (url, body, master) in targets.items():
            turns[name].append(wrk(url, body, max(1, seconds // chunks), 16, master) or {})
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


def ensure_wrk() -> None:
    """wrk comes from Debian; install it when this is a root shell that can."""
    if shutil.which("wrk") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk", shell=True, check=False
        )


def measure(
    args: argparse.Namespace, tmp: Path, w1: Path, w2: Path, fhir: LocalFhirServer, base: str, sizes: tuple
) -> dict:
    """One round: the service and both floors run side by side (the floors with the same gunicorn command,
    workers and threads), and every comparison with a floor is measured interleaved with it."""
    n1, n2, n3, load_s = sizes
    load_fixtures(base, None, DEFAULT_DIR)
    cold = workloads.cold_bodies(n6)  # a fresh service each round, so its caches start empty each round
    w3 = tmp / "w3.json"
    workloads.write(w3, workloads.hook_body(None, fhir_server=base))
    env = service_env(tmp / "cds.sqlite3", CDS_ALLOW_INSECURE_FHIR_HTTP="true", CDS_ALLOWED_FHIR_SERVERS=base)
    minimal = {}
    for name, encounter in (("MIN", None), ("MIN+enc", "enc-min")):
        minimal[name] = tmp / f"{name}.json"
        workloads.write(minimal[name], workloads.minimal_order_select(encounter))
    results: dict[str, dict] = {}
    ports = {who: free_port() for who in ("service", "floor", "stdlib")}
    with ExitStack() as running:
        svc = running.enter_context(
            server(gunicorn_command("127.0.0.1", ports["service"], args.workers), env, ports["service"])
        )
        url = f"http://127.0.0.1:{ports['service']}{SERVICE_PATH}"
        select_url = f"http://127.0.0.1:{ports['service']}/cds-services/lbp-order-select"
        answer = first_answer(url, w1, tmp / "answer.json")
        floors = {
            who: start_floor(running, ports[who], answer, args.workers, parser=who_parser)
            for who, who_parser in (("floor", "orjson"), ("stdlib", "stdlib"))
        }
        floor_url = f"http://127.0.0.1:{ports['floor']}{SERVICE_PATH}"
        stdlib_url = f"http://127.0.0.1:{ports['stdlib']}{SERVICE_PATH}"
        flr, std = floors["floor"].pid, floors["stdlib"].pid

        def body(path: Path) -> list[bytes]:
            return [path.read_bytes()]

        for w, path, n in (("W1", w1, n1), ("W2", w2, n2)):
            results |= interleaved(
                {
                    f"{w} service": Target(url, body(path), svc.pid),
                    f"{w} floor": Target(floor_url, body(path), flr),
                    f"{w} stdlib floor": Target(stdlib_url, body(path), std),
                },
                n,
                block=20 if w == "W1" else 4,
            )
        results |= interleaved(
            {"W6 service": Target(url, cold, svc.pid, warm_up=False), "W6 floor": Target(floor_url, body(w1), flr)},
            n6,
        )
        results |= interleaved(
            {
                "MIN service": Target(select_url, body(minimal["MIN"]), svc.pid),
                "MIN+enc service": Target(select_url, body(minimal["MIN+enc"]), svc.pid),
                "MIN floor": Target(floor_url, body(minimal["MIN"]), flr),
            },
            n1,
        )
        results |= wrk_interleaved({"W4 service": (url, w1, svc.pid), "W4 floor": (floor_url, w1, flr)}, load_s)
        results |= wrk_interleaved(
            {
                "MIN wrk": (select_url, minimal["MIN"], svc.pid),
                "MIN+enc wrk": (select_url, minimal["MIN+enc"], svc.pid),
                "MIN floor wrk": (floor_url, minimal["MIN"], flr),
            },
            load_s,
        )
        results["W3 service"], results["W3 chain"] = no_prefetch(url, w3.read_bytes(), n3, fhir)
        results["W5 first"], results["W5 last"] = history(  # last: it fills the card log
            url, w1.read_bytes(), n5, svc.pid, Target(floor_url, body(w1), flr)
        )
    # With the servers stopped, so that nothing else runs beside it on this machine's two cores.
    results["MIN in process"] = {"cpu_ms": in_process.pipeline_ms(json.loads(minimal["MIN"].read_bytes()),
                                                                   "lbp-order-select", n1)}  # fmt: skip
    validation, resources = in_process.validation_ms(cold)
    results["W6 validation"] = {"cpu_ms": validation, "resources": resources}
    return results


def history(url: str, body: bytes, n: int, master: int, floor: Target) -> tuple[dict[str, float], dict[str, float]]:
    """W5: `n` calls on one encounter and patient (the draft order varies over 50 ids), feedback on every
    100th card; the throughput and CPU of the first and of the last fifth, to show whether cost grows.

    First and last fifth are minutes apart, and this VM's speed moves between minutes: 20 floor calls after
    every 100 service calls give each fifth its own floor, and the CPU ratio to it cancels that drift."""
    session, floor_session = requests.Session(), requests.Session()
    floor_pids = workers(floor.master)
    template = json.loads(body)
    template["context"]["encounterId"] = "enc-history"
    feedback_url = url + "/feedback"
    pids = workers(master)
    fifth = max(1, n // 5)
    marks: dict[str, dict[str, float]] = {}
    floor_cpu, floor_calls = 0.0, 0
    for i in range(n):
        if i in (0, n - fifth):
            start, cpu = time.perf_counter(), cpu_seconds(pids)
            floor_cpu, floor_calls, floor_time = 0.0, 0, 0.0
        if i % 100 == 0:
            before, paused = cpu_seconds(floor_pids), time.perf_counter()
            for _ in range(20):
                answer = floor_session.post(
                    floor.url, data=floor.bodies[0], headers={"Content-Type": "application/json"}
                )
                assert answer.status_code == 200
            floor_cpu, floor_calls = floor_cpu + cpu_seconds(floor_pids) - before, floor_calls + 20
            floor_time += time.perf_counter() - paused
        template["context"]["draftOrders"]["entry"][0]["resource"]["id"] = f"mri-{i % 50}"
        response = session.post(
            url, data=json.dumps(template), headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code == 200, response.text[:300]
        cards = response.json()["cards"]
        if i % 100 == 0 and cards:
            item = {"card": cards[0]["uuid"], "outcome": "overridden",
                    "outcomeTimestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}  # fmt: skip
            session.post(feedback_url, json={"feedback": [item]}, timeout=30)
        if i in (fifth - 1, n - 1):
            calls = fifth
            cpu_ms = (cpu_seconds(pids) - cpu) / calls * 1000
            marks["first" if i == fifth - 1 else "last"] = {
                "rps": calls / (time.perf_counter() - start - floor_time),
                "cpu_ms": cpu_ms,
                "vs_floor": cpu_ms / (floor_cpu / floor_calls * 1000) if floor_cpu else float("nan"),
            }
    return marks["first"], marks["last"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter load (a smoke run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds",
        type=int,
        help="measure everything this many times (3; 1 with --quick); each figure printed is the median over "
        "rounds, and the spread of the CPU ratios is printed after the table (this VM's noise is large)",
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    n1, n2, n3, load_s = (60, 8, 5, 3) if args.quick else (400, 40, 20, 15)
    global n5, n6
    n5, n6 = (500, 60) if args.quick else (10_000, 600)
    ensure_wrk()

    tmp = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    w1 = tmp / "w1.json"
    w2 = tmp / "w2.json"
    size1 = workloads.write(w1, workloads.hook_body(workloads.typical_patient()))
    size2 = workloads.write(w2, workloads.hook_body(workloads.large_patient()))

    delay_ms = 100
    fhir = LocalFhirServer(delay_ms=delay_ms)
    base = fhir.start()
    try:
        measured = []
        for n in range(rounds):
            folder = tmp / f"round-{n + 1}"  # a fresh database each round: W5 compares within one round
            folder.mkdir()
            measured.append(measure(args, folder, w1, w2, fhir, base, (n1, n2, n3, load_s)))
    finally:
        fhir.stop()
    print(report(median_of(measured), size1, size2, delay_ms, args.workers))
    if rounds > 1:
        print(spread(measured))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def no_prefetch(url: str, body: bytes, n: int, fhir: LocalFhirServer) -> tuple[dict[str, float], dict[str, float]]:
    """Each call against the slowest chain of FHIR requests it caused (one request per query here: no pages).

    The FHIR server logs every request with its start and end; the requests of one call are those logged
    while it ran (calls are sequential). With concurrent fetches a call should take about its slowest
    request; fetched one after another it would take their sum.
    """
    session = requests.Session()
    session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    time.sleep(0.2)
    e2e, chains, sums, per_call, in_flight = [], [], [], [], []
    for _ in range(n):
        before = len(fhir.requests)
        t = time.perf_counter()
        response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        e2e.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.text[:300]
        time.sleep(0.05)  # let the server's log line arrive
        log = [r for r in fhir.requests[before:] if r.get("event") == "request"]
        durations = [r["ended"] - r["started"] for r in log]
        chains.append(max(durations))
        sums.append(sum(durations))
        per_call.append(len(log))
        in_flight.append(max(sum(1 for r in log if r["started"] <= q["started"] < r["ended"]) for q in log))
    latency = {"p50": percentile(e2e, 50), "p95": percentile(e2e, 95), "p99": percentile(e2e, 99)}
    ratios = [a / b for a, b in zip(e2e, chains, strict=True)]
    chain = {
        "requests_per_call": statistics.median(per_call),
        "max_in_flight": max(in_flight),
        "chain_p50": percentile(chains, 50),
        "serial_p50": percentile(sums, 50),
        "ratio_p50": percentile(ratios, 50),
        "ratio_max": max(ratios),
    }
    return latency, chain


# Each CPU comparison with a floor: (label, service workload, floor workload), measured in the same round.
CPU_PAIRS = (
    ("W1", "W1 service", "W1 floor"), ("W1 stdlib", "W1 service", "W1 stdlib floor"),
    ("W2", "W2 service", "W2 floor"), ("W2 stdlib", "W2 service", "W2 stdlib floor"),
    ("W6", "W6 service", "W6 floor"), ("MIN", "MIN service", "MIN floor"), ("MIN+enc", "MIN+enc service", "MIN floor"),
    ("W4 load", "W4 service", "W4 floor"), ("MIN load", "MIN wrk", "MIN floor wrk"),
    ("MIN+enc load", "MIN+enc wrk", "MIN floor wrk"),
)  # fmt: skip


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


def report(r: dict[str, dict], size1: int, size2: int, delay_ms: int, n_workers: int) -> str:
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
        f"W6 cold ({n6} distinct patients, each once): {w6['cpu_ms']:.2f} ms CPU/req, p50 {w6['p50']:.2f} ms, p99 {w6['p99']:.2f} ms, "
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
    lines.append(
        f"In process, no HTTP: MIN's hook pipeline alone {r['MIN in process']['cpu_ms']:.2f} ms CPU/call (the whole "
        f"call's target is 0.7); W6's fhir.resources validation alone {r['W6 validation']['cpu_ms']:.2f} ms CPU/call "
        f"({r['W6 validation']['resources']:.1f} resources per call; the W6 floor is {r['W6 floor']['cpu_ms']:.2f})"
    )
    first, last = r["W5 first"], r["W5 last"]
    lines.append(
        f"W5 history (one encounter, {n5} calls): first fifth {first['rps']:.0f} req/s, {first['cpu_ms']:.2f} ms CPU/req; "
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


if __name__ == "__main__":
    sys.exit(main())
