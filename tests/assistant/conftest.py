"""Fixtures of the agent tests: the sample knowledge indexed once per session with the real
offline embedder (``sample_index``, tests/conftest.py), and a fresh service per test (own conversations, audit log, sensor and
work-order stores) that reads that index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assistant.llm import LoadedModel
from assistant.settings import Settings


@pytest.fixture
def make_service(sample_index, tmp_path):
    """make_service(model=None, index=None, **settings) → Service; model None = extractive mode."""
    from assistant.wiring import build_services

    made = []

    def make(model=None, index: Path | None = None, simulate_hours: float = 0, faults=(), **overrides):
        home = tmp_path / f"home{len(made)}"
        home.mkdir()
        (home / "index").symlink_to(index or sample_index[0], target_is_directory=True)
        llm = {"backend": "extractive"} if model is None else {}
        settings = Settings(home=home, llm={**llm, **overrides.pop("llm", {})}, **overrides)
        loaded = None if model is None else LoadedModel(model, "llm", "fake")
        service = build_services(settings, loaded=loaded, embedder=sample_index[1])
        if simulate_hours:
            from tools.sensors.simulator import simulate

            simulate(service.site, service.parts.sensor_store, hours=simulate_hours, faults=list(faults), seed=3, speed=1e9,
                     start=datetime.now(UTC) - timedelta(hours=simulate_hours))
        made.append(service)
        return service

    yield make
    for s in made:
        s.close()
