"""The one table of tools: tool name → factory. Every other list of tools is derived from it.

A new tool is one module and one line here. ``build_registry`` builds the tools of a site
(all of them, or the ``names`` asked for) from one ``ToolContext``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from tools.base import Tool, ToolRegistry
from tools.inspection.tool import InspectImage, ProductStore
from tools.inspection.uploads import UploadStore
from tools.sensors.store import SensorStore
from tools.sensors.tools import SensorHistory, SensorLatest, SiteCheck
from tools.site import SiteProfile
from tools.workorders.store import WorkOrderStore
from tools.workorders.tools import CreateWorkOrder, ListWorkOrders


@dataclass
class ToolContext:
    """What the tools are built from: the site profile, its stores, and the sensors' clock
    (a zero-argument callable returning an aware datetime; None = the real time)."""

    site: SiteProfile
    sensors: SensorStore
    work_orders: WorkOrderStore
    uploads: UploadStore
    products: ProductStore
    clock: Callable[[], datetime] | None = None

    @property
    def asset_ids(self) -> set[str]:
        return {a.id for a in self.site.assets}


TOOL_FACTORIES: dict[str, Callable[[ToolContext], Tool]] = {
    "sensor_latest": lambda c: SensorLatest(c.site, c.sensors, clock=c.clock),
    "sensor_history": lambda c: SensorHistory(c.site, c.sensors, clock=c.clock),
    "site_check": lambda c: SiteCheck(c.site, c.sensors, clock=c.clock),
    "list_work_orders": lambda c: ListWorkOrders(c.work_orders),
    "create_work_order": lambda c: CreateWorkOrder(c.work_orders, c.asset_ids),
    "inspect_image": lambda c: InspectImage(c.uploads, c.products),
}


def build_registry(context: ToolContext, names: Iterable[str] | None = None) -> ToolRegistry:
    """A registry with the tools of ``TOOL_FACTORIES`` (all, or those named), built for ``context``."""
    chosen = list(TOOL_FACTORIES) if names is None else list(names)
    unknown = [n for n in chosen if n not in TOOL_FACTORIES]
    if unknown:
        raise KeyError(f"unknown tool(s) {', '.join(map(repr, unknown))}; known: {', '.join(TOOL_FACTORIES)}")
    return ToolRegistry([TOOL_FACTORIES[n](context) for n in chosen])
