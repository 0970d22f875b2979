"""The registry's plan checks and approved effects, with small tools written for the test: every
refusal or failure is a reason or a failed ToolResult, never an exception."""

from typing import ClassVar

from pydantic import BaseModel, Field

from tools.base import PlanContext, ToolRegistry, ToolResult
from tools.errors import ToolConflictError


class Echo:
    """Say a word back. Read-only."""

    name: ClassVar[str] = "echo"
    side_effects: ClassVar[bool] = False

    class Args(BaseModel):
        word: str = Field(..., min_length=1, max_length=20)
        times: int | None = Field(None, ge=1, le=3)

    def run(self, args):
        return ToolResult(self.name, args.model_dump(), True, summary=args.word * (args.times or 1))


class Ring(Echo):
    """Ring a bell on the floor (a side effect); only words the plan allows."""

    name: ClassVar[str] = "ring"
    side_effects: ClassVar[bool] = True

    def __init__(self):
        self.rung: list[tuple[str, str]] = []

    def check(self, args, context: PlanContext):
        if args.get("word") == "boom":
            raise RuntimeError("the rule itself is broken")
        return None if args.get("word") in context.products else f"{args.get('word')!r} is not allowed"

    def apply(self, args, approved_by):
        if args.word == "jam":
            raise ToolConflictError("the bell is already ringing")
        self.rung.append((args.word, approved_by))
        return ToolResult(self.name, args.model_dump(), True, summary=f"rang {args.word} for {approved_by}")


ALLOWED = PlanContext(products=["ding", "jam", "boom"])


def test_check_gives_normalised_arguments_or_the_reason():
    registry = ToolRegistry([Echo(), Ring()])
    assert registry.check("echo", {"word": "hi"}, ALLOWED) == ({"word": "hi"}, None)  # None values left out
    assert registry.check("nope", {"x": 1}, ALLOWED) == ({"x": 1}, "unknown tool 'nope'")
    args, reason = registry.check("echo", {"word": "", "times": 9}, ALLOWED)
    assert args == {"word": "", "times": 9} and reason.startswith("invalid arguments: word: ") and "times" in reason
    assert registry.check("ring", {"word": "dong"}, ALLOWED) == ({"word": "dong"}, "'dong' is not allowed")
    assert registry.check("ring", {"word": "ding"}, ALLOWED) == ({"word": "ding"}, None)


def test_a_broken_rule_refuses_the_call_instead_of_raising():
    _, reason = ToolRegistry([Ring()]).check("ring", {"word": "boom"}, ALLOWED)
    assert reason == "the call could not be checked (RuntimeError: the rule itself is broken)"


def test_apply_runs_only_tools_with_side_effects_and_reports_failures():
    ring = Ring()
    registry = ToolRegistry([Echo(), ring])
    done = registry.apply("ring", {"word": "ding"}, "Li Wei")
    assert done.ok and done.summary == "rang ding for Li Wei" and ring.rung == [("ding", "Li Wei")]
    jammed = registry.apply("ring", {"word": "jam"}, "Li Wei")
    assert not jammed.ok and jammed.error == "the bell is already ringing" and jammed.summary == "ring failed"
    invalid = registry.apply("ring", {"word": ""}, "Li Wei")
    assert not invalid.ok and invalid.summary == "ring: invalid arguments"
    refused = registry.apply("echo", {"word": "hi"}, "Li Wei")
    assert not refused.ok and refused.summary == "not allowed" and "echo has no approval path" in refused.error
    unknown = registry.apply("nope", {}, "Li Wei")
    assert not unknown.ok and unknown.error.startswith("unknown tool 'nope'; known: echo, ring")
    assert ring.rung == [("ding", "Li Wei")]


def test_call_takes_any_raw_arguments_without_raising():
    registry = ToolRegistry([Echo()])
    assert registry.call("echo", {"word": "hi", "times": 2}).summary == "hihi"
    for raw in (None, ["hi"], "hi"):
        result = registry.call("echo", raw)
        assert not result.ok and result.summary == "echo: invalid arguments" and result.error
