"""Print the mutation score of the last `mutmut run` and every surviving mutant with its diff.

Run by `make mutation` after mutmut; reads mutmut's own CI/CD stats export and its `results`/`show`
commands, so the numbers are mutmut's, not ours. Exit status 1 when the score is under the floor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FLOOR = 90.0
MUTMUT = str(Path(sys.executable).with_name("mutmut"))


def main() -> int:
    subprocess.run([MUTMUT, "export-cicd-stats"], check=True, capture_output=True)
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    tested = stats["total"] - stats.get("skipped", 0) - stats.get("not_checked", 0)
    killed = stats["killed"] + stats.get("timeout", 0)
    score = 100.0 * killed / tested if tested else 0.0
    results = subprocess.run([MUTMUT, "results"], check=True, capture_output=True, text=True).stdout
    survivors = [line.split(":")[0].strip() for line in results.splitlines() if line.strip().endswith("survived")]
    for name in survivors:
        diff = subprocess.run([MUTMUT, "show", name], capture_output=True, text=True).stdout
        changed = [line for line in diff.splitlines() if line[:2] in {"- ", "+ "}]
        print(f"survived: {name}")
        print("\n".join(f"    {line}" for line in changed))
    print(
        f"\nmutation score: {score:.1f}% ({killed} of {tested} mutants killed, {len(survivors)} survived; "
        f"floor {FLOOR:.0f}%)"
    )
    return 0 if score >= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
