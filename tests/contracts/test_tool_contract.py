"""The Tool contract: every tool in ``tools.catalog.TOOL_FACTORIES`` passes this suite, built on a
real site (the sample profile) with real SQLite stores and upload / product folders in tmp_path.

A tool has its table key as name, a docstring the model reads, an ``Args`` pydantic model with an
object schema and a ``side_effects`` flag; bad arguments become a failed ToolResult with a readable
error, never an exception; a tool with side effects has ``apply`` and a read-only tool is refused
by ``ToolRegistry.apply``. A new tool adds one line to ``EXAMPLES`` below: well-formed arguments.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel

from tools.base import PlanContext, SideEffectTool, Tool, ToolRegistry, ToolResult, call, describe
from tools.catalog import TOOL_FACTORIES, ToolContext, build_registry
from tools.inspection.tool import ProductStore
from tools.inspection.uploads import UploadStore
from tools.sensors.store import SensorStore
from tools.site import load_site_profile
from tools.workorders.store import WorkOrderStore

SAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml"
PHOTO = "{photo}"  # replaced by the id of a photo uploaded for the test

# Well-formed arguments per tool (they validate and pass the tool's own checks).
EXAMPLES: dict[str, dict[str, Any]] = {
    "sensor_latest": {"target": "GH-1"},
    "sensor_history": {"sensor_id": "VT-101", "hours": 6},
    "site_check": {"hours": 12, "target": "P-101"},
    "list_work_orders": {"status": "pending"},
    "create_work_order": {"asset": "P-101", "problem": "Vibration above the alarm limit", "priority": "high"},
    "inspect_image": {"image_id": PHOTO, "product": "tray"},
}


@pytest.fixture(scope="module")
def site():
    return load_site_profile(SAMPLE)


@pytest.fixture
def context(site, tmp_path):
    sensors, orders = SensorStore(tmp_path / "sensors.sqlite"), WorkOrderStore(tmp_path / "orders.sqlite")
    yield ToolContext(site=site, sensors=sensors, work_orders=orders, uploads=UploadStore(tmp_path / "uploads"),
                      products=ProductStore(tmp_path / "products"))
    sensors.close()
    orders.close()


@pytest.fixture
def photo(context) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 90)).save(buf, format="PNG")
    return context.uploads.save(buf.getvalue(), "tray.png")


@pytest.fixture(params=sorted(TOOL_FACTORIES))
def name(request) -> str:
    return request.param


@pytest.fixture
def tool(name, context) -> Tool:
    return TOOL_FACTORIES[name](context)


@pytest.fixture
def registry(context) -> ToolRegistry:
    return build_registry(context)


@pytest.fixture
def example(name, photo) -> dict[str, Any]:
    return {k: (photo if v == PHOTO else v) for k, v in EXAMPLES[name].items()}


@pytest.fixture
def plan_context(site, photo) -> PlanContext:
    return PlanContext(photos=[photo], products=["tray"], asset_ids={a.id for a in site.assets})


def _properties(tool: Tool) -> dict[str, Any]:
    return tool.Args.model_json_schema().get("properties", {})


def _readable_failure(result: Any, name: str) -> None:
    assert isinstance(result, ToolResult) and result.tool == name and result.ok is False
    assert isinstance(result.error, str) and result.error.strip() and "Traceback" not in result.error
    json.dumps(result.to_dict())


def test_every_tool_has_an_example():
    assert sorted(EXAMPLES) == sorted(TOOL_FACTORIES)


def test_is_a_tool_named_as_its_table_key(name, tool):
    assert isinstance(tool, Tool) and tool.name == name


def test_has_a_docstring_the_model_reads(tool):
    doc = " ".join((type(tool).__doc__ or "").split())
    assert len(doc) >= 40 and doc[0].isupper() and doc.endswith(".")


def test_args_is_a_pydantic_model_with_an_object_schema(tool):
    assert isinstance(tool.Args, type) and issubclass(tool.Args, BaseModel)
    schema = tool.Args.model_json_schema()
    assert schema["type"] == "object" and isinstance(schema.get("properties"), dict) and schema["properties"]
    assert set(schema.get("required", [])) <= set(schema["properties"])
    assert isinstance(tool.side_effects, bool)


def test_describe_gives_what_the_model_reads(tool, name):
    d = describe(tool)
    assert set(d) == {"name", "description", "parameters", "side_effects"}
    assert d["name"] == name and d["description"] == " ".join(type(tool).__doc__.split())
    assert d["parameters"] == tool.Args.model_json_schema() and d["side_effects"] is tool.side_effects
    json.dumps(d)


def test_arguments_of_the_wrong_type_are_a_readable_failure(tool, name):
    properties = _properties(tool)
    result = call(tool, {p: {"not": "valid"} for p in properties})
    _readable_failure(result, name)
    assert result.summary == f"{name}: invalid arguments"
    assert all(p in result.error for p in properties)  # each bad argument is named


@pytest.mark.parametrize("raw", [["not", "a", "mapping"], "target=GH-1", 42])
def test_arguments_that_are_not_a_mapping_are_a_readable_failure(tool, name, raw):
    _readable_failure(call(tool, raw), name)


def test_missing_required_arguments_are_a_readable_failure(tool, name):
    required = tool.Args.model_json_schema().get("required", [])
    result = call(tool, {})
    if required:
        _readable_failure(result, name)
        assert all(r in result.error for r in required)
    else:
        assert result.tool == name  # everything has a default: the call may run


def test_a_well_formed_call_returns_a_result_a_person_can_read(tool, name, example):
    result = call(tool, example)
    assert isinstance(result, ToolResult) and result.tool == name and result.summary.strip()
    assert result.ok or result.error
    assert result.seconds >= 0
    json.dumps(result.to_dict())


def test_plan_checks_normalise_arguments_and_refuse_bad_ones(registry, name, example, plan_context):
    args, reason = registry.check(name, example, plan_context)
    assert reason is None, reason
    assert registry.check(name, args, plan_context) == (args, None)  # normalised arguments check again as they are
    json.dumps(args)
    bad_args, bad_reason = registry.check(name, ["not", "a", "mapping"], plan_context)
    assert isinstance(bad_reason, str) and bad_reason.startswith("invalid arguments") and isinstance(bad_args, dict)


def test_own_checks_answer_with_a_reason_or_none(tool, example, plan_context):
    check = getattr(tool, "check", None)
    if check is None:
        return
    assert check(tool.Args.model_validate(example).model_dump(mode="json", exclude_none=True), plan_context) is None
    refusal = check(example, PlanContext())  # nothing attached, no products, no assets
    assert refusal is None or (isinstance(refusal, str) and refusal.strip())


def test_side_effects_wait_for_approval_and_read_only_tools_have_none(tool, registry, name, example, context):
    if tool.side_effects:
        assert isinstance(tool, SideEffectTool) and callable(tool.apply)
        result = registry.apply(name, example, "Li Wei")
        assert isinstance(result, ToolResult) and result.tool == name and result.ok, result.error
        _readable_failure(registry.apply(name, {"not": "valid"}, "Li Wei"), name)
    else:
        refused = registry.apply(name, example, "Li Wei")
        _readable_failure(refused, name)
        assert refused.summary == "not allowed" and f"{name} has no approval path" in refused.error


def test_nothing_is_written_before_approval(registry, name, example, plan_context, context):
    registry.check(name, example, plan_context)
    registry.apply(name, {"not": "valid"}, "Li Wei")
    assert context.work_orders.list() == []
