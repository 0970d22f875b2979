"""`onsite bench coldstart` (slow: real `onsite serve`, `search`, `ask` and `--help` processes, with
the fake embedder so the sample index builds in seconds)."""

from __future__ import annotations

import json

import pytest

from evals.coldstart import run_coldstart


@pytest.mark.slow
def test_a_real_coldstart_run(monkeypatch, tmp_path):
    monkeypatch.setenv("ONSITE_EMBEDDING__MODEL", "fake")
    r = run_coldstart(repeat=1)
    m = r["median"]
    for name in ("baseline_python_s", "help_s", "first_line_s", "serving_s", "first_answer_s", "second_answer_s",
                 "search_s", "ask_s"):
        assert m[name] is not None and m[name] > 0, name
    assert m["first_line_s"] < m["serving_s"] and m["baseline_python_s"] < m["help_s"]
    assert r["samples"]["serving_s"] and r["source"]["copied"] is False and r["source"]["index_build_s"] > 0
    assert set(r["target"]) == {"first_answer_s", "met"}
    json.dumps(r)


def test_a_home_without_an_index_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no built index"):
        run_coldstart(home=tmp_path / "empty", repeat=1)
