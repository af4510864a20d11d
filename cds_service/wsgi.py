"""WSGI entry point for gunicorn: ``gunicorn 'cds_service.wsgi:app'``. Settings come from the environment."""

import gc

from .app import create_app

app = create_app()

# The garbage collector, tuned for a worker that answers many short calls (issue 17). Start-up leaves a large
# heap that lives as long as the worker (knowledge, value sets, models); frozen, the collector stops walking it
# on every full collection. A call allocates a few thousand containers and almost never a cycle, so the
# youngest generation is collected after 10,000 allocations instead of 700. Measured with make bench-compare's
# interleaving, W1 at 16 connections: 2.04 -> 1.73 ms CPU per request, p99 110 -> 48 ms; sequential W1 and W6
# 4-5% less CPU; peak RSS per worker 114 -> 110 MB.
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 20, 20)
