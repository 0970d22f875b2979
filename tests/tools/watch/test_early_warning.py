"""The early-warning score on a generated correlated process: drift and a broken correlation are
alarmed with the right sensor named, a single spike is not, the model round-trips through JSON and
through a stream scored in pieces, and bad input is a clear error."""

import json

import numpy as np
import pytest

from tools.errors import ToolInputError
from tools.watch.early_warning import EarlyWarningModel, fit_model
from tools.watch.scoring import persistent, stretches

SENSORS = ["vibration", "current", "pressure", "flow", "temperature"]


def process(rows: int, seed: int, flip_current: bool = False) -> np.ndarray:
    """Two hidden drivers (load, suction) seen through five correlated sensors, plus a motor
    temperature that warms slowly (a random walk), as a pump's readings are."""
    rng = np.random.default_rng(seed)
    load, suction = rng.normal(size=rows), rng.normal(size=rows)
    noise = rng.normal(scale=0.3, size=(rows, 4))
    current = (-0.9 if flip_current else 0.9) * load
    x = np.column_stack([
        1.0 + 0.2 * (load + noise[:, 0]),  # vibration follows load
        10 + 2 * (current + noise[:, 1]),  # current follows load
        3 + 0.5 * (suction + noise[:, 2]),  # pressure follows suction
        50 + 5 * (0.7 * suction + 0.7 * load + noise[:, 3]),  # flow follows both
        60 + np.cumsum(rng.normal(scale=0.01, size=rows)),  # temperature: slow
    ])
    return x


@pytest.fixture(scope="module")
def model():
    return fit_model(process(600, seed=1), SENSORS)


def alarms(model, x):
    scores, _ = model.score(x)
    return scores, persistent(scores.over)


def test_normal_operation_raises_no_alarm_and_the_slow_sensor_is_judged_by_its_rate(model):
    assert [s for s, slow in zip(SENSORS, model.slow) if slow] == ["temperature"]
    for seed in (2, 3, 4):
        _, alarm = alarms(model, process(1200, seed))
        assert not alarm.any()


def test_a_drift_in_one_sensor_is_alarmed_and_that_sensor_named(model):
    x = process(1200, seed=5)
    x[600:, 2] += np.linspace(0, 3.0, 600)  # pressure creeps up to ~6 of its standard deviations
    scores, alarm = alarms(model, x)
    assert not alarm[:600].any()
    first = int(np.flatnonzero(alarm)[0])
    assert 600 < first < 1100
    assert alarm[first:].mean() > 0.9
    assert scores.top_sensors(first, 1)[0][0] == "pressure"
    assert scores.top_sensors(1199, 1)[0][0] == "pressure"
    name, share = scores.top_sensors(1199, 1)[0]
    assert share > 0.5


def test_a_broken_correlation_is_alarmed_though_each_sensor_stays_in_its_range(model):
    normal, broken = process(600, seed=6), process(600, seed=6, flip_current=True)
    # each sensor's own range is unchanged: only current's relation to the others is broken
    assert abs(broken[:, 1].std() - normal[:, 1].std()) < 0.2 * normal[:, 1].std()
    x = np.vstack([process(600, seed=7), broken])
    scores, alarm = alarms(model, x)
    assert not alarm[:600].any()
    assert alarm[650:].mean() > 0.9
    assert scores.top_sensors(900, 1)[0][0] in ("current", "vibration")


def test_a_single_spike_does_not_alert(model):
    x = process(1200, seed=8)
    x[700, 0] += 20 * 0.2  # one reading of 20 standard deviations
    x[900, 3] += 20 * 5
    scores, alarm = alarms(model, x)
    assert not alarm.any()


def test_persistence_needs_k_of_n_and_works_on_a_stream_in_pieces():
    over = np.array([0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0], dtype=bool)
    whole = persistent(over, k=3, n=4)
    assert whole.tolist() == [False] * 6 + [True] * 7
    pieces = np.concatenate([persistent(over[:5], 3, 4), persistent(over[5:], 3, 4, carry=over[:5])])
    assert pieces.tolist() == whole.tolist()
    assert stretches(whole) == [(6, 13)]
    with pytest.raises(ToolInputError, match="k <= n"):
        persistent(over, k=5, n=4)


def test_a_saved_model_and_a_stream_in_pieces_score_the_same(model, tmp_path):
    x = process(500, seed=9)
    whole, _ = model.score(x)
    model.save(tmp_path / "pump.json")
    loaded = EarlyWarningModel.load(tmp_path / "pump.json")
    again, _ = loaded.score(x)
    np.testing.assert_allclose(again.score, whole.score, rtol=1e-12)
    assert loaded.threshold == model.threshold and loaded.sensors == SENSORS
    state, parts = None, []
    for block in (x[:7], x[7:130], x[130:131], x[131:]):
        s, state = loaded.score(block, state)
        parts.append(s.score)
    np.testing.assert_allclose(np.concatenate(parts), whole.score, rtol=1e-9)
    np.testing.assert_allclose(whole.contributions.sum(axis=1), whole.score, rtol=1e-9)
    assert "pickle" not in (tmp_path / "pump.json").read_text() and json.loads((tmp_path / "pump.json").read_text())


def test_bad_input_is_a_clear_error(model, tmp_path):
    with pytest.raises(ToolInputError, match="4 columns, but the model has 5 sensors"):
        model.score(process(50, seed=1)[:, :4])
    x = process(50, seed=1)
    x[10, 2] = np.nan
    with pytest.raises(ToolInputError, match="row 10, sensor pressure"):
        model.score(x)
    with pytest.raises(ToolInputError, match="at least 120 are needed"):
        fit_model(process(60, seed=1), SENSORS)
    with pytest.raises(ToolInputError, match="not fitted"):
        EarlyWarningModel(sensors=SENSORS).score(x)
    with pytest.raises(ToolInputError, match="2-D"):
        model.score([1.0, 2.0, 3.0, 4.0, 5.0])
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(ToolInputError, match="not an early-warning model"):
        EarlyWarningModel.load(tmp_path / "bad.json")
    with pytest.raises(ToolInputError, match="every sensor is constant"):
        fit_model(np.ones((200, 5)), SENSORS)


def test_a_sensor_constant_over_the_reference_is_left_out_not_alarmed_on():
    x = process(1200, seed=10)
    x[:, 1] = 10.0  # current reads one value all through the reference
    model = fit_model(x[:600], SENSORS)
    assert model.ignored == ["current"]
    x[900:, 1] = 10.5  # …then moves by one step: a question for the sensor checks, not a process alarm
    scores, alarm = alarms(model, x)
    assert not alarm.any() and np.all(scores.contributions[:, 1] == 0)


def test_channel_scores_are_the_score_before_its_thresholds(model):
    x = process(400, seed=11)
    scores, _ = model.score(x)
    shift, spread = model.channel_scores(x)
    np.testing.assert_allclose(np.maximum(shift / model.threshold, spread / model.spread_threshold), scores.score,
                               rtol=1e-9)
    with pytest.raises(ToolInputError, match="not fitted"):
        EarlyWarningModel(sensors=SENSORS).channel_scores(x)
