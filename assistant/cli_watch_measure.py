"""`onsite eval watch-sim`, `onsite bench watch`, `onsite bench alert-latency`: the site watch's
figures on the simulator, under load, and end to end through a real server (registered on the
`eval` / `bench` groups by ``register``; the work is in ``evals/``, imported when a command runs)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from assistant.cli_common import fail as _fail
from assistant.errors import OnsiteError


def eval_watch_sim(
    seeds: int = typer.Option(10, "--seeds", min=1, max=100),
    hours: Optional[float] = typer.Option(None, "--hours", min=1, max=24 * 60, help="Length of every fault run "
                                          "(default: per fault, from its onset past its alarm)."),
    faults: str = typer.Option("all", "--faults", help="'all', 'none' (fault-free runs only) or a comma-separated list of kind[:TARGET][@HOURS]."),
    fault_free_days: float = typer.Option(30.0, "--fault-free-days", min=0, max=366),
    fault_free_seeds: Optional[int] = typer.Option(None, "--fault-free-seeds", min=1, max=100,
                                                   help="Fault-free runs (default: --seeds)."),
    pass_s: float = typer.Option(300.0, "--pass-s", min=1, help="Simulated seconds between watch passes."),
    fault_free_pass_s: float = typer.Option(3600.0, "--fault-free-pass-s", min=1),
    window_min: float = typer.Option(60.0, "--instrument-window-min", min=1, help="An instrument fault counts as "
                                     "caught when its alert opens within this many minutes of the onset."),
    jobs: int = typer.Option(1, "--jobs", min=1, max=32, help="Runs in parallel processes."),
    watch_settings: Optional[str] = typer.Option(None, "--watch-settings", help="JSON overrides of the watch "
                                                 "settings, e.g. '{\"limit_min_severity\": \"warning\"}'."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every injectable fault x seeds on the simulator, the watch pass by pass: detected, before the
    alarm or trip, lead time; false alert events per zone per simulated week on fault-free months."""
    from evals.watch_sim import evaluate_watch_sim

    try:
        overrides = json.loads(watch_settings) if watch_settings else None
        result = evaluate_watch_sim(seeds=seeds, faults=faults, hours=hours, fault_free_days=fault_free_days,
                                    pass_s=pass_s, fault_free_pass_s=fault_free_pass_s,
                                    instrument_window_min=window_min, jobs=jobs, fault_free_seeds=fault_free_seeds,
                                    watch_settings=overrides,
                                    progress=lambda m: typer.echo(m, err=True))
    except ValueError as exc:
        _fail(OnsiteError(str(exc)))
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    for name, r in result["faults"].items():
        lead = r["lead_h"] if r["lead_h"]["median"] is not None else None
        typer.echo(f"{name}: detected {r['detected']}/{r['runs']}, in time {r['before_alarm']}/{r['runs']}"
                   + (f", lead median {lead['median']} h (min {lead['min']})" if lead else "")
                   + (f", delay median {r['delay_min']['median']:.0f} min" if r["delay_min"]["median"] is not None
                      else "") + f", false alerts/run {r['false_alerts_per_run']}")
    typer.echo(f"all before alarm: {result['all_before_alarm']}  bearing wear lead min: "
               f"{result['bearing_wear_lead_h_min']} h  false alerts per zone-week (worst zone): "
               f"{result['false_alerts_per_zone_week']}  ({result['seconds']:.0f} s)")


def bench_watch(
    sensors: int = typer.Option(200, "--sensors", min=2, max=5000),
    rate: float = typer.Option(1.0, "--rate", min=0.01, max=10, help="Readings per second per sensor."),
    minutes: float = typer.Option(10.0, "--minutes", min=0.5, max=240, help="Site time measured."),
    interval_s: Optional[float] = typer.Option(None, "--interval-s", help="Seconds between passes (default: the "
                                               "watch settings')."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """CPU of the watch (and, apart, of writing the readings) on a synthetic site: % of one core."""
    from evals.watch_load import run_watch_load

    try:
        result = run_watch_load(sensors=sensors, rate=rate, minutes=minutes, interval_s=interval_s,
                                progress=lambda m: typer.echo(m, err=True))
    except ValueError as exc:
        _fail(OnsiteError(str(exc)))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 1))


def bench_alert_latency(
    trials: int = typer.Option(10, "--trials", min=1, max=200),
    interval_s: Optional[float] = typer.Option(None, "--interval-s", min=1, help="The server's watch interval "
                                               "(ONSITE_WATCH__INTERVAL_S, at least 1; default: its settings')."),
    home: Optional[str] = typer.Option(None, "--home", help="A data home with a built index, copied first "
                                       "(default: a new temporary home; the first start indexes the samples)."),
    port: int = typer.Option(8731, "--port", min=1024, max=65535),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A real `onsite serve` with its own mosquitto: a reading that breaks a limit is published on the
    sensor's topic; time until the alert arrives on GET /api/v1/alerts/stream (SSE), median / p95 ms."""
    from evals.alert_latency import run_alert_latency

    try:
        result = run_alert_latency(trials=trials, interval_s=interval_s, home=home, port=port,
                                   progress=lambda m: typer.echo(m, err=True))
    except (OnsiteError, RuntimeError, ValueError) as exc:
        _fail(exc if isinstance(exc, OnsiteError) else OnsiteError(str(exc)))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 1))


def register(eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    eval_app.command("watch-sim")(eval_watch_sim)
    bench_app.command("watch")(bench_watch)
    bench_app.command("alert-latency")(bench_alert_latency)
