"""The narrow services the faces type against (``assistant/services.py``): the real ones the
wiring builds and the fake the page's tests use must both offer every method of each Protocol,
with the same parameters — so a face tested against the fake works against the real thing."""

import inspect

import pytest

from assistant.services import (AlertService, InspectionService, KnowledgeAdmin, SensorService, TurnService,
                                WorkOrderService)
from assistant.settings import Settings
from tests.ui.fakes import FakeService

PROTOCOLS = {"turns": TurnService, "sensors": SensorService, "inspection": InspectionService,
             "work_orders": WorkOrderService, "knowledge": KnowledgeAdmin, "alerts": AlertService}


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(protocol).items()
            if callable(member) and not name.startswith("_")}


def _parameters(signature: inspect.Signature) -> list[tuple[str, inspect._ParameterKind]]:
    return [(p.name, p.kind) for p in signature.parameters.values() if p.name != "self"
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from assistant.wiring import build_services

    home = tmp_path_factory.mktemp("contract-home")
    services = build_services(Settings(home=home, embedding={"model": "fake"}, llm={"backend": "extractive"}))
    yield services
    services.close()


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return FakeService(tmp_path_factory.mktemp("contract-fake"))


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@pytest.mark.parametrize("which", ["real", "fake"])
def test_each_service_satisfies_its_protocol(name, which, request):
    service = getattr(request.getfixturevalue(which), name)
    protocol = PROTOCOLS[name]
    assert isinstance(service, protocol)
    for method, wanted in _methods(protocol).items():
        got = inspect.signature(getattr(service, method))
        missing = [p for p in _parameters(wanted) if p not in _parameters(got)]
        assert missing == [], f"{which} {name}.{method} lacks {missing}"


def test_a_protocol_check_can_fail():
    """isinstance against a Protocol is a real check: an object without the methods is refused."""
    class Partial:
        def now(self):
            return None

    assert not isinstance(Partial(), SensorService)
    assert "sensor_series" in _methods(SensorService)


def test_the_real_turn_service_refuses_what_its_limits_refuse(real):
    from assistant.errors import ValidationError

    with pytest.raises(ValidationError, match="longer than"):
        real.turns.ask("x" * (real.turns.max_question_chars + 1))
    with pytest.raises(ValidationError, match="max_tokens"):
        real.turns.ask("what is the normal pressure?", max_tokens=real.turns.max_answer_tokens + 1)
    with pytest.raises(ValidationError, match="conversation id"):
        real.turns.ask("hello", thread_id="../etc")
    assert real.turns.turns_in_flight == 0  # refused before admission: no slot is held


@pytest.mark.parametrize("which", ["real", "fake"])
def test_alert_services_behave_alike(which, request):
    """The fake the page's tests use keeps the real service's rules: open → acknowledged → closed,
    counts of active alerts by severity, changes after a cursor, and the same errors."""
    from tools.errors import NotFoundError, ToolConflictError

    bundle = request.getfixturevalue(which)
    alerts = bundle.alerts
    if which == "real":
        def add(severity, target):
            return bundle.parts.alert_store.raise_alert(target, f"anomaly:{target}", severity, "x").alert.id
    else:
        def add(severity, target):
            return bundle.add_alert(severity, target)["id"]
    cursor = alerts.alert_cursor()
    before = alerts.alert_counts()
    first, second = add("alarm", "P-201"), add("info", "P-202")
    counts = alerts.alert_counts()
    assert counts["alarm"] == before["alarm"] + 1 and counts["info"] == before["info"] + 1
    assert set(counts) == {"info", "warning", "alarm", "critical"}
    assert alerts.acknowledge_alert(first, "ana")["state"] == "acknowledged"
    with pytest.raises(ToolConflictError):
        alerts.acknowledge_alert(first, "ana")
    closed = alerts.close_alert(second, "boss", "done")
    assert (closed["state"], closed["closed_by"], closed["close_note"]) == ("closed", "boss", "done")
    with pytest.raises(ToolConflictError):
        alerts.close_alert(second, "boss")
    with pytest.raises(NotFoundError):
        alerts.get_alert(99_999)
    assert alerts.alert_counts()["info"] == before["info"]
    changes = alerts.alert_changes(cursor)
    assert [(c["alert_id"], c["action"]) for c in changes] == [
        (first, "opened"), (second, "opened"), (first, "acknowledged"), (second, "closed")]
    assert alerts.alert_cursor() == changes[-1]["seq"]
    page = alerts.list_alerts(state="active", target="P-201", limit=1)
    assert [a["id"] for a in page["alerts"]] == [first] and page["total"] == 1 and page["next_offset"] is None
