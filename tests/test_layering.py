"""The layers of DESIGN.md: the parts (``knowledge``, ``tools``) import nothing from the agent or
the faces, and their modules import each other without cycles (checked on the source, including
imports inside functions)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("knowledge", "tools")


def _modules(*packages: str) -> dict[str, Path]:
    out = {}
    for path in (p for package in packages for p in (ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


@pytest.mark.parametrize("part", PARTS)
def test_parts_import_nothing_from_the_agent_or_the_faces(part):
    offenders = {name: sorted(m for m in _imports(path) if m.split(".")[0] in ("assistant", "ui", "evals"))
                 for name, path in _modules(part).items()}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("package", PARTS)
def test_no_import_cycles_inside_a_package(package):
    graph, done, cycles = _graph(package), set(), []

    def visit(name: str, path: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []


def test_the_cycle_check_sees_imports_inside_functions():
    assert "tools.sensors.mqtt" in _imports(ROOT / "tools" / "sensors" / "simulator.py")  # imported in simulate()


def test_the_api_event_schemas_do_not_import_the_openai_endpoint():
    """The OpenAI endpoint uses the event schemas; the reverse import was a cycle."""
    assert not any(m.startswith("assistant.api.openai_api")
                   for m in _imports(ROOT / "assistant" / "api" / "routes" / "events.py"))
