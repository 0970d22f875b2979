"""The onsite CLI on a real (small) index."""

import json

import pytest
from pathlib import Path

from typer.testing import CliRunner

from assistant.cli import app
from tests.knowledge.conftest_index import write_corpus

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "retrieval_small"


def _env(tmp_path):
    return {"ONSITE_HOME": str(tmp_path / "home"), "ONSITE_EMBEDDING__MODEL": "fake:64"}


def test_build_search_status_rollback(tmp_path):
    runner = CliRunner()
    docs = write_corpus(tmp_path)
    (docs / "manuals" / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    env = _env(tmp_path)
    out = runner.invoke(app, ["index", "build", str(docs)], env=env)
    assert out.exit_code == 0, out.output
    assert "published v000001: 3 documents" in out.output and "broken.pdf" in out.output

    out = runner.invoke(app, ["search", "oxygen 氧含量 有限空间", "--kind", "regulation", "--json"], env=env)
    hits = json.loads(out.output)
    assert hits[0]["title"].endswith("第六条") and hits[0]["metadata"]["kind"] == "regulation"
    assert {"bm25", "dense", "fused"} <= set(hits[0]["scores"])

    out = runner.invoke(app, ["search", "bearing grease"], env=env)
    assert "Pump P-101 manual > Maintenance" in out.output and "pump.md" in out.output

    status = json.loads(runner.invoke(app, ["index", "status", "--json"], env=env).output)
    assert status["live"] == "v000001" and len(status["documents"]) == 3
    assert status["failures"][0]["source"].endswith("broken.pdf")

    (docs / "crops" / "tomato.md").unlink()
    assert runner.invoke(app, ["index", "build"], env=env).exit_code == 0
    out = runner.invoke(app, ["index", "rollback"], env=env)
    assert out.exit_code == 0 and "v000001" in out.output


def test_errors_are_one_readable_line(tmp_path):
    out = CliRunner().invoke(app, ["search", "anything"], env=_env(tmp_path))
    assert out.exit_code == 1 and "no index has been built yet" in out.output
    out = CliRunner().invoke(app, ["eval", "retrieval", str(tmp_path)], env=_env(tmp_path))
    assert out.exit_code == 1 and "corpus.jsonl is missing" in out.output


def test_eval_retrieval_json_has_the_documented_keys(tmp_path):
    out = CliRunner().invoke(app, ["eval", "retrieval", str(FIXTURE), "--json"], env=_env(tmp_path))
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert {"recall@1", "recall@5", "recall@10", "mrr@10", "latency_ms", "index_seconds", "queries"} <= set(result)
    assert set(result["latency_ms"]) == {"p50", "p95"} and result["queries"] == 27
    assert 0 < result["recall@1"] <= result["recall@5"] <= result["recall@10"] <= 1


def test_a_settings_typo_is_reported_in_one_line_naming_the_key(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from assistant.cli import settings_error
    from assistant.settings import Settings

    cfg = tmp_path / "onsite.toml"
    cfg.write_text("[retrieval]\ntop_kk = 3\n")
    monkeypatch.setenv("ONSITE_CONFIG", str(cfg))
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = settings_error(caught.value)
    assert "retrieval.top_kk: Extra inputs are not permitted" in message and str(cfg) in message


@pytest.mark.parametrize("args, names", [
    (["ask", "how warm is it?", "--zone", "GH-9"], ["--zone", "GH-9", "GH-1, GH-2, PH-1"]),
    (["ask", "how warm is it?", "--asset", "P-999"], ["--asset", "P-999", "P-101, T-101"]),
    (["run", "--zone", "GH-9"], ["GH-1, GH-2, PH-1"]),
    (["run", "--asset", "P-999"], ["P-101, T-101"]),
    (["search", "pump", "--kind", "manuals"], ["manuals", "regulation, manual, crop, other"]),
    (["search", "pump", "--asset", "P-999"], ["P-101, T-101"]),
    (["search", "pump", "--crop", "cucumber"], ["tomato"]),
])
def test_unknown_names_exit_2_with_the_valid_ones_on_stderr(tmp_path, args, names):
    """Refused before any index or model is touched (none exists in this home): exit 2, not an
    "I don't know" or "no evidence found" with exit 0."""
    out = CliRunner().invoke(app, args, env=_env(tmp_path))
    assert out.exit_code == 2, out.output
    assert out.stdout == "" and all(n in out.stderr for n in names), out.stderr
    assert not (tmp_path / "home" / "index").exists()


def test_aliases_and_case_are_accepted_as_the_site_ids(tmp_path):
    from assistant.scope_check import check_scope
    from assistant.settings import Settings
    from tools.site import load_site_profile

    site = load_site_profile(Settings(home=tmp_path).site_profile)
    assert check_scope({"zone": "温室1号", "asset": "irrigation pump", "crop": "Tomato"}, site) == {
        "zone": "GH-1", "asset": "P-101", "crop": "tomato"}
    assert check_scope({"zone": "gh-2"}, site, prefix="--") == {"zone": "GH-2"}


def test_model_status_prints_the_whole_model_notice(tmp_path):
    """The page shows a one-line badge; the details live here: path, URL, SHA-256, size and why."""
    out = CliRunner().invoke(app, ["model", "status"], env={**_env(tmp_path), "ONSITE_LLM__BACKEND": "llamacpp", "ONSITE_LLM__MODEL": None})
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert str(tmp_path / "home" / "models") in text and "present: False" in text
    assert "https://" in text and ".gguf" in text and " bytes" in text and "not found" in text
    assert any(len(word) == 64 and all(ch in "0123456789abcdef" for ch in word) for word in text.split())
