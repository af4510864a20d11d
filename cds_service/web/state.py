"""What one application holds for its requests, typed: built once by create_app, read by the routes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask

from cds_service.cds_hooks.protocol import CdsService
from cds_service.domain.clock import Clock
from cds_service.pipeline.hook_pipeline import HookPipeline
from cds_service.security.trust import Verifier
from cds_service.settings import Settings
from cds_service.storage.retention import RetentionJob
from cds_service.storage.store import Store

EXTENSION = "cds"  # its key in Flask's app.extensions


@dataclass(frozen=True)
class ServiceState:
    settings: Settings
    services: Mapping[str, CdsService]
    pipeline: HookPipeline
    store: Store
    retention: RetentionJob
    verifier: Verifier | None  # None with authentication off
    clock: Clock


def state_of(app: Flask) -> ServiceState:
    state = app.extensions[EXTENSION]
    if not isinstance(state, ServiceState):
        raise TypeError(f"app.extensions[{EXTENSION!r}] is not the service's state")
    return state
