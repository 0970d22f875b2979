"""Service operations besides asking: sensors, inspections, work orders, knowledge, readiness.

A mixin of ``assistant.service.Service`` (it uses the service's stores and settings), kept in
its own module so the agent turn logic and the faces' plain operations stay apart. The REST API,
the chat page's admin tab and the CLI call these; they return plain JSON-ready dicts and raise
``OnsiteError`` subclasses (``NotFoundError`` 404, ``ValidationError`` 400, ``IndexBusyError`` 409,
``ModelBusyError`` 429 ...) that each face turns into its own message.

Times in results are ISO 8601 in the site's time zone; naive datetimes given to these methods are
read as site-local time, as the sensor tools do.
"""

from __future__ import annotations

import logging
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.errors import IndexBusyError, IndexError_, OnsiteError, ValidationError
from assistant.jobs import (KnowledgeJobs, NotFoundError, check_document_bytes, list_documents, safe_document_name,
                            write_document)

log = logging.getLogger(__name__)

MAX_SERIES_DAYS = 31
MAX_SERIES_POINTS = 2000
AUTO_BUCKETS_S = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
INSPECTIONS_AT_ONCE = 2
LOW_DISK_MB = 200


class NoEarlierVersionError(IndexError_):
    http_status = 409
    error_kind = "no_earlier_version"


class Operations:
    """Mixed into Service; relies on ``self.settings``, ``self.site``, ``self.sensors``,
    ``self.work_orders``, ``self.uploads``, ``self.products``, ``self.registry``, ``self.audit``,
    ``self.embedder``, ``self.retriever``, ``self.loaded``, ``self.turns_in_flight``."""

    # ---- sensors -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The sensor tools' clock (a simulated one in tests), so windows line up with the data."""
        clock = getattr(self.registry.get("sensor_latest"), "clock", None)
        return clock() if clock else datetime.now(UTC)

    def _iso(self, ms: int) -> str:
        from tools.sensors.store import from_ms

        return from_ms(ms, self.site.tz).isoformat(timespec="seconds")

    def _sensor(self, sensor_id: str):
        try:
            return self.site.sensor(sensor_id)
        except KeyError:
            raise NotFoundError(f"no sensor {sensor_id!r} in the site profile") from None

    def list_sensors(self) -> list[dict[str, Any]]:
        """Every sensor of the site profile with its latest reading and status (normal, warning,
        alarm, trip, stale data, no_data ...), zone by zone."""
        from tools.base import call

        tool = self.registry.get("sensor_latest")
        readings: dict[str, dict] = {}
        for zone in self.site.zones:
            result = call(tool, {"target": zone.id})
            for row in result.data.get("readings", []) if result.ok else []:
                readings[row["sensor_id"]] = row
        out = []
        for s in self.site.sensors:
            row = readings.get(s.id, {"status": "no_data"})
            out.append({"id": s.id, "name": s.name, "zone": s.zone, "asset": s.asset, "metric": s.metric,
                        "unit": s.unit, "status": row.get("status"), "value": row.get("value"),
                        "ts": row.get("ts"), "stale": row.get("stale")})
        return out

    def sensor_latest(self, sensor_id: str) -> dict[str, Any]:
        """The newest reading of one sensor, judged against the limits in force now."""
        from tools.base import call

        s = self._sensor(sensor_id)
        result = call(self.registry.get("sensor_latest"), {"target": s.id})
        if not result.ok:
            raise OnsiteError(result.error or "the sensor could not be read")
        row = next((r for r in result.data["readings"] if r["sensor_id"] == s.id), {"status": "no_data"})
        return {"id": s.id, "name": s.name, "zone": s.zone, "asset": s.asset, "metric": s.metric, "unit": s.unit,
                "as_of": result.data.get("as_of"), "summary": result.summary,
                **{k: v for k, v in row.items() if k not in ("sensor_id", "name", "metric", "unit")}}

    def sensor_series(self, sensor_id: str, start: datetime | None = None, end: datetime | None = None,
                      bucket_s: int | None = None) -> dict[str, Any]:
        """min / mean / max / last per time bucket over ``start``..``end`` (default: the last
        24 h; at most 31 days and 2000 buckets; ``bucket_s`` chosen for ≤ 500 buckets if omitted)."""
        from tools.sensors.store import to_ms

        s = self._sensor(sensor_id)
        tz = self.site.tz
        end = self.now() if end is None else (end if end.tzinfo else end.replace(tzinfo=tz))
        start = end - timedelta(hours=24) if start is None else (start if start.tzinfo else start.replace(tzinfo=tz))
        span = (end - start).total_seconds()
        if span <= 0:
            raise ValidationError("'from' must be before 'to'")
        if span > MAX_SERIES_DAYS * 86400:
            raise ValidationError(f"a series covers at most {MAX_SERIES_DAYS} days")
        if bucket_s is None:
            bucket_s = next((b for b in AUTO_BUCKETS_S if span / b <= 500), AUTO_BUCKETS_S[-1])
        if bucket_s < 1:
            raise ValidationError("the bucket must be at least 1 second")
        if span / bucket_s > MAX_SERIES_POINTS:
            raise ValidationError(f"{span / bucket_s:.0f} buckets asked; at most {MAX_SERIES_POINTS} — "
                                  "choose a wider bucket or a shorter window")
        buckets = self.sensors.buckets(s.id, start, end, int(bucket_s))
        active = self.site.limits_for(s, end)
        return {"id": s.id, "name": s.name, "unit": s.unit, "metric": s.metric,
                "from": self._iso(to_ms(start)), "to": self._iso(to_ms(end)), "bucket_s": int(bucket_s),
                "points": [{"ts": self._iso(b.start), "count": b.count, "min": b.min, "mean": round(b.mean, 4),
                            "max": b.max, "last": b.last} for b in buckets],
                "limits_now": None if active is None else {"period": active.period, **active.limit.thresholds()}}

    # ---- photos and inspections -----------------------------------------------------------------

    def save_photo(self, data: bytes, filename: str = "") -> dict[str, Any]:
        """Check and keep a photo (PNG/JPEG within the byte and pixel limits); returns its id,
        to pass as ``photos`` to ``ask`` or to ``inspect_upload``'s result."""
        image_id = self.uploads.save(data, filename)
        info = self.uploads.info(image_id)
        return {"image_id": image_id, "width": info.get("width"), "height": info.get("height"),
                "bytes": info.get("bytes")}

    def photo_path(self, image_id: str) -> Path:
        """The stored file of an upload id (404 when unknown)."""
        from tools.inspection.images import InspectionError

        try:
            return self.uploads.path(image_id)
        except InspectionError as exc:
            raise NotFoundError(exc.user_message) from None

    def list_products(self) -> list[str]:
        """Products photos can be inspected against (fitted products and ``detector:<name>``)."""
        return self.products.names()

    def inspect_upload(self, data: bytes, filename: str = "", product: str | None = None) -> dict[str, Any]:
        """Store a photo and inspect it: verdict, score / threshold, defect boxes and the id of
        an annotated copy. ``product`` may be omitted when the site has exactly one."""
        from assistant.llm.base import ModelBusyError
        from tools.base import call
        from tools.inspection.images import InspectionError

        if not product:
            names = self.products.names()
            if len(names) != 1:
                raise ValidationError("say which product the photo shows; known: " + (", ".join(names) or "none yet"))
            product = names[0]
        slots = self._inspection_slots()
        if not slots.acquire(blocking=False):
            raise ModelBusyError("inspections are busy; try again in a few seconds", retry_after_s=3.0)
        try:
            image_id = self.uploads.save(data, filename)
            result = call(self.registry.get("inspect_image"), {"image_id": image_id, "product": product})
        finally:
            slots.release()
        if not result.ok:
            raise InspectionError(result.error or "the inspection failed")
        return {"image_id": image_id, "summary": result.summary, **result.data}

    def _inspection_slots(self) -> threading.BoundedSemaphore:
        slots = self.__dict__.get("_inspections")
        if slots is None:
            slots = self.__dict__.setdefault("_inspections", threading.BoundedSemaphore(INSPECTIONS_AT_ONCE))
        return slots

    # ---- work orders ---------------------------------------------------------------------------

    def list_work_orders(self, status: str | None = None, asset: str | None = None, limit: int = 50) -> list[dict]:
        """Newest first; optionally one status (pending, open, rejected, closed) or one asset."""
        from tools.workorders.store import STATUSES

        if status is not None and status not in STATUSES:
            raise ValidationError(f"status must be one of {', '.join(STATUSES)}")
        return [o.to_dict() for o in self.work_orders.list(status, asset, max(1, min(int(limit), 500)))]

    def get_work_order(self, order_id: str) -> dict[str, Any]:
        """One order with its history of events."""
        from tools.workorders.store import WorkOrderError

        try:
            return self.work_orders.get(order_id).to_dict()
        except WorkOrderError:
            raise NotFoundError(f"no work order {order_id}") from None

    def create_work_order(self, asset: str, problem: str, priority: str = "medium", evidence: list[str] | None = None,
                          requested_by: str = "local") -> dict[str, Any]:
        """Propose an order for an asset of the site; it is stored as pending until a person
        decides (``decide_work_order``)."""
        from tools.base import call
        from tools.workorders.tools import CreateWorkOrder

        tool = CreateWorkOrder(self.work_orders, {a.id for a in self.site.assets}, requested_by=requested_by)
        result = call(tool, {"asset": asset, "problem": problem, "priority": priority, "evidence": list(evidence or [])})
        if not result.ok:
            raise ValidationError(result.error or "the work order was not created")
        return result.data

    def decide_work_order(self, order_id: str, approve: bool, by: str, reason: str) -> dict[str, Any]:
        """A person approves (pending → open) or rejects (pending → rejected) an order."""
        from tools.workorders.tools import approve as approve_order, reject as reject_order

        self.get_work_order(order_id)  # 404 before 409
        order = (approve_order if approve else reject_order)(self.work_orders, order_id, by, reason)
        log.info("work order %s %s by %s: %s", order_id, order.status, by, reason)
        return order.to_dict()

    def close_work_order(self, order_id: str, by: str, reason: str) -> dict[str, Any]:
        """Close an open order (the work is done)."""
        from tools.workorders.tools import close

        self.get_work_order(order_id)
        return close(self.work_orders, order_id, by, reason).to_dict()

    # ---- knowledge ---------------------------------------------------------------------------

    @property
    def documents_dir(self) -> Path:
        """Where uploaded documents are kept (indexed together with the live index's sources)."""
        return self.settings.home / "documents"

    def list_documents(self) -> list[dict[str, Any]]:
        return list_documents(self.documents_dir)

    def save_document(self, filename: str, data: bytes) -> dict[str, Any]:
        """Keep an uploaded document for the next rebuild: PDF, Markdown, text, HTML or DOCX,
        within the size limit, under a safe base name (an existing file of that name is replaced)."""
        name = safe_document_name(filename, self.settings.ingest.ignore)
        max_bytes = int(min(self.settings.ingest.max_file_mb, self.settings.api.max_upload_mb) * 1024 * 1024)
        check_document_bytes(name, data, max_bytes)
        path, replaced = write_document(self.documents_dir, name, data)
        log.info("document %s saved (%d bytes%s)", name, len(data), ", replaced" if replaced else "")
        return {"name": name, "bytes": len(data), "replaced": replaced}

    def delete_document(self, name: str) -> dict[str, Any]:
        """Remove an uploaded document (it leaves the index at the next rebuild)."""
        known = {d["name"]: d for d in self.list_documents()}
        if name not in known:
            raise NotFoundError(f"no uploaded document named {name!r}")
        (self.documents_dir / name).unlink()
        return {"name": name, "deleted": True}

    def rebuild_sources(self) -> list[Path]:
        """What a rebuild indexes: the live version's sources that still exist (the bundled
        samples when the index was built from them) plus the documents folder."""
        from knowledge.versions import IndexFolder

        folder = IndexFolder(self.settings.index_dir)
        current = folder.current()
        sources: list[Path] = []
        if current is not None:
            for raw in folder.manifest(current).get("sources") or []:
                p = Path(raw)
                if p.exists() and p.resolve() != self.documents_dir.resolve():
                    sources.append(p)
                elif not p.exists():
                    log.warning("index source %s no longer exists; the rebuild leaves it out", p)
        self.documents_dir.mkdir(parents=True, exist_ok=True)
        return [*sources, self.documents_dir]

    @property
    def knowledge_jobs(self) -> KnowledgeJobs:
        """Background rebuilds: ``start_rebuild()``, ``get(job_id)``, ``list()``."""
        jobs = self.__dict__.get("_knowledge_jobs")
        if jobs is None:
            jobs = self.__dict__.setdefault("_knowledge_jobs",
                                            KnowledgeJobs(self.settings, self.embedder, self.rebuild_sources))
        return jobs

    def index_status(self) -> dict[str, Any]:
        """Versions (the live one marked), the live version's documents, chunks, failed files with
        reasons, passages flagged as instructions, and the running rebuild if any."""
        from knowledge.versions import IndexFolder

        folder = IndexFolder(self.settings.index_dir)
        status: dict[str, Any] = {"live": folder.current(), "versions": []}
        if status["live"] is not None:
            status = self.retriever.index.status()
            manifest = folder.manifest(status["live"])
            status["flagged"] = manifest.get("flagged", [])
            status["flagged_count"] = manifest.get("flagged_count", len(status["flagged"]))
        status.pop("home", None)
        status["documents_dir"] = self.list_documents()
        status["rebuild"] = self.knowledge_jobs.running()
        return status

    def rollback_index(self) -> dict[str, Any]:
        """Make the newest sound version older than the live one live again."""
        from knowledge.versions import IndexFolder

        folder = IndexFolder(self.settings.index_dir)
        previous = folder.current()
        try:
            live = folder.rollback()
        except IndexBusyError:
            raise
        except IndexError_ as exc:
            raise NoEarlierVersionError(exc.user_message) from None
        log.info("index rolled back from %s to %s", previous, live)
        return {"live": live, "previous": previous}

    # ---- health ---------------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        """For /readyz: ready when a sound index version is live and the disk is not full;
        the model mode (llm or labelled extractive), index version and manifest check, the
        queue and the free disk space."""
        from knowledge.versions import IndexFolder

        folder = IndexFolder(self.settings.index_dir)
        current = folder.current()
        problems = self._verified(folder, current) if current else ["no index built"]
        disk = shutil.disk_usage(self.settings.home)
        free_mb = disk.free // (1024 * 1024)
        reasons = ([f"index: {'; '.join(problems)}"] if problems else []) + \
            ([f"disk: only {free_mb} MB free"] if free_mb < LOW_DISK_MB else [])
        return {
            "ready": not reasons, "reason": "; ".join(reasons) or None,
            "model": {"mode": self.loaded.mode, "backend": self.loaded.backend,
                      "name": getattr(self.loaded.model, "name", None), "reason": self.loaded.reason},
            "index": {"version": current, "manifest_ok": not problems, "problems": problems},
            "queue": {"in_flight": self.turns_in_flight, "capacity": self.settings.llm.queue_depth},
            "disk": {"free_mb": free_mb, "total_mb": disk.total // (1024 * 1024)},
            "rebuild": (self.knowledge_jobs.running() or {}).get("id"),
        }

    def _verified(self, folder, name: str) -> list[str]:
        """The manifest check of a version. Checksums read every file, so the result is kept
        while the files' sizes and modification times stay the same."""
        try:
            files = sorted(folder.manifest(name).get("checksums", {}))
            root = folder.versions_dir / name
            key = (name, tuple((f, (root / f).stat().st_mtime_ns, (root / f).stat().st_size) for f in files))
        except (OSError, ValueError):
            return folder.verify(name)
        cache = self.__dict__.setdefault("_verified_versions", {})
        if key not in cache:
            cache.clear()
            cache[key] = folder.verify(name)
        return cache[key]
