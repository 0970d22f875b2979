"""Session fixtures shared across test packages."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory) -> tuple[Path, object]:
    """The bundled sample knowledge indexed once per session with the real offline embedder (the
    one ``onsite serve`` uses): (index folder, embedder). The agent tests read it; the browser
    tests' server starts on a copy of it instead of building it again (~40 s on 2 cores)."""
    from assistant.settings import Settings
    from knowledge.builder import build_index
    from knowledge.embedding import make_embedder

    home = tmp_path_factory.mktemp("sample-home")
    settings = Settings(home=home)
    embedder = make_embedder(settings.embedding, home)
    build_index([settings.samples_dir], settings, embedder=embedder)
    return home / "index", embedder
