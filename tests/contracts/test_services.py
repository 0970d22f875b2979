"""The narrow services the faces type against (``assistant/services.py``): the real ones the
wiring builds and the fake the page's tests use must both offer every method of each Protocol,
with the same parameters — so a face tested against the fake works against the real thing."""

import inspect

import pytest

from assistant.services import InspectionService, KnowledgeAdmin, SensorService, TurnService, WorkOrderService
from assistant.settings import Settings
from tests.ui.fakes import FakeService

PROTOCOLS = {"turns": TurnService, "sensors": SensorService, "inspection": InspectionService,
             "work_orders": WorkOrderService, "knowledge": KnowledgeAdmin}


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
