"""Shared fixtures of the site-tool tests: the sample site profile and an empty sensor store."""

from pathlib import Path

import pytest

from tools.sensors.store import SensorStore
from tools.site import load_site_profile

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"


@pytest.fixture(scope="session")
def site():
    return load_site_profile(SAMPLE)


@pytest.fixture
def store(tmp_path):
    s = SensorStore(tmp_path / "sensors.sqlite")
    yield s
    s.close()
