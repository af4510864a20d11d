"""make soak: mixed calls at 8 connections against the production command for N minutes (10 by default),
printing per minute the throughput, the workers' RSS and the database size, and counting any answer that is
not 200. Not part of make test; the numbers are whatever this machine gives in this run.

Mix per connection, in turn: order-sign for 300 distinct W1-shaped patients (each with its own encounter),
order-select of the sandbox's minimal shape, patient-view, and feedback overriding every tenth card.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from cds_service.web.cli import gunicorn_command

from . import workloads
from .processes import workers
from .servers import free_port, server


def rss_mb(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out.append(int(line.split()[1]) / 1024)
    return out


def db_size_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return total / 1024 / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cds-soak-"))
    database = tmp / "cds.sqlite3"
    bodies = workloads.cold_bodies(300)
    minimal = json.dumps(workloads.minimal_order_select("enc-soak")).encode()
    view = json.loads(bodies[0])
    view["hook"] = "patient-view"
    view["context"] = {"userId": "Practitioner/bench", "patientId": view["context"]["patientId"]}
    view_body = json.dumps(view).encode()
    port = free_port()
    env = {"CDS_AUTH_REQUIRED": "false", "CDS_DATABASE_URL": f"sqlite:///{database}", "CDS_LOG_LEVEL": "WARNING"}
    base = f"http://127.0.0.1:{port}/cds-services"
    counts = {"ok": 0, "not_ok": 0}
    lock = threading.Lock()
    stop = time.monotonic() + args.minutes * 60

    def client(n: int) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        i = n
        while time.monotonic() < stop:
            i += args.connections
            kind = i % 4
            try:
                if kind == 0:
                    body = json.loads(bodies[i % len(bodies)])
                    body["hookInstance"] = str(uuid.uuid4())
                    body["context"]["encounterId"] = f"enc-{i % 1000}"
                    r = session.post(f"{base}/lbp-order-sign", data=json.dumps(body), headers=headers, timeout=30)
                    cards = r.json().get("cards", []) if r.ok else []
                    if cards and i % 40 == 0:
                        fb = {"feedback": [{"card": cards[0]["uuid"], "outcome": "overridden",
                                            "outcomeTimestamp": "2026-11-27T10:00:00Z"}]}  # fmt: skip
                        session.post(f"{base}/lbp-order-sign/feedback", json=fb, timeout=30)
                elif kind == 1:
                    r = session.post(f"{base}/lbp-order-select", data=minimal, headers=headers, timeout=30)
                else:
                    r = session.post(f"{base}/lbp-patient-view", data=view_body, headers=headers, timeout=30)
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                counts["ok" if ok else "not_ok"] += 1

    with server(gunicorn_command("127.0.0.1", port, args.workers), env, port) as master:
        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.connections)]
        for t in threads:
            t.start()
        print(
            f"soak: {args.minutes:g} min, {args.connections} connections, {args.workers} workers, SQLite at {database}"
        )
        print(f"{'minute':>6} {'calls/s':>8} {'errors':>6} {'worker RSS MB':>22} {'database MB':>11}")
        minute, last = 0, 0
        while any(t.is_alive() for t in threads):
            time.sleep(min(60.0, max(0.1, stop - time.monotonic())))
            minute += 1
            with lock:
                done, errors = counts["ok"] + counts["not_ok"], counts["not_ok"]
            rss = ", ".join(f"{m:.0f}" for m in rss_mb(workers(master.pid)))
            print(
                f"{minute:>6} {(done - last) / 60:>8.1f} {errors:>6} {rss:>22} {db_size_mb(database):>11.1f}",
                flush=True,
            )
            last = done
            if time.monotonic() >= stop:
                break
        for t in threads:
            t.join(timeout=35)
    with sqlite3.connect(database) as db:
        logged = db.execute("select count(*) from card_log").fetchone()[0]
    print(f"total calls {counts['ok'] + counts['not_ok']}, not 200: {counts['not_ok']}, cards logged {logged}")
    return 0 if counts["not_ok"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
