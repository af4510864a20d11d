"""Waiting for a server to answer, the one way every start-up in this project does it.

A loaded 2-core machine can take more than a second to answer the first request: a slow answer is
retried like a refused connection until the deadline, and only the deadline fails, with a clear message.
"""

from __future__ import annotations

import subprocess
import time

import requests


class NotReady(RuntimeError):
    pass


def wait_until_ready(url: str, deadline_s: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200; raise NotReady at the deadline or when ``process`` exits."""
    deadline = time.monotonic() + deadline_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise NotReady(f"{url}: the server process exited with status {process.returncode} before answering")
        try:
            response = requests.get(url, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise NotReady(f"{url} did not answer 200 within {deadline_s:.0f} s (last: {last})")
