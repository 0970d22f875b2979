"""`onsite eval …` and `onsite bench …`: quality on evaluation sets and speed figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from assistant.cli_common import fail as _fail
from assistant.errors import OnsiteError
from assistant.settings import Settings

def _model_and_embedder(settings: Settings, model: str | None, configured: bool):
    """(settings, embedder, loaded model) for a measurement: ``--model`` when given; otherwise the
    configured model (``configured``) or None, which the evaluation takes as extractive mode."""
    from evals.model_choice import load_eval_model
    from knowledge.embedding import make_embedder

    embedder = make_embedder(settings.embedding, settings.home)
    if not model and not configured:
        return settings, embedder, None
    settings, loaded = load_eval_model(settings, model, embedder)
    return settings, embedder, loaded


eval_app = typer.Typer(no_args_is_help=True, help="Measure quality on evaluation sets.")
bench_app = typer.Typer(no_args_is_help=True, help="Measure speed.")

@eval_app.command("retrieval")
def eval_retrieval(
    dataset_dir: Path,
    as_json: bool = typer.Option(False, "--json"),
    details: bool = typer.Option(False, "--details", help="Also print each query's ranking (with --json)."),
) -> None:
    """recall@1/5/10, MRR@10, index build seconds and query latency on an evaluation set."""
    from evals.retrieval import evaluate_retrieval

    try:
        result = evaluate_retrieval(dataset_dir)
    except OnsiteError as exc:
        _fail(exc)
    if not details:
        result.pop("per_query", None)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    typer.echo(
        f"{result['dataset']}: {result['queries']} queries over {result['documents']} documents ({result['chunks']} chunks)\n"
        f"  recall@1 {result['recall@1']:.3f}  recall@5 {result['recall@5']:.3f}  recall@10 {result['recall@10']:.3f}  "
        f"MRR@10 {result['mrr@10']:.3f}\n"
        f"  index {result['index_seconds']:.1f} s  query p50 {result['latency_ms']['p50']} ms  p95 {result['latency_ms']['p95']} ms"
    )


@eval_app.command("answers")
def eval_answers(
    dataset_dir: Path,
    as_json: bool = typer.Option(False, "--json"),
    unanswerable: bool = typer.Option(
        False, "--unanswerable",
        help="Also ask each question with its gold documents excluded: abstention rate there, wrong abstention "
             "on the normal run, AUROC of the answerability score and the trade-off curve."),
    model: Optional[str] = typer.Option(None, "--model", help="Catalogue name or .gguf path to answer with "
                                        "(default: the configured model, or extractive mode)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Ask a sample of this many questions."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
) -> None:
    """Through the whole agent: answers from the model that passed the checks, fallbacks, token
    recall, citation hit, abstention, time to first answer token and turn time."""
    from evals.answers import agent_asker, evaluate_answers
    from evals.model_choice import model_label

    settings = Settings()
    try:
        settings, embedder, loaded = _model_and_embedder(settings, model, configured=True)
        result = evaluate_answers(dataset_dir, settings, embedder=embedder, mode=loaded.mode, unanswerable=unanswerable,
                                  asker=agent_asker(settings, loaded), limit=limit, seed=seed,
                                  model=model_label(settings, loaded))
    except OnsiteError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    typer.echo(
        f"{result['dataset']} ({result['model']}): {result['questions']} questions\n"
        f"  answer token recall {result['answer_token_recall']:.3f}  citation hit rate {result['citation_hit_rate']:.3f}"
        f"  cited passage has the answer {result['cited_passage_has_answer_rate']:.3f}\n"
        f"  from the model {result['model_answer_rate']:.3f} (first try {result['model_answer_first_try_rate']:.3f})"
        f"  fell back {result['fallback_rate']:.3f}\n"
        f"  first token p50 {result['ttft_ms']['p50']} ms  p95 {result['ttft_ms']['p95']} ms;"
        f"  turn p50 {result['turn_ms']['p50']} ms  p95 {result['turn_ms']['p95']} ms"
    )
    if unanswerable:
        auroc = result["answerability_auroc"]
        typer.echo(
            f"  abstention on unanswerable {result['abstention_rate_unanswerable']:.3f}  wrong abstention "
            f"{result['wrong_abstention_rate']:.3f}  AUROC {'n/a' if auroc is None else f'{auroc:.3f}'}  "
            f"({result['abstention_questions']} questions, each asked with and without its gold documents)"
        )
        for point in [p for p in result["curve"] if 0.3 <= p["threshold"] <= 0.7][::2]:
            typer.echo(f"    abstain below {point['threshold']:.2f}: unanswerable {point['abstention_rate_unanswerable']:.3f}"
                       f"  wrong {point['wrong_abstention_rate']:.3f}")


@eval_app.command("inspection")
def eval_inspection(dataset_dir: Path, as_json: bool = typer.Option(False, "--json"),
                    features: str = typer.Option("auto", help="auto (combined when the CNN weights are installed, else handcrafted: what a product is "
                                                                "learned with) | combined | cnn (EfficientNet-Lite0) | handcrafted"),
                    cnn_layers: str = typer.Option("8", "--cnn-layers", help="cnn: 8 (stride-8 features) | 8+16 (adds stride 16)")) -> None:
    """Image AUROC, pixel AUROC (where masks exist) and ms per image on an inspection set."""
    from evals.inspection import evaluate_inspection
    from tools.inspection.anomaly import InspectorConfig

    try:
        result = evaluate_inspection(dataset_dir, InspectorConfig(features=features, cnn_layers=cnn_layers))
    except OnsiteError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    pixel = result["pixel_auroc"]
    typer.echo(f"{result['images']} images: image AUROC {result['image_auroc']:.3f}  "
               f"pixel AUROC {'n/a' if pixel is None else f'{pixel:.3f}'}  {result['ms_per_image']:.0f} ms/image")


@eval_app.command("watch")
def eval_watch(dataset_dir: Path, as_json: bool = typer.Option(False, "--json")) -> None:
    """Early warning on a time-series set: F1, false and missed alarm rates (SKAB protocol), events
    detected, delay, false alert events per hour, with a plain Hotelling T² baseline."""
    from evals.watch import evaluate_watch

    try:
        result = evaluate_watch(dataset_dir)
    except OnsiteError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    def show(v, spec: str) -> str:  # a set without anomalies or normal rows leaves some figures undefined
        return "n/a" if v is None else format(v, spec)

    for label, r in (("early warning", result), ("Hotelling T²", result["baseline"])):
        typer.echo(f"{label}: F1 {show(r['f1'], '.3f')}  FAR {show(r['far'], '.1%')}  MAR {show(r['mar'], '.1%')}  "
                   f"events {r['events_detected']}/{r['events']}  median delay {show(r['median_delay_s'], '.0f')} s  "
                   f"false events {show(r['false_events_per_hour'], '.2f')}/h")
        if "alert_events" in r:  # counted as an operator is paged: a re-alarm within the quiet period is no new page
            typer.echo(f"  as alerts (quiet {r['quiet_s']:.0f} s): {r['alert_events']} opened, "
                       f"{r['events_alerted']}/{r['events']} events alerted, {r['false_alert_events']} false")
    typer.echo(f"{result['files']} files, {result['ms_per_row']:.4f} ms/row in blocks, "
               f"{result['ms_per_row_streamed']:.3f} ms/row one at a time")


@eval_app.command("site")
def eval_site(
    model: Optional[str] = typer.Option(None, "--model", help="Catalogue name or .gguf path to answer with, through "
                                        "llama.cpp (default: extractive mode, no model)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Ask this many questions, spread over the "
                                        "documents and the unanswerable ones."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The bundled sample site's own questions (evals/site_questions.jsonl, zh and en) through the
    agent: answered rate, abstention on unanswerable ones, citation hit, key facts, token recall,
    latency, and each failure with why."""
    from evals.site_questions import evaluate_site_questions

    settings = Settings()
    try:
        settings, embedder, loaded = _model_and_embedder(settings, model, configured=False)
        result = evaluate_site_questions(settings, loaded, limit, embedder=embedder,
                                         progress=lambda i, n, qid: typer.echo(f"[{i + 1}/{n}] {qid}", err=True))
    except OnsiteError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    typer.echo(f"sample site ({result['model']}): {result['questions']} questions, {result['answerable']} answerable")
    for name, part in [("all", result), *result["by_lang"].items()]:
        typer.echo(
            f"  {name:>3}: answered {rate(part['answered_rate'])}  abstained on unanswerable "
            f"{rate(part['abstention_rate_unanswerable'])}  citation hit {rate(part['citation_hit_rate'])}  "
            f"key facts {rate(part['key_fact_rate'])}  token recall {rate(part['answer_token_recall'])}  "
            f"p50 {part['latency_ms']['p50']} ms  p95 {part['latency_ms']['p95']} ms")
    for f in result["failures"]:
        score = (f.get("answerability") or {}).get("score")
        typer.echo(f"  ✗ {f['id']} [{', '.join(f['problems'])}; answerability {score}] {f['question']}")


@eval_app.command("scenarios")
def eval_scenarios(
    model: Optional[str] = typer.Option(None, "--model", help="Catalogue name or .gguf path to answer with, through "
                                        "llama.cpp (default: extractive mode, no model)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Run only the first N scenarios."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Live-data scenarios (evals/scenarios/scenarios.jsonl, zh and en) on the simulated sample
    site: does each answer claim the status the sensor tools give (normal / high / low / no data /
    stopped), state the value, and call the right tools; status claims the data does not support."""
    from evals.scenarios import evaluate_scenarios

    settings = Settings()
    try:
        settings, embedder, loaded = _model_and_embedder(settings, model, configured=False)
        result = evaluate_scenarios(settings, loaded, limit, embedder=embedder)
    except (OnsiteError, ValueError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    typer.echo(f"live-data scenarios ({result['model']}): {result['questions']} questions  "
               f"turn p50 {result['turn_ms']['p50']} ms  p95 {result['turn_ms']['p95']} ms")
    for name, part in [("all", result), *result["by_lang"].items()]:
        typer.echo(f"  {name:>3}: agreement {part['agreement']:.3f}  unsupported claims {part['unsupported_claims']}  "
                   f"tools {part['tool_agreement']:.3f}  from the model {part['model_answer_rate']:.3f}  "
                   f"({part['questions']} questions)")
    for f in result["failures"]:
        why = [f"claimed {f['claimed']}, data {f['truth']['status']}"]
        why += [f"unsupported {'+'.join(f['unsupported'])}"] if f["unsupported"] else []
        why += [] if f["value_ok"] else ["value not stated"]
        why += [] if f["tools_ok"] else [f"tools {', '.join(f['calls']) or 'none'}"]
        typer.echo(f"  ✗ {f['id']} [{'; '.join(why)}] {f['question']}")


@eval_app.command("injection")
def eval_injection(
    shared: Path = typer.Option(Path("../shared"), "--shared", help="Shared data folder with corpus/ and evaldata/ "
                                "(ordinary passages); folders not found are reported as missing."),
    attacks: Optional[Path] = typer.Option(None, "--attacks", help="Labelled instruction-like passages (JSONL; "
                                           "default evals/injection_attacks.jsonl)."),
    cap: int = typer.Option(25, "--list", min=0, help="Misses and false flags to list."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The injection detector: recall on instruction-like passages (per split and language) and
    the false-flag rate on ordinary passages (samples, shared corpus, evaluation corpora, chunked
    as the index does), with the misses and false flags to read."""
    from evals.injection import ATTACKS_FILE, evaluate_injection

    try:
        result = evaluate_injection(shared, attacks_file=attacks or ATTACKS_FILE, cap=cap)
    except OnsiteError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    ins, ordinary = result["instruction"], result["ordinary"]

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    typer.echo(f"injection detector v{result['detector_version']}: {ins['passages']} instruction-like passages, "
               f"{ordinary['passages']} ordinary ({result['seconds']} s)")
    for name, part in ins["by_split_lang"].items():
        typer.echo(f"  recall {name:>7}: {rate(part['recall'])} ({part['flagged']}/{part['passages']})")
    typer.echo(f"  false flags: {rate(ordinary['false_flag_rate'])} ({ordinary['flagged']}/{ordinary['passages']})")
    for name, part in ordinary["by_source"].items():
        typer.echo(f"    {name}: {part['flagged']}/{part['passages']}")
    for path in ordinary["missing"]:
        typer.echo(f"  not found: {path}")
    for m in ins["misses"]:
        typer.echo(f"  ✗ missed {m['id']}: {' '.join(m['text'].split())[:120]}")
    for f in ordinary["false_flags"]:
        typer.echo(f"  ✗ flagged {f['where']} [{', '.join(f['reasons'])}]: {f['snippet'][:120]}")


@bench_app.command("llm")
def bench_llm(
    shape: str = typer.Option("qwen2.5-1.5b", "--shape", help="Model shape: qwen2.5-0.5b or qwen2.5-1.5b."),
    quant: str = typer.Option("Q4_K_M", "--quant"),
    model: Optional[str] = typer.Option(None, "--model", help="A real GGUF (catalogue name or path) instead of "
                                        "random weights of a shape."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Prefill/decode speed, time to first token with and without the shared prefix, peak RSS,
    on a random-weight model of a real model's exact shape (or a real model), with a bare
    llama-cpp-python loop as the decode baseline in the same run."""
    from evals.bench_llm import run_llm_bench

    try:
        path = None
        if model:
            from assistant.llm.management import check_model
            from evals.model_choice import settings_for

            path = check_model(settings_for(Settings(), model)).path
        result = run_llm_bench(shape=shape, quant=quant, model_path=path)
    except OnsiteError as exc:
        _fail(exc)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 1))


@bench_app.command("agent")
def bench_agent(
    model: Optional[str] = typer.Option(None, "--model", help="Catalogue name or .gguf path (default: the "
                                        "configured model)."),
    questions: int = typer.Option(10, "--questions", min=1, max=45),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Time to the first answer token through the whole agent, for fresh questions of the sample
    site and a follow-up in the same conversation."""
    from evals.bench_agent import run_agent_bench

    settings = Settings()
    try:
        settings, embedder, loaded = _model_and_embedder(settings, model, configured=True)
        result = run_agent_bench(settings, loaded, embedder, questions=questions, seed=seed,
                                 progress=lambda m: typer.echo(m, err=True))
    except OnsiteError as exc:
        _fail(exc)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 1))


@bench_app.command("index")
def bench_index(
    documents: int = typer.Option(300, help="Documents in the synthetic corpus for the rebuild test."),
    chunks: int = typer.Option(100_000, help="Chunks for the query-latency test."),
    baseline_embedder: str | None = typer.Option(
        None, "--baseline-embedder", help="Also build with this embedder (e.g. bundled:all-MiniLM-L6-v2) and "
        "report the ingestion throughput ratio."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Ingestion throughput, incremental rebuild time, query latency at scale."""
    from evals.bench_index import run_index_bench

    result = run_index_bench(documents=documents, chunks=chunks, progress=lambda m: typer.echo(m, err=True),
                             baseline_embedder=baseline_embedder)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 1))


@bench_app.command("soak")
def bench_soak(
    clients: int = typer.Option(30, "--clients", min=1, max=500),
    minutes: float = typer.Option(10.0, "--minutes", min=0.1, max=24 * 60),
    model: Optional[str] = typer.Option(None, "--model", help="A .gguf path or catalogue name to answer with; "
                                        "'none' (the default) for extractive answers."),
    home: Optional[Path] = typer.Option(None, "--home", help="The server's ONSITE_HOME (default: a new temporary "
                                        "folder); reuse one to skip indexing the sample knowledge again."),
    warmup_minutes: Optional[float] = typer.Option(None, "--warmup-minutes", min=0.0, help="Load before the "
                                                   "measured minutes; memory 'start' is taken after it "
                                                   "(default: a fifth of --minutes, at most 2)."),
    shared_key: bool = typer.Option(False, "--shared-key", help="All clients sign in with one operator key (the "
                                    "per-client rate limit then refuses most requests); default one key each."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """`onsite serve` under a bounded mixed load on loopback: statuses (no 5xx), p50/p95 latency,
    memory start/peak/end, and how fast each abandoned request's slot was free."""
    from evals.soak import run_soak

    if model and model.lower() != "none" and model.endswith(".gguf"):
        model = str(Path(model).expanduser().resolve())
    result = run_soak(clients=clients, minutes=minutes, model=None if not model or model.lower() == "none" else model,
                      home=home, seed=seed, warmup_minutes=warmup_minutes, shared_key=shared_key, progress=lambda m: typer.echo(m, err=True))
    if not as_json:
        result["memory_mb"].pop("samples", None)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 1))
    raise typer.Exit(0 if result["ok"] else 1)


@bench_app.command("coldstart")
def bench_coldstart(
    home: Optional[Path] = typer.Option(None, "--home", help="A data home with a built index, copied for the runs "
                                        "(default: a new home with the sample index, built first, not timed)."),
    repeat: int = typer.Option(3, "--repeat", min=1, max=50, help="Runs of each measurement; medians reported."),
    model: Optional[str] = typer.Option(None, "--model", help="A GGUF (path or catalogue name) whose load time is "
                                        "measured alone (default: the configured model when present)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Cold-start times as separate processes: `onsite serve` to its first line and to "serving",
    the first and second answers after it (extractive), `onsite search`, `onsite ask`, `onsite
    --help`, the model's load time alone, and `python -c pass` as the baseline of the same run."""
    from evals.coldstart import run_coldstart

    if home is not None:
        home = home.expanduser().resolve()
    if model and model.endswith(".gguf"):
        model = str(Path(model).expanduser().resolve())
    try:
        result = run_coldstart(home=home, repeat=repeat, model=model, progress=lambda m: typer.echo(m, err=True))
    except (OnsiteError, ValueError, RuntimeError) as exc:
        _fail(exc if isinstance(exc, OnsiteError) else OnsiteError(str(exc)))
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 1))


from assistant.cli_watch_measure import register as _register_watch  # noqa: E402 - after the groups exist

_register_watch(eval_app, bench_app)
