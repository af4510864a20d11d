"""The benchmark's figures mean what they say: ratios pair what was measured together, and the in-process
reference lines measure what they name."""

from __future__ import annotations

from cds_service.fhir import validation as rec
from cds_service.settings import Settings
from cds_service.web.app import create_app


def test_the_validation_line_validates_the_prefetched_resources_the_service_validates(monkeypatch, tmp_path):
    from bench import in_process, workloads

    bodies = workloads.cold_bodies(3)
    validated: list[str] = []
    real = rec._problems
    monkeypatch.setattr(rec, "_VERDICTS", rec.Remembered(rec.VERDICT_CACHE_SIZE))  # nothing remembered yet
    monkeypatch.setattr(rec, "_problems", lambda resource: validated.append(resource["id"]) or real(resource))
    app = create_app(Settings(auth_required=False, database_url=f"sqlite:///{tmp_path / 'cds.sqlite3'}"))
    client = app.test_client()
    for body in bodies:
        assert (
            client.post("/cds-services/lbp-order-sign", data=body, content_type="application/json").status_code == 200
        )
    app.extensions["cds"].retention.stop()

    # Each body's draft names its own patient once filled in, so each is validated: 3 drafts.
    assert validated.count("draft-lumbar-mri") == len(bodies)
    assert len(validated) > 2 * len(bodies)  # and each cold patient brings resources of its own

    _, per_call = in_process.validation_ms(bodies)
    assert per_call == len(validated) / len(bodies)


def test_a_cpu_ratio_to_the_floor_is_the_median_of_each_rounds_own_ratio():
    from bench.report import spread
    from bench.stats import median_of

    history = {"W5 first": {"rps": 100.0, "vs_floor": 2.0}, "W5 last": {"rps": 100.0, "vs_floor": 2.0}}
    rounds = [
        {"W1 service": {"cpu_ms": s}, "W1 floor": {"cpu_ms": f}, **history}
        for s, f in ((2.0, 1.0), (4.0, 1.0), (3.0, 3.0))
    ]
    merged = median_of(rounds)
    # Rounds' own ratios 2, 4 and 1: median 2. The ratio of the medians (3 / 1) would pair different rounds.
    assert merged["W1 service"]["cpu vs W1 floor"] == 2.0
    assert merged["W1 service"]["cpu_ms"] == 3.0 and merged["W1 floor"]["cpu_ms"] == 1.0
    assert "W1           2.00x  4.00x  1.00x" in spread(rounds)
