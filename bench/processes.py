"""What a benchmarked server's processes cost: its gunicorn workers (the master's children), their CPU seconds
from /proc and their peak resident memory. Read from /proc only, with nothing of the service imported, so the
figures mean the same for the service and for its floors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def workers(master: int) -> list[int]:
    """The processes that do a server's work: a forking server's children (gunicorn's workers), or the process
    itself when it has none (a single-process server, such as a Node peer); none for 0 (a peer whose process
    could not be found: its latency is measured, not its CPU)."""
    if master <= 0:
        return []
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()] or [master]


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
