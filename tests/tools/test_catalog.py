"""The table of tools: every tool built from one context, a chosen few, and unknown names refused."""

from datetime import UTC, datetime

import pytest

from tools.catalog import TOOL_FACTORIES, ToolContext, build_registry
from tools.inspection.tool import ProductStore
from tools.inspection.uploads import UploadStore
from tools.sensors.store import Reading, SensorStore, to_ms
from tools.workorders.store import WorkOrderStore

NOW = datetime(2025, 4, 15, 2, 0, tzinfo=UTC)


@pytest.fixture
def context(site, tmp_path):
    sensors, orders = SensorStore(tmp_path / "s.sqlite"), WorkOrderStore(tmp_path / "w.sqlite")
    yield ToolContext(site=site, sensors=sensors, work_orders=orders, uploads=UploadStore(tmp_path / "uploads"),
                      products=ProductStore(tmp_path / "products"), clock=lambda: NOW)
    sensors.close()
    orders.close()


def test_every_tool_of_the_table_is_built(context):
    registry = build_registry(context)
    assert registry.names() == sorted(TOOL_FACTORIES) == [
        "create_work_order", "inspect_image", "list_work_orders", "sensor_history", "sensor_latest", "site_check"]


def test_the_context_reaches_the_tools(context):
    context.sensors.insert([Reading("GH-1-TEMP", to_ms(NOW), 18.5)])
    registry = build_registry(context, ["sensor_latest", "create_work_order"])
    assert registry.names() == ["create_work_order", "sensor_latest"]
    latest = registry.call("sensor_latest", {"target": "GH-1-TEMP"})
    assert latest.ok and latest.data["as_of"] == "2025-04-15T10:00:00+08:00"  # the context's clock
    assert latest.data["readings"][0]["value"] == 18.5 and latest.data["readings"][0]["age_s"] == 0
    unknown = registry.call("create_work_order", {"asset": "P-999", "problem": "Noisy pump"})
    assert not unknown.ok and "P-101" in unknown.error  # the site's assets


def test_unknown_names_are_refused(context):
    with pytest.raises(KeyError, match="unknown tool.*'delete_everything'"):
        build_registry(context, ["sensor_latest", "delete_everything"])
