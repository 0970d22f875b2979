"""Session-wide browser fixtures: one ``onsite serve`` without keys (``browser_server``), one with
an operator's and an admin's key (``browser_server_keys``, started only when a test asks for it,
on a copy of the first one's index), and one headless chromium (``browser``). Helpers are in
tests/ui/browser.py. Nothing here starts unless a browser test runs.
"""

from __future__ import annotations

import pytest

from tests.ui.browser import API_KEYS, CHROMIUM, copy_index, onsite_server, sync_playwright
from tools.inspection.sample_product import SAMPLE_PRODUCT


@pytest.fixture(scope="session")
def browser_server(tmp_path_factory, sample_index):
    """The sample site as a fresh ``make run`` leaves it: open (no keys), extractive mode, the
    sample product learned by the server's first start. {"url", "home", "log", "photo"} (the
    sample photo with a stain, which the sample product flags). The sample index is copied in:
    the one ``onsite serve`` would build, made once per session by ``sample_index``."""
    home = tmp_path_factory.mktemp("onsite-home")
    copy_index(sample_index[0].parent, home)  # built once per session (tests/conftest.py)
    with onsite_server(home) as server:
        photo = home / "inspection" / "samples" / f"{SAMPLE_PRODUCT}-spot.png"
        assert photo.is_file(), f"the first start kept no sample photos:\n{server['log'].read_text()[-2000:]}"
        yield {**server, "photo": photo}


@pytest.fixture(scope="session")
def browser_server_keys(tmp_path_factory, browser_server):
    """The same site with sign-in: ONSITE_API_KEYS holds an operator (floor-tablet) and an admin
    (ops-console) key (tests.ui.browser.OPERATOR_KEY / ADMIN_KEY)."""
    home = tmp_path_factory.mktemp("onsite-home-keys")
    copy_index(browser_server["home"], home)
    with onsite_server(home, ONSITE_API_KEYS=API_KEYS) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None or sync_playwright is None:
        pytest.skip("chromium or playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()
