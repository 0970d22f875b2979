"""The tool framework: what the agent can do besides reading documents.

A tool is a small class: a ``name``, a docstring the model reads, an ``Args`` pydantic model
with bounds, a ``side_effects`` flag, and ``run(args) -> ToolResult``. It may add its own rules
for a planned call (``check(args, context)``, e.g. "that photo was not attached"); a tool with side
effects also has ``apply(args, approved_by)``, which performs the effect once a person approved.
Read-only tools may run on their own; tools with side effects wait for a person.
``call`` validates raw arguments and turns any failure into a ToolResult that says what went
wrong, so a bad argument or a broken sensor never crashes the caller; ``ToolRegistry.check`` and
``ToolRegistry.apply`` do the same for plan checks and approved effects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
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


@dataclass
class PlanContext:
    """What a turn's planned calls are checked against: the photos attached to the question,
    the inspection products set up, and the site's asset ids."""

    photos: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    asset_ids: set[str] = field(default_factory=set)


@runtime_checkable
class Tool(Protocol):
    """Every tool. Optional parts: ``check`` (``CheckedTool``), and ``apply`` for tools with
    ``side_effects = True`` (``SideEffectTool``)."""

    name: ClassVar[str]
    Args: ClassVar[type[BaseModel]]
    side_effects: ClassVar[bool]

    def run(self, args: BaseModel) -> ToolResult:
        """Do the work with validated arguments."""


@runtime_checkable
class CheckedTool(Tool, Protocol):
    def check(self, args: dict[str, Any], context: PlanContext) -> str | None:
        """The reason a planned call must not run, or None. ``args`` are the validated arguments
        as JSON, or the arguments as given when they do not validate (a tool may explain a
        missing choice better than the validator can)."""


@runtime_checkable
class SideEffectTool(Tool, Protocol):
    def apply(self, args: BaseModel, approved_by: str) -> ToolResult:
        """Perform the effect with validated arguments, after ``approved_by`` approved it."""


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


def _shown(raw_args: Any) -> dict[str, Any]:
    if isinstance(raw_args, BaseModel):
        return raw_args.model_dump(mode="json")
    if isinstance(raw_args, Mapping):
        return dict(raw_args)
    return {} if raw_args is None else {"arguments": repr(raw_args)[:200]}


def _invoke(tool: Tool, raw_args: Any, action: str, work: Callable[[BaseModel], ToolResult]) -> ToolResult:
    """Validate, then ``work(args)``; every failure becomes ``ok=False`` with a readable error."""
    start = time.perf_counter()
    shown = _shown(raw_args)
    try:
        args = raw_args if isinstance(raw_args, tool.Args) else tool.Args.model_validate(
            {} if raw_args is None else raw_args)
    except ValidationError as exc:
        return ToolResult(tool.name, shown, False, summary=f"{tool.name}: invalid arguments",
                          error=format_validation_error(exc), seconds=time.perf_counter() - start)
    try:
        result = work(args)
    except Exception as exc:  # noqa: BLE001 - a tool failure is reported, never raised
        log.exception("tool %s failed (%s)", tool.name, action)
        message = getattr(exc, "user_message", None) or f"{type(exc).__name__}: {exc}"
        result = ToolResult(tool.name, args.model_dump(mode="json"), False, summary=f"{tool.name} failed", error=message)
    result.seconds = time.perf_counter() - start
    return result


def _own_reason(tool: Tool, args: dict[str, Any], context: PlanContext) -> str | None:
    """The tool's own rule for a planned call, if it has one; a failing rule refuses the call."""
    check = getattr(tool, "check", None)
    if check is None:
        return None
    try:
        return check(args, context)
    except Exception as exc:  # noqa: BLE001 - a broken rule refuses the call instead of ending the turn
        log.exception("tool %s: check failed", tool.name)
        return f"the call could not be checked ({type(exc).__name__}: {exc})"


def call(tool: Tool, raw_args: dict[str, Any] | BaseModel) -> ToolResult:
    """Validate and run; every failure becomes ``ok=False`` with a readable error."""
    return _invoke(tool, raw_args, "run", tool.run)


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
            return ToolResult(name, _shown(raw_args), False, summary="unknown tool", error=str(exc.args[0]))
        return call(tool, raw_args)

    def check(self, name: str, raw_args: dict[str, Any], context: PlanContext) -> tuple[dict[str, Any], str | None]:
        """A planned call checked before anything runs: (validated arguments as JSON, None), or
        (the arguments, the reason it is refused) — unknown tool, invalid arguments, or the tool's own rule."""
        shown = _shown(raw_args)
        if name not in self._tools:
            return shown, f"unknown tool {name!r}"
        tool = self._tools[name]
        try:
            args = tool.Args.model_validate({} if raw_args is None else raw_args)
        except ValidationError as exc:
            own = _own_reason(tool, shown, context) if isinstance(raw_args, (Mapping, BaseModel)) else None
            return shown, own or f"invalid arguments: {format_validation_error(exc)}"
        normalised = args.model_dump(mode="json", exclude_none=True)
        return normalised, _own_reason(tool, normalised, context)

    def apply(self, name: str, raw_args: dict[str, Any], approved_by: str) -> ToolResult:
        """Perform an approved call of a tool with side effects; every refusal or failure is a
        ToolResult with ``ok=False`` (a read-only tool has nothing to approve)."""
        try:
            tool = self.get(name)
        except KeyError as exc:
            return ToolResult(name, _shown(raw_args), False, summary="unknown tool", error=str(exc.args[0]))
        apply = getattr(tool, "apply", None)
        if not getattr(tool, "side_effects", False) or apply is None:
            return ToolResult(name, _shown(raw_args), False, summary="not allowed",
                              error=f"{name} has no approval path (it has no side effects to approve)")
        return _invoke(tool, raw_args, "apply", lambda args: apply(args, approved_by))
