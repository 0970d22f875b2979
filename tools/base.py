"""The tool framework: what the agent can do besides reading documents.

A tool is a small class: a ``name``, a docstring the model reads, an ``Args`` pydantic model
with bounds, a ``side_effects`` flag, and ``run(args) -> ToolResult``. Read-only tools may run
on their own; tools with side effects only ever *propose* (the work order waits for a person).
``call`` validates raw arguments and turns any failure into a ToolResult that says what went
wrong, so a bad argument or a broken sensor never crashes the caller.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)


@dataclass
class ToolResult:
    tool: str
    args: dict[str, Any]
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # one line a person can read
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Tool(Protocol):
    name: ClassVar[str]
    Args: ClassVar[type[BaseModel]]
    side_effects: ClassVar[bool]

    def run(self, args: BaseModel) -> ToolResult:
        """Do the work with validated arguments."""


def describe(tool: Tool) -> dict[str, Any]:
    """The JSON description a model reads: name, docstring, argument schema, side effects."""
    return {
        "name": tool.name,
        "description": " ".join((type(tool).__doc__ or "").split()),
        "parameters": tool.Args.model_json_schema(),
        "side_effects": bool(getattr(tool, "side_effects", False)),
    }


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def call(tool: Tool, raw_args: dict[str, Any] | BaseModel) -> ToolResult:
    """Validate and run; every failure becomes ``ok=False`` with a readable error."""
    start = time.perf_counter()
    shown = raw_args.model_dump(mode="json") if isinstance(raw_args, BaseModel) else dict(raw_args or {})
    try:
        args = raw_args if isinstance(raw_args, tool.Args) else tool.Args.model_validate(raw_args or {})
    except ValidationError as exc:
        return ToolResult(tool.name, shown, False, summary=f"{tool.name}: invalid arguments",
                          error=format_validation_error(exc), seconds=time.perf_counter() - start)
    try:
        result = tool.run(args)
    except Exception as exc:  # noqa: BLE001 - a tool failure is reported, never raised
        log.exception("tool %s failed", tool.name)
        message = getattr(exc, "user_message", None) or f"{type(exc).__name__}: {exc}"
        result = ToolResult(tool.name, args.model_dump(mode="json"), False, summary=f"{tool.name} failed", error=message)
    result.seconds = time.perf_counter() - start
    return result


class ToolRegistry:
    """The tools the agent, API and UI may call, by name."""

    def __init__(self, tools: list[Tool] | None = None):
        self._tools: dict[str, Tool] = {}
        for t in tools or []:
            self.register(t)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"duplicate tool name {tool.name!r}")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(f"unknown tool {name!r}; known: {', '.join(sorted(self._tools))}") from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [describe(self._tools[n]) for n in self.names()]

    def call(self, name: str, raw_args: dict[str, Any]) -> ToolResult:
        try:
            tool = self.get(name)
        except KeyError as exc:
            return ToolResult(name, dict(raw_args or {}), False, summary="unknown tool", error=str(exc.args[0]))
        return call(tool, raw_args)
