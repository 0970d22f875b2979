"""``AlertService``: the alerts of the watch, for the faces (REST API and its SSE stream, chat page).

A thin layer over ``AlertStore``: results are plain JSON-ready dicts, and the errors are the
store's (``AlertNotFoundError`` → 404, ``AlertStateError`` → 409, ``ToolInputError`` → 400 or,
for a filter the face already checked, 422). Who acknowledged or closed is the face's principal.
"""

from __future__ import annotations

from typing import Any

from tools.watch.alerts import AlertStore


class AlertService:
    def __init__(self, store: AlertStore):
        self.store = store

    def list_alerts(self, state: str | None = None, severity: str | None = None, min_severity: str | None = None,
                    target: str | None = None, since: int | None = None, limit: int = 50,
                    offset: int = 0) -> dict[str, Any]:
        """A page of alerts, newest (last seen) first: ``{"alerts", "total", "next_offset"}``."""
        return self.store.list(state, severity, min_severity, target, since, limit, offset).to_dict()

    def get_alert(self, alert_id: int | str) -> dict[str, Any]:
        """One alert with its history of events."""
        return self.store.get(alert_id).to_dict()

    def acknowledge_alert(self, alert_id: int | str, by: str) -> dict[str, Any]:
        return self.store.acknowledge(alert_id, by).to_dict()

    def close_alert(self, alert_id: int | str, by: str, note: str = "") -> dict[str, Any]:
        return self.store.close_alert(alert_id, by, note).to_dict()

    def alert_counts(self) -> dict[str, int]:
        """Active (open or acknowledged) alerts by severity, every severity present."""
        return self.store.active_counts()

    def alert_changes(self, cursor: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Changes after ``cursor`` (a change's ``seq``), oldest first, each with the alert as it is now."""
        return [c.to_dict() for c in self.store.changes_since(cursor, limit)]

    def alert_cursor(self) -> int:
        """The latest change's ``seq``: a stream that starts here sees only what happens next."""
        return self.store.cursor()

