"""The narrow services the faces (REST API, OpenAI endpoint, chat page, CLI) call, as Protocols.

Each face types against these and nothing else; ``assistant/wiring.py`` builds the real ones,
and the fakes the UI tests use are checked against the same Protocols
(``tests/contracts/test_services.py``). Results are plain JSON-ready dicts; errors are the
packages' own (``knowledge.errors``, ``tools.errors``, ``assistant.errors``), turned into HTTP
statuses and messages at each face by ``assistant.errors.http_status`` / ``user_message``.

- ``TurnService`` (``assistant/turns.py``): questions and approvals, one conversation per id;
- ``SensorService`` (``tools/sensors/service.py``): the site's sensors and their readings;
- ``InspectionService`` (``tools/inspection/service.py``): photos and defect inspection;
- ``WorkOrderService`` (``tools/workorders/service.py``): orders and their decisions;
- ``KnowledgeAdmin`` (``knowledge/admin.py``): uploaded documents, rebuilds, index status;
- ``AlertService`` (``tools/watch/service.py``): the watch's alerts, acknowledged and closed by people.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from assistant.types import Answer, Decision, Event


@runtime_checkable
class TurnService(Protocol):
    """Ask questions, decide proposed actions, read conversations."""

    max_question_chars: int
    max_answer_tokens: int
    # Called with (answer dict, streamed token count) after every turn, whichever face asked.
    observers: list[Callable[[dict, int], None]]

    def ask(self, question: str, *, thread_id: str | None = None, scope: dict | None = None,
            photos: list[str] | tuple[str, ...] = (), user: str = "local", filters: dict | None = None,
            cancel: threading.Event | None = None, max_tokens: int | None = None) -> Iterator[Event]:
        """Validate and admit a turn now (errors raise before any event); the iterator runs it."""

    def resume(self, thread_id: str, decision: Decision, user: str = "local") -> Iterator[Event]:
        """Continue a turn paused for approval with a person's decision."""

    def answer(self, question: str, **kw: Any) -> Answer:
        """Run a turn to the end (for callers that do not stream)."""

    def history(self, thread_id: str) -> list[dict]:
        """The conversation's messages, ``{"role", "content"}``."""

    def pending(self, thread_id: str) -> list[dict]:
        """Actions of the conversation waiting for a person's decision."""

    @property
    def turns_in_flight(self) -> int:
        """Turns admitted and not finished."""


@runtime_checkable
class SensorService(Protocol):
    def now(self) -> datetime:
        """The sensors' clock (simulated in tests), so windows line up with the data."""

    def list_sensors(self) -> list[dict[str, Any]]:
        """Every sensor with its latest reading and status."""

    def sensor_latest(self, sensor_id: str) -> dict[str, Any]:
        """The newest reading of one sensor, judged against the limits in force now."""

    def sensor_series(self, sensor_id: str, start: datetime | None = None, end: datetime | None = None,
                      bucket_s: int | None = None) -> dict[str, Any]:
        """min / mean / max / last per time bucket."""


@runtime_checkable
class InspectionService(Protocol):
    def save_photo(self, data: bytes, filename: str = "") -> dict[str, Any]:
        """Check and keep a photo; returns its ``image_id`` and size."""

    def photo_path(self, image_id: str) -> Path:
        """The stored file of an upload id."""

    def list_products(self) -> list[str]:
        """Products photos can be inspected against."""

    def inspect_upload(self, data: bytes, filename: str = "", product: str | None = None) -> dict[str, Any]:
        """Store a photo and inspect it: verdict, score, boxes, annotated copy."""

    def open_photo(self, image_id: str) -> Any:
        """A stored photo as an RGB pixel array (safely decoded), e.g. an annotated copy."""

    def fit_product(self, name: str, photos: list[tuple[str, bytes]] | None = None,
                    upload_ids: list[str] | None = None, golden: bool = False) -> dict[str, Any]:
        """Learn a product from 3–200 photos of good items (``golden``: 1–20 golden photos of one
        fixed view, compared directly); nothing changes when it fails."""

    def start_fit_product(self, name: str, photos: list[tuple[str, bytes]] | None = None,
                          upload_ids: list[str] | None = None, golden: bool = False) -> dict[str, Any]:
        """``fit_product`` in the background (photos checked at once); returns the job."""

    def get_fit_job(self, job_id: str) -> dict[str, Any]:
        """A fitting job: state running / done / failed, the product when done, the error when failed."""

    def describe_product(self, name: str) -> dict[str, Any]:
        """References, threshold and the references' leave-one-out scores against it."""

    def list_product_details(self) -> list[dict[str, Any]]:
        """``describe_product`` of every product."""

    def delete_product(self, name: str) -> dict[str, Any]:
        """Forget a fitted product."""


@runtime_checkable
class WorkOrderService(Protocol):
    def list_work_orders(self, status: str | None = None, asset: str | None = None,
                         limit: int = 50) -> list[dict]: ...

    def get_work_order(self, order_id: str) -> dict[str, Any]: ...

    def create_work_order(self, asset: str, problem: str, priority: str = "medium",
                          evidence: list[str] | None = None, requested_by: str = "local") -> dict[str, Any]: ...

    def decide_work_order(self, order_id: str, approve: bool, by: str, reason: str) -> dict[str, Any]: ...

    def close_work_order(self, order_id: str, by: str, reason: str) -> dict[str, Any]: ...


@runtime_checkable
class KnowledgeAdmin(Protocol):
    def list_documents(self) -> list[dict[str, Any]]: ...

    def save_document(self, filename: str, data: bytes) -> dict[str, Any]: ...

    def delete_document(self, name: str) -> dict[str, Any]: ...

    def start_rebuild(self) -> dict[str, Any]:
        """Start a background rebuild; returns the job (409 while one runs)."""

    def get_job(self, job_id: str) -> dict[str, Any]: ...

    def list_jobs(self) -> list[dict[str, Any]]: ...

    def index_status(self) -> dict[str, Any]: ...

    def rollback_index(self) -> dict[str, Any]: ...

    def live_version(self) -> str | None:
        """The name of the live index version, None before the first build."""

    def indexed_files(self) -> set[str]:
        """The source files of the live version's documents."""


@runtime_checkable
class AlertService(Protocol):
    def list_alerts(self, state: str | None = None, severity: str | None = None, min_severity: str | None = None,
                    target: str | None = None, since: int | None = None, limit: int = 50,
                    offset: int = 0) -> dict[str, Any]:
        """``{"alerts", "total", "next_offset"}``, newest first; ``state`` may be "active"."""

    def get_alert(self, alert_id: int | str) -> dict[str, Any]: ...

    def acknowledge_alert(self, alert_id: int | str, by: str) -> dict[str, Any]: ...

    def close_alert(self, alert_id: int | str, by: str, note: str = "") -> dict[str, Any]: ...

    def alert_counts(self) -> dict[str, int]:
        """Active alerts by severity (every severity present)."""

    def alert_changes(self, cursor: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Changes after ``cursor`` (their ``seq``), oldest first, each with the alert as it is now."""

    def alert_cursor(self) -> int:
        """The latest change's ``seq`` (0 when there is none)."""


@dataclass
class Services:
    """What a face is given: the narrow services, the site profile, the settings and readiness."""

    settings: Any  # assistant.settings.Settings
    site: Any  # tools.site.SiteProfile
    turns: TurnService
    sensors: SensorService
    inspection: InspectionService
    work_orders: WorkOrderService
    knowledge: KnowledgeAdmin
    readiness: Callable[[], dict[str, Any]]
    close: Callable[[], None] = lambda: None
    parts: Any = None  # the concrete parts (assistant.wiring.Parts): the sensor feed and tests use them
    alerts: AlertService | None = None  # None only for bundles built without the watch's store
