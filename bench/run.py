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
import shutil
import sys
import tempfile
from pathlib import Path

from cds_service.devtools.local_fhir import LocalFhirServer

from . import workloads
from .peer import from_settings
from .report import report, spread
from .rounds import measure
from .stats import median_of
from .wrk import ensure_wrk


# One round is bench.rounds.measure; the figures are merged by bench.stats and printed by bench.report.
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
    parser.add_argument("--peer-url", help="an external CDS service's hook URL, measured beside MIN (or PEER_URL)")
    parser.add_argument("--peer-body", help="the request body its own client sends, a file (or PEER_BODY)")
    parser.add_argument("--peer-pid", help="the peer's process, when `ss` cannot find it (or PEER_PID)")
    args = parser.parse_args()
    peer = from_settings(args.peer_url, args.peer_body, args.peer_pid)
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = workloads.QUICK if args.quick else workloads.Sizes()
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
            measured.append(measure(args.workers, folder, w1, w2, fhir, base, sizes, peer))
    finally:
        fhir.stop()
    print(
        report(
            median_of(measured),
            size1,
            size2,
            delay_ms,
            args.workers,
            history_calls=sizes.history_calls,
            cold_patients=sizes.cold_calls,
        )
    )
    if rounds > 1:
        print(spread(measured))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
