"""`python -m bench.compare REV`: this checkout against another revision, served side by side, same run.

A speed change is judged against the code before it, measured in the same minutes: this VM's speed moves
too much between runs for figures from two runs to be compared. The other revision is checked out into a
temporary git worktree and served with this checkout's virtualenv; both services and the orjson floor run
at once and are measured interleaved (bench.stats.interleaved), on W1, MIN, W6 (each body once) and under wrk.
Prints CPU per request and p50 per server; never fails on timing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from cds_service.web.cli import gunicorn_command

from . import workloads
from .servers import SERVICE_PATH, first_answer, free_port, server, service_env, start_floor
from .stats import Target, interleaved
from .wrk import wrk_interleaved

CHECKOUT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev", help="the revision to compare with (e.g. HEAD~3 or a commit id)")
    parser.add_argument("--calls", type=int, default=400, help="sequential calls per server and workload")
    parser.add_argument("--seconds", type=int, default=15, help="wrk seconds per server and workload")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cds-compare-"))
    other = tmp / "other"
    subprocess.run(["git", "-C", str(CHECKOUT), "worktree", "add", "-q", "--detach", str(other), args.rev], check=True)
    try:
        print(compare(other, tmp, args.calls, args.seconds))
    finally:
        subprocess.run(["git", "-C", str(CHECKOUT), "worktree", "remove", "--force", str(other)], check=False)
    return 0


def revision_command(checkout: Path, port: int) -> list[str]:
    """The production command for the revision in `checkout`: before the layered layout its WSGI entry and
    gunicorn settings sat at the package's top level."""
    command = gunicorn_command("127.0.0.1", port, 2)
    if (checkout / "cds_service" / "web" / "wsgi.py").exists():
        return command
    renamed = {"cds_service.web.wsgi:app": "cds_service.wsgi:app"}
    renamed["python:cds_service.web.gunicorn_conf"] = "python:cds_service.gunicorn_conf"
    return [renamed.get(part, part) for part in command]


def compare(other: Path, tmp: Path, calls: int, seconds: int) -> str:
    w1, minimal = tmp / "w1.json", tmp / "min.json"
    workloads.write(w1, workloads.hook_body(workloads.typical_patient()))
    workloads.write(minimal, workloads.minimal_order_select(None))
    cold = workloads.cold_bodies(calls)
    os.chdir(tmp)  # the servers' working directory holds no cds_service: PYTHONPATH alone decides which one loads
    code = {"rev": other, "this": CHECKOUT}
    ports = {who: free_port() for who in ("rev", "this", "floor")}
    with ExitStack() as running:
        pids: dict[str, int] = {}
        for who, path in code.items():
            env = service_env(tmp / f"{who}.sqlite3", PYTHONPATH=str(path))
            command = revision_command(path, ports[who])
            pids[who] = running.enter_context(server(command, env, ports[who])).pid
        sign = {who: f"http://127.0.0.1:{port}{SERVICE_PATH}" for who, port in ports.items()}
        answer = first_answer(sign["this"], w1, tmp / "answer.json")
        pids["floor"] = start_floor(running, ports["floor"], answer, 2, pythonpath=str(CHECKOUT)).pid
        select = {who: f"http://127.0.0.1:{port}/cds-services/lbp-order-select" for who, port in ports.items()}
        select["floor"] = sign["floor"]

        def each(urls: dict[str, str], bodies: list[bytes], warm_up: bool = True) -> dict[str, Target]:
            return {who: Target(urls[who], bodies, pids[who], warm_up) for who in ("rev", "this", "floor")}

        rows = {
            "W1 sequential": interleaved(each(sign, [w1.read_bytes()]), calls),
            "MIN sequential": interleaved(each(select, [minimal.read_bytes()]), calls),
            "W6 each body once": interleaved(
                {
                    "rev": Target(sign["rev"], cold, pids["rev"], warm_up=False),
                    "this": Target(sign["this"], cold, pids["this"], warm_up=False),
                    "floor": Target(sign["floor"], [w1.read_bytes()], pids["floor"]),
                },
                calls,
            ),
            "W1 at 16 connections": wrk_interleaved({w: (sign[w], w1, pids[w]) for w in pids}, seconds),
            "MIN at 16 connections": wrk_interleaved({w: (select[w], minimal, pids[w]) for w in pids}, seconds),
        }
    lines = [
        f"{'workload':<24}{'rev ms CPU':>12}{'this ms CPU':>13}{'change':>9}{'floor':>8}{'p50 rev/this/floor ms':>26}"
    ]
    for name, r in rows.items():
        if not r.get("this"):
            lines.append(f"{name:<24} skipped (wrk is not installed)")
            continue
        change = (r["this"]["cpu_ms"] / r["rev"]["cpu_ms"] - 1) * 100
        p50 = "/".join(f"{r[w]['p50']:.1f}" for w in ("rev", "this", "floor"))
        lines.append(
            f"{name:<24}{r['rev']['cpu_ms']:>12.2f}{r['this']['cpu_ms']:>13.2f}{change:>+8.0f}%"
            f"{r['floor']['cpu_ms']:>8.2f}{p50:>26}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
