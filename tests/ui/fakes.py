"""A stand-in for ``assistant.service.Service`` at the page's boundary: scripted turns and small
in-memory operations, so the page's handlers and layout can be tested without models or an index.
The real service is used by the browser test."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.settings import Settings
from assistant.types import Event
from tools.inspection.uploads import UploadStore
from tools.site import load_site_profile


@dataclass
class FakeJobs:
    states: list[dict[str, Any]] = field(default_factory=list)
    started: int = 0

    def start_rebuild(self) -> dict[str, Any]:
        self.started += 1
        return {"id": "job-1", "state": "queued", "stage": "queued", "done": 0, "total": 0, "failures": []}

    def get(self, job_id: str) -> dict[str, Any]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


class FakeService:
    def __init__(self, home: Path, turns: list[list[Event]] | None = None):
        self.settings = Settings(home=home, llm={"backend": "extractive"})
        self.site = load_site_profile(self.settings.site_profile)
        self.uploads = UploadStore(home / "uploads")
        self.turns = list(turns or [])
        self.asked: list[dict[str, Any]] = []
        self.resumed: list[tuple] = []
        self.orders = [{"id": "WO-1", "asset": "P-101", "priority": "high", "problem": "<b>leak</b>",
                        "requested_by": "ana", "created_at": 1.7e9, "status": "pending"}]
        self.documents: dict[str, bytes] = {}
        self.knowledge_jobs = FakeJobs()
        self.status = {"live": "v1", "documents": [{"source": "/x/a.md", "pages": None, "chunks": 3, "warnings": []}],
                       "chunks": 3, "failures": [{"source": "/x/bad.pdf", "reason": "encrypted"}]}
        self.products = ["label"]
        self.inspection: dict[str, Any] | None = None
        self.histories: dict[str, list[dict]] = {}
        self.waiting: dict[str, list[dict]] = {}
        self.rollbacks = 0
        self.turns_in_flight = 0  # what assistant.server.build_app reads
        self.observers: list = []

    # turns
    def ask(self, question, *, thread_id=None, scope=None, photos=(), user="local", cancel=None, **kw):
        self.asked.append({"question": question, "thread_id": thread_id, "scope": scope, "photos": list(photos),
                           "user": user})
        return iter(self.turns.pop(0))

    def resume(self, thread_id, decision, user="local"):
        self.resumed.append((thread_id, decision, user))
        return iter(self.turns.pop(0))

    def history(self, thread_id: str) -> list[dict]:
        return list(self.histories.get(thread_id, []))

    def pending(self, thread_id: str) -> list[dict]:
        return list(self.waiting.get(thread_id, []))

    def readiness(self) -> dict[str, Any]:
        return {"model": {"mode": "extractive", "reason": "no model file"}, "index": {"version": "v1"}}

    # operations
    def save_photo(self, data: bytes, filename: str = "") -> dict[str, Any]:
        return {"image_id": self.uploads.save(data, filename)}

    def list_products(self) -> list[str]:
        return list(self.products)

    def inspect_upload(self, data: bytes, filename: str = "", product: str | None = None) -> dict[str, Any]:
        image_id = self.uploads.save(data, filename)
        return {**(self.inspection or {}), "image_id": image_id, "annotated_image_id": image_id, "product": product}

    def list_sensors(self) -> list[dict[str, Any]]:
        return [{"id": s.id, "name": s.name, "zone": s.zone, "unit": s.unit} for s in self.site.sensors]

    def now(self) -> datetime:
        return datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def sensor_series(self, sensor_id, start=None, end=None, bucket_s=None) -> dict[str, Any]:
        end = end or self.now()
        start = start or end - timedelta(hours=24)
        pts = [{"ts": (start + timedelta(hours=i)).isoformat(), "mean": 20.0 + i, "count": 1} for i in range(3)]
        return {"id": sensor_id, "name": "Air temperature", "unit": "°C", "points": pts,
                "from": start.isoformat(), "to": end.isoformat(), "limits_now": {"period": "day", "low": 18.0, "high": 28.0}}

    def sensor_latest(self, sensor_id) -> dict[str, Any]:
        return {"id": sensor_id, "value": 22.0, "ts": "2025-06-01T12:00:00+08:00", "status": "normal"}

    def list_work_orders(self, status=None, asset=None, limit=50) -> list[dict]:
        return [o for o in self.orders if status is None or o["status"] == status]

    def decide_work_order(self, order_id, approve, by, reason) -> dict[str, Any]:
        order = next(o for o in self.orders if o["id"] == order_id)
        order.update(status="open" if approve else "rejected", decided_by=by, decision_reason=reason)
        return dict(order)

    def save_document(self, filename: str, data: bytes) -> dict[str, Any]:
        from assistant.errors import ValidationError

        if not filename.endswith((".md", ".pdf", ".txt")):
            raise ValidationError(f"{filename!r} is not a document type the index reads")
        self.documents[filename] = data
        return {"name": filename, "bytes": len(data), "replaced": False}

    def index_status(self) -> dict[str, Any]:
        return dict(self.status)

    def rollback_index(self) -> dict[str, Any]:
        self.rollbacks += 1
        return {"live": "v0", "previous": "v1"}
