"""One round of `make bench`: the service and both floors started side by side, every workload of the round's
suite measured as its `Workload` says (each comparison with a floor interleaved with it), then, with the servers
stopped, the two in-process reference lines. Also the two measurements only one workload uses: W3's calls
against the FHIR requests they caused, and W5's first fifth of a long history against its last."""

from __future__ import annotations

import json
import statistics
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import requests

from cds_service.devtools.fixtures import DEFAULT_DIR
from cds_service.devtools.local_fhir import LocalFhirServer
from cds_service.web.cli import gunicorn_command, load_fixtures

from . import in_process, workloads
from .peer import Peer
from .processes import cpu_seconds, workers
from .servers import SERVICE_PATH, first_answer, free_port, server, service_env, start_floor
from .stats import Target, interleaved, percentile
from .workloads import Sizes, Workload
from .wrk import wrk_interleaved


def measure(
    n_workers: int,
    tmp: Path,
    w1: Path,
    w2: Path,
    fhir: LocalFhirServer,
    base: str,
    sizes: Sizes,
    peer: Peer | None = None,
) -> dict:
    """One round: the service and both floors run side by side (the floors with the same gunicorn command,
    workers and threads), and every comparison with a floor is measured interleaved with it; the peer, when
    named, with MIN on its own request body."""
    load_fixtures(base, None, DEFAULT_DIR)
    s = workloads.suite(tmp, sizes, w1, w2, base)
    env = service_env(tmp / "cds.sqlite3", CDS_ALLOW_INSECURE_FHIR_HTTP="true", CDS_ALLOWED_FHIR_SERVERS=base)
    minimal, with_encounter = s.minimal.files
    results: dict[str, dict] = {}
    ports = {who: free_port() for who in ("service", "floor", "stdlib")}
    with ExitStack() as running:
        svc = running.enter_context(
            server(gunicorn_command("127.0.0.1", ports["service"], n_workers), env, ports["service"])
        )
        url = f"http://127.0.0.1:{ports['service']}{SERVICE_PATH}"
        select_url = f"http://127.0.0.1:{ports['service']}/cds-services/lbp-order-select"
        answer = first_answer(url, w1, tmp / "answer.json")
        floors = {
            who: start_floor(running, ports[who], answer, n_workers, parser=who_parser)
            for who, who_parser in (("floor", "orjson"), ("stdlib", "stdlib"))
        }
        floor_url = f"http://127.0.0.1:{ports['floor']}{SERVICE_PATH}"
        stdlib_url = f"http://127.0.0.1:{ports['stdlib']}{SERVICE_PATH}"
        flr, std = floors["floor"].pid, floors["stdlib"].pid

        for w in (s.w1, s.w2):
            results |= interleaved(
                {
                    f"{w.name} service": Target(url, w.bodies(), svc.pid),
                    f"{w.name} floor": Target(floor_url, w.bodies(), flr),
                    f"{w.name} stdlib floor": Target(stdlib_url, w.bodies(), std),
                },
                w.calls,
                block=w.block,
            )
        results |= interleaved(
            {
                "W6 service": Target(url, s.w6.bodies(), svc.pid, warm_up=s.w6.warm_up),
                "W6 floor": Target(floor_url, s.w1.bodies(), flr),
            },
            s.w6.calls,
            block=s.w6.block,
        )
        peer_target = {"MIN peer": Target(peer.url, [peer.body.read_bytes()], peer.pid or 0)} if peer else {}
        results |= interleaved(
            {
                "MIN service": Target(select_url, [minimal.read_bytes()], svc.pid),
                "MIN+enc service": Target(select_url, [with_encounter.read_bytes()], svc.pid),
                "MIN floor": Target(floor_url, [minimal.read_bytes()], flr),
                **peer_target,
            },
            s.minimal.calls,
            block=s.minimal.block,
        )
        w4_body = s.w4.files[0]
        results |= wrk_interleaved(
            {"W4 service": (url, w4_body, svc.pid), "W4 floor": (floor_url, w4_body, flr)}, s.w4.seconds
        )
        results |= wrk_interleaved(
            {
                "MIN wrk": (select_url, minimal, svc.pid),
                "MIN+enc wrk": (select_url, with_encounter, svc.pid),
                "MIN floor wrk": (floor_url, minimal, flr),
                **({"MIN peer wrk": (peer.url, peer.body, peer.pid or 0)} if peer else {}),
            },
            s.minimal_load.seconds,
        )
        results["W3 service"], results["W3 chain"] = no_prefetch(url, s.w3, fhir)
        results["W5 first"], results["W5 last"] = history(  # last: it fills the card log
            url, s.w5, svc.pid, Target(floor_url, s.w5.bodies(), flr)
        )
    # With the servers stopped, so that nothing else runs beside it on this machine's two cores.
    results["MIN in process"] = {"cpu_ms": in_process.pipeline_ms(json.loads(minimal.read_bytes()),
                                                                   "lbp-order-select", s.minimal.calls)}  # fmt: skip
    validation, resources = in_process.validation_ms(s.w6.bodies())
    results["W6 validation"] = {"cpu_ms": validation, "resources": resources}
    return results


def history(url: str, w: Workload, master: int, floor: Target) -> tuple[dict[str, float], dict[str, float]]:
    """W5: `w.calls` calls on one encounter and patient (the draft order varies over 50 ids), feedback on every
    100th card; the throughput and CPU of the first and of the last fifth, to show whether cost grows.

    First and last fifth are minutes apart, and this VM's speed moves between minutes: 20 floor calls after
    every 100 service calls give each fifth its own floor, and the CPU ratio to it cancels that drift."""
    n = w.calls
    session, floor_session = requests.Session(), requests.Session()
    floor_pids = workers(floor.master)
    template = json.loads(w.files[0].read_bytes())
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


def no_prefetch(url: str, w: Workload, fhir: LocalFhirServer) -> tuple[dict[str, float], dict[str, float]]:
    """Each call against the slowest chain of FHIR requests it caused (one request per query here: no pages).

    The FHIR server logs every request with its start and end; the requests of one call are those logged
    while it ran (calls are sequential). With concurrent fetches a call should take about its slowest
    request; fetched one after another it would take their sum.
    """
    body = w.files[0].read_bytes()
    session = requests.Session()
    session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    time.sleep(0.2)
    e2e, chains, sums, per_call, in_flight = [], [], [], [], []
    for _ in range(w.calls):
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
