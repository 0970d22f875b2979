"""The server caps glibc's malloc arenas (assistant.memory), unless the operator set MALLOC_ARENA_MAX."""

import platform
import subprocess
import sys

import pytest

from assistant.memory import limit_malloc_arenas

CHILD = ("import os, sys; from assistant.memory import limit_malloc_arenas; "
         "sys.exit(0 if limit_malloc_arenas() == (sys.argv[1] == 'set') else 1)")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_arenas_are_capped_on_glibc_unless_the_operator_chose():
    env_free = {k: v for k, v in __import__("os").environ.items() if k != "MALLOC_ARENA_MAX"}
    assert subprocess.run([sys.executable, "-c", CHILD, "set"], env=env_free).returncode == 0
    chosen = {**env_free, "MALLOC_ARENA_MAX": "4"}
    assert subprocess.run([sys.executable, "-c", CHILD, "kept"], env=chosen).returncode == 0


def test_an_operator_setting_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False
