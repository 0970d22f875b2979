"""The one module that names concrete classes: it builds every part from the settings and hands
the faces their narrow services.

    parts = build_parts(settings)          # embedder, model, index, stores, tools, agent graph
    services = build_services(settings)    # what the server, the CLI and the tests give a face

Anything may be passed in ready-made (a test's fake model, a shared embedder, a simulated
clock); the rest is built here, and nowhere else.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from assistant.answerability import Assessor
from assistant.audit import AuditLog
from assistant.graph import AgentGraph
from assistant.llm import LoadedModel, load_chat_model
from assistant.llm.extractive import ExtractiveModel
from assistant.nodes import AgentDeps
from assistant.private import private_dir, private_file, restrict_umask
from assistant.redact import redact_text
from assistant.services import Services
from assistant.settings import Settings
from assistant.turns import Turns
from knowledge.admin import KnowledgeAdmin
from knowledge.embedding import Embedder, make_embedder
from knowledge.index import KnowledgeIndex
from knowledge.retrieval import Retriever
from tools.catalog import ToolContext, build_registry
from tools.inspection.service import InspectionService
from tools.inspection.tool import ProductStore
from tools.inspection.uploads import UploadStore
from tools.sensors.service import SensorService
from tools.sensors.store import SensorStore
from tools.site import SiteProfile, load_site_profile
from tools.watch.alerts import AlertStore
from tools.watch.service import AlertService
from tools.workorders.service import WorkOrderService
from tools.workorders.store import WorkOrderStore

LOW_DISK_MB = 200


@dataclass
class Parts:
    """The concrete parts of one running assistant (for the server's sensor feed, the CLI's
    evaluations and the tests; faces use ``Services``)."""

    settings: Settings
    embedder: Embedder
    loaded: LoadedModel
    index: KnowledgeIndex
    retriever: Retriever
    site: SiteProfile
    sensor_store: SensorStore
    work_order_store: WorkOrderStore
    uploads: UploadStore
    products: ProductStore
    tools: ToolContext
    agent: AgentGraph
    audit: AuditLog
    alert_store: AlertStore

    def close(self) -> None:
        self.agent.close()
        self.audit.close()
        self.sensor_store.close()
        self.work_order_store.close()
        self.alert_store.close()


def build_parts(settings: Settings, *, embedder: Embedder | None = None, loaded: LoadedModel | None = None,
                site: SiteProfile | None = None, clock: Callable[[], datetime] | None = None,
                retriever: Retriever | None = None) -> Parts:
    restrict_umask()  # the data home is private whatever the operator's umask (assistant.private)
    private_dir(settings.home)
    for database in (settings.sensors_db, settings.workorders_db, settings.alerts_db):
        private_file(database)  # before SQLite opens them: its -wal / -shm files take their mode
    embedder = embedder or make_embedder(settings.embedding, settings.home)
    loaded = loaded or load_chat_model(settings, embedder)
    retriever = retriever or Retriever(settings, embedder=embedder)
    site = site or load_site_profile(settings.site_profile)
    sensor_store = SensorStore(settings.sensors_db)
    work_order_store = WorkOrderStore(settings.workorders_db)
    uploads = UploadStore(settings.uploads_dir)
    products = ProductStore(settings.home / "inspection")
    tools = ToolContext(site=site, sensors=sensor_store, work_orders=work_order_store, uploads=uploads,
                        products=products, clock=clock)
    extractive = loaded.model if isinstance(loaded.model, ExtractiveModel) else \
        ExtractiveModel(embedder, reason="fallback")
    deps = AgentDeps(settings=settings, model=loaded.model, extractive=extractive, retriever=retriever,
                     registry=build_registry(tools), site=site, assess=Assessor(retriever.index, embedder),
                     products=products.names, mode_reason=loaded.reason and redact_text(loaded.reason))
    agent = AgentGraph(deps, settings.conversations_db, recursion_limit=settings.agent.recursion_limit)
    return Parts(settings=settings, embedder=embedder, loaded=loaded, index=retriever.index, retriever=retriever,
                 site=site, sensor_store=sensor_store, work_order_store=work_order_store, uploads=uploads,
                 products=products, tools=tools, agent=agent, audit=AuditLog(settings.audit_db),
                 alert_store=AlertStore(settings.alerts_db, settings.alerts))


def build_services(settings: Settings, *, parts: Parts | None = None, **part_overrides: Any) -> Services:
    """The narrow services over ``parts`` (built from ``settings`` when not given)."""
    parts = parts or build_parts(settings, **part_overrides)
    inspection = InspectionService(parts.uploads, parts.products)
    turns = Turns(parts.agent, parts.audit, max_question_chars=settings.agent.max_question_chars,
                  max_answer_tokens=settings.agent.answer_max_tokens, deadline_s=settings.agent.deadline_s,
                  queue_depth=settings.llm.queue_depth, default_mode=parts.loaded.mode,
                  check_photo=inspection.photo_path)
    max_document_mb = min(settings.ingest.max_file_mb, settings.api.max_upload_mb)
    knowledge = KnowledgeAdmin(settings, parts.embedder, parts.index,
                               max_document_bytes=int(max_document_mb * 1024 * 1024))
    services = Services(
        settings=settings, site=parts.site, turns=turns,
        sensors=SensorService(parts.site, parts.sensor_store, clock=parts.tools.clock),
        inspection=inspection,
        work_orders=WorkOrderService(parts.work_order_store, {a.id for a in parts.site.assets}),
        knowledge=knowledge, readiness=Readiness(settings.home, knowledge, turns, parts.loaded),
        close=parts.close, parts=parts, alerts=AlertService(parts.alert_store),
    )
    return services


class Readiness:
    """For /readyz: ready when a sound index version is live and the disk is not full; the model
    mode (llm or labelled extractive), index version and manifest check, the queue and the disk."""

    def __init__(self, home: Path, knowledge: KnowledgeAdmin, turns: Turns, loaded: LoadedModel):
        self.home, self.knowledge, self.turns, self.loaded = home, knowledge, turns, loaded

    def __call__(self) -> dict[str, Any]:
        current, problems = self.knowledge.verify_live()
        disk = shutil.disk_usage(self.home)
        free_mb = disk.free // (1024 * 1024)
        reasons = ([f"index: {'; '.join(problems)}"] if problems else []) + \
            ([f"disk: only {free_mb} MB free"] if free_mb < LOW_DISK_MB else [])
        return {
            "ready": not reasons, "reason": "; ".join(reasons) or None,
            "model": {"mode": self.loaded.mode, "backend": self.loaded.backend,
                      "name": getattr(self.loaded.model, "name", None), "reason": self.loaded.reason},
            "index": {"version": current, "manifest_ok": not problems, "problems": problems},
            "queue": {"in_flight": self.turns.turns_in_flight, "capacity": self.turns.queue_depth},
            "disk": {"free_mb": free_mb, "total_mb": disk.total // (1024 * 1024)},
            "rebuild": (self.knowledge.running_job() or {}).get("id"),
        }
