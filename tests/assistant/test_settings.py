import pytest

from pydantic import ValidationError

from assistant.settings import PRESETS, Settings, load_settings


def test_environment_overrides_with_prefix_and_nesting(monkeypatch, tmp_path):
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("ONSITE_RETRIEVAL__TOP_K", "8")
    monkeypatch.setenv("ONSITE_EMBEDDING__LANGUAGES", '["zh","en"]')
    s = Settings()
    assert s.home == tmp_path / "h" and s.index_dir == tmp_path / "h" / "index"
    assert s.retrieval.top_k == 8 and s.embedding.languages == ["zh", "en"]


def test_toml_file_is_read_and_env_wins_over_it(monkeypatch, tmp_path):
    cfg = tmp_path / "onsite.toml"
    cfg.write_text('[retrieval]\ntop_k = 7\ndense_weight = 0.3\n[chunking]\nmax_tokens = 120\n')
    monkeypatch.setenv("ONSITE_CONFIG", str(cfg))
    monkeypatch.setenv("ONSITE_RETRIEVAL__TOP_K", "9")
    s = Settings()
    assert s.retrieval.top_k == 9 and s.retrieval.dense_weight == 0.3 and s.chunking.max_tokens == 120


def test_out_of_bounds_values_are_refused(monkeypatch):
    monkeypatch.setenv("ONSITE_RETRIEVAL__DENSE_WEIGHT", "1.5")
    with pytest.raises(ValueError, match="dense_weight"):
        Settings()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_loads(name, tmp_path):
    s = load_settings(name, home=tmp_path)
    for section, values in PRESETS[name].items():
        for key, value in values.items():
            assert getattr(getattr(s, section), key) == value


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="known: "):
        load_settings("nope")


def test_every_field_is_described():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description or hasattr(field.annotation, "model_fields"), f"{model.__name__}.{name}"
            if hasattr(field.annotation, "model_fields"):
                walk(field.annotation)
    walk(Settings)


@pytest.mark.parametrize("toml, key", [
    ("[retrieval]\ntop_kk = 3\n", "top_kk"),         # a typo inside a section
    ("[retrival]\ntop_k = 3\n", "retrival"),         # a misspelt section
    ("[agent]\nmax_question_char = 10\n", "max_question_char"),
    ("[api]\nrate_limit = 5\n", "rate_limit"),
])
def test_a_typo_in_onsite_toml_is_an_error_that_names_it(monkeypatch, tmp_path, toml, key):
    cfg = tmp_path / "onsite.toml"
    cfg.write_text(toml)
    monkeypatch.setenv("ONSITE_CONFIG", str(cfg))
    with pytest.raises(ValidationError, match=key):
        Settings()


def test_unrelated_environment_variables_are_not_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("ONSITE_SOMETHING_ELSE", "1")  # e.g. another tool's variable with our prefix
    assert Settings().home == tmp_path / "h"
