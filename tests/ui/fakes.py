"""A stand-in for the narrow services (``assistant.services``) at the page's boundary: scripted
turns and small in-memory operations, so the page's handlers and layout can be tested without
models or an index. One object plays every service and the ``Services`` bundle; it is checked
against the same Protocols as the real services (tests/contracts/test_services.py). The real
services are used by the browser test."""

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
        self.scripted = list(turns or [])
        self.asked: list[dict[str, Any]] = []
        self.resumed: list[tuple] = []
        self.orders = [{"id": "WO-1", "asset": "P-101", "priority": "high", "problem": "<b>leak</b>",
                        "requested_by": "ana", "created_at": 1.7e9, "status": "pending"}]
        self.documents: dict[str, bytes] = {}
        self.knowledge_jobs = FakeJobs()
        self.status = {"live": "v1", "documents": [{"source": "/x/a.md", "pages": None, "chunks": 3, "warnings": []}],
                       "chunks": 3, "failures": [{"source": "/x/bad.pdf", "reason": "encrypted"}]}
        self.products = ["label"]
        self.inspection_result: dict[str, Any] | None = None
        self.histories: dict[str, list[dict]] = {}
        self.waiting: dict[str, list[dict]] = {}
        self.rollbacks = 0
        self.turns_in_flight = 0  # what assistant.server.build_app reads
        self.max_question_chars, self.max_answer_tokens = 2000, 384
        self.parts = None
        self.observers: list = []
        self.alert_list: list[dict[str, Any]] = []  # newest last; add_alert() makes them
        self.alert_log: list[dict[str, Any]] = []

    # the Services bundle: this one object plays every service
    turns = sensors = inspection = work_orders = knowledge = alerts = property(lambda self: self)

    def close(self) -> None:
        pass

    # turns
    def ask(self, question, *, thread_id=None, scope=None, photos=(), user="local", filters=None, cancel=None,
            max_tokens=None):
        self.asked.append({"question": question, "thread_id": thread_id, "scope": scope, "photos": list(photos),
                           "user": user})
        return iter(self.scripted.pop(0))

    def answer(self, question: str, **kw: Any):
        from assistant.types import Answer

        done = [e for e in self.ask(question, **kw) if e.type == "done"]
        return Answer(**done[-1].data)

    def resume(self, thread_id, decision, user="local"):
        self.resumed.append((thread_id, decision, user))
        return iter(self.scripted.pop(0))

    def history(self, thread_id: str) -> list[dict]:
        return list(self.histories.get(thread_id, []))

    def pending(self, thread_id: str) -> list[dict]:
        return list(self.waiting.get(thread_id, []))

    def readiness(self) -> dict[str, Any]:
        return {"model": {"mode": "extractive", "reason": "no model file"}, "index": {"version": "v1"}}

    # operations
    def save_photo(self, data: bytes, filename: str = "") -> dict[str, Any]:
        return {"image_id": self.uploads.save(data, filename)}

    def photo_path(self, image_id: str) -> Path:
        return self.uploads.path(image_id)

    def open_photo(self, image_id: str) -> Any:
        return self.uploads.open(image_id)

    def list_products(self) -> list[str]:
        return list(self.products)

    def inspect_upload(self, data: bytes, filename: str = "", product: str | None = None) -> dict[str, Any]:
        image_id = self.uploads.save(data, filename)
        return {**(self.inspection_result or {}), "image_id": image_id, "annotated_image_id": image_id, "product": product}

    def fit_product(self, name: str, photos=None, upload_ids=None, golden: bool = False) -> dict[str, Any]:
        n = len(photos or []) + len(upload_ids or [])
        if n < (1 if golden else 3):
            from tools.errors import ToolInputError
            raise ToolInputError(f"teaching a product needs 3 to 200 photos of good items (5–20 recommended), got {n}")
        self.products.append(name)
        return self.describe_product(name)

    def start_fit_product(self, name: str, photos=None, upload_ids=None, golden: bool = False) -> dict[str, Any]:
        return {"id": "fit-000000000000", "state": "done", "product": name,
                "result": self.fit_product(name, photos, upload_ids, golden)}

    def get_fit_job(self, job_id: str) -> dict[str, Any]:
        return {"id": job_id, "state": "done", "product": self.products[-1] if self.products else None}

    def describe_product(self, name: str) -> dict[str, Any]:
        return {"name": name, "kind": "reference", "references": 3, "threshold": 1.5,
                "reference_scores": [1.0, 1.1, 1.2], "flagged_references": []}

    def list_product_details(self) -> list[dict[str, Any]]:
        return [self.describe_product(n) for n in self.products]

    def delete_product(self, name: str) -> dict[str, Any]:
        self.products.remove(name)
        return {"name": name, "deleted": True}

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

    def get_work_order(self, order_id: str) -> dict[str, Any]:
        return dict(next(o for o in self.orders if o["id"] == order_id))

    def create_work_order(self, asset, problem, priority="medium", evidence=None, requested_by="local"):
        order = {"id": f"WO-{len(self.orders) + 1}", "asset": asset, "problem": problem, "priority": priority,
                 "evidence": list(evidence or []), "requested_by": requested_by, "created_at": 1.7e9,
                 "status": "pending"}
        self.orders.append(order)
        return dict(order)

    def close_work_order(self, order_id, by, reason) -> dict[str, Any]:
        order = next(o for o in self.orders if o["id"] == order_id)
        order.update(status="closed")
        return dict(order)

    def decide_work_order(self, order_id, approve, by, reason) -> dict[str, Any]:
        order = next(o for o in self.orders if o["id"] == order_id)
        order.update(status="open" if approve else "rejected", decided_by=by, decision_reason=reason)
        return dict(order)

    def save_document(self, filename: str, data: bytes, added_by: str | None = None) -> dict[str, Any]:
        from assistant.errors import ValidationError

        if not filename.endswith((".md", ".pdf", ".txt")):
            raise ValidationError(f"{filename!r} is not a document type the index reads")
        self.documents[filename] = data
        return {"name": filename, "bytes": len(data), "replaced": False}

    def list_documents(self) -> list[dict[str, Any]]:
        return [{"name": n, "bytes": len(d)} for n, d in self.documents.items()]

    def delete_document(self, name: str) -> dict[str, Any]:
        self.documents.pop(name)
        return {"name": name, "deleted": True}

    def start_rebuild(self) -> dict[str, Any]:
        return self.knowledge_jobs.start_rebuild()

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.knowledge_jobs.get(job_id)

    def list_jobs(self) -> list[dict[str, Any]]:
        return list(self.knowledge_jobs.states)

    def live_version(self) -> str | None:
        return self.status.get("live")

    def indexed_files(self) -> set[str]:
        return {d["source"] for d in self.status.get("documents", [])}

    def index_status(self) -> dict[str, Any]:
        return dict(self.status)

    def rollback_index(self) -> dict[str, Any]:
        self.rollbacks += 1
        return {"live": "v0", "previous": "v1"}

    # alerts: the store's rules in a few lines (open → acknowledged → closed, by a named person)
    def add_alert(self, severity: str = "warning", target: str = "P-101", title: str = "Vibration rising",
                  state: str = "open") -> dict[str, Any]:
        alert = {"id": len(self.alert_list) + 1, "target": target, "cause": f"anomaly:{target}", "state": state,
                 "severity": severity, "title": title, "explanation": {}, "first_seen": 1_700_000_000_000,
                 "last_seen": 1_700_000_000_000 + len(self.alert_list), "count": 1, "escalations": 0,
                 "suppressed": 0, "acked_by": None, "acked_at": None, "closed_by": None, "closed_at": None,
                 "close_note": None, "events": []}
        self.alert_list.append(alert)
        self._alert_event(alert, "watch", "opened")
        return dict(alert)

    def _alert_event(self, alert: dict, actor: str, action: str) -> None:
        self.alert_log.append({"seq": len(self.alert_log) + 1, "alert_id": alert["id"], "ts": 0, "actor": actor,
                               "action": action, "detail": None, "alert": dict(alert)})

    def _find_alert(self, alert_id) -> dict[str, Any]:
        from tools.watch.alerts import AlertNotFoundError

        found = [a for a in self.alert_list if str(a["id"]) == str(alert_id)]
        if not found:
            raise AlertNotFoundError(f"no alert {alert_id}")
        return found[0]

    def list_alerts(self, state=None, severity=None, min_severity=None, target=None, since=None, limit=50,
                    offset=0) -> dict[str, Any]:
        from tools.watch.alerts import SEVERITIES

        rows = [a for a in reversed(self.alert_list)
                if (state is None or a["state"] == state or (state == "active" and a["state"] != "closed"))
                and (severity is None or a["severity"] == severity) and (target is None or a["target"] == target)
                and (min_severity is None or SEVERITIES.index(a["severity"]) >= SEVERITIES.index(min_severity))]
        page = rows[offset:offset + limit]
        return {"alerts": [dict(a) for a in page], "total": len(rows),
                "next_offset": offset + limit if offset + limit < len(rows) else None}

    def get_alert(self, alert_id) -> dict[str, Any]:
        return dict(self._find_alert(alert_id))

    def acknowledge_alert(self, alert_id, by: str) -> dict[str, Any]:
        from tools.watch.alerts import AlertStateError

        alert = self._find_alert(alert_id)
        if alert["state"] != "open":
            raise AlertStateError(f"alert {alert['id']} is already {alert['state']}")
        alert.update(state="acknowledged", acked_by=by, acked_at=1_700_000_100_000)
        self._alert_event(alert, by, "acknowledged")
        return dict(alert)

    def close_alert(self, alert_id, by: str, note: str = "") -> dict[str, Any]:
        from tools.watch.alerts import AlertStateError

        alert = self._find_alert(alert_id)
        if alert["state"] == "closed":
            raise AlertStateError(f"alert {alert['id']} was already closed by {alert['closed_by']}")
        alert.update(state="closed", closed_by=by, closed_at=1_700_000_200_000, close_note=note)
        self._alert_event(alert, by, "closed")
        return dict(alert)

    def alert_counts(self) -> dict[str, int]:
        from tools.watch.alerts import SEVERITIES

        return {s: sum(a["state"] != "closed" and a["severity"] == s for a in self.alert_list) for s in SEVERITIES}

    def alert_changes(self, cursor: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(e) for e in self.alert_log if e["seq"] > cursor][:limit]

    def alert_cursor(self) -> int:
        return len(self.alert_log)
