"""Fixtures of the advice tests: the sample site and a real sensor store."""

from __future__ import annotations

import pytest

from tools.sensors.store import SensorStore
from tools.site import SiteProfile, load_site_profile

from .days import SAMPLE_PROFILE


@pytest.fixture(scope="session")
def site() -> SiteProfile:
    return load_site_profile(SAMPLE_PROFILE)


@pytest.fixture
def store(tmp_path):
    s = SensorStore(tmp_path / "sensors.sqlite")
    yield s
    s.close()
