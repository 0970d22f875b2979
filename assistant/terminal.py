"""Showing a turn in the terminal: the answer as it streams, then the tools that ran, the
numbered sources and the checks; or one JSON object with everything (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import typer

from assistant.types import Event


def show_turn(events: Iterable[Event], as_json: bool) -> dict[str, Any] | None:
    """Print a turn; return the final Answer dict (None when the turn failed)."""
    answer: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    streamed = False
    for ev in events:
        if ev.type == "done":
            answer = ev.data
        elif ev.type == "error":
            error = ev.data
        elif as_json:
            continue
        elif ev.type == "token":
            typer.echo(ev.data["text"], nl=False)
            streamed = True
        elif ev.type == "tool" and ev.data.get("phase") == "started":
            args = ", ".join(f"{k}={v}" for k, v in ev.data.get("args", {}).items())
            typer.secho(f"· {ev.data['tool']}({args}) …", fg=typer.colors.BRIGHT_BLACK, err=True)
        elif ev.type == "check" and ev.data.get("retry") and not ev.data.get("ok"):
            typer.secho(f"\n[check failed: {ev.data['name']}: {ev.data['detail']} — answering again]",
                        fg=typer.colors.YELLOW)
    if as_json:
        typer.echo(json.dumps(answer if error is None else {"error": error}, ensure_ascii=False, indent=2))
        return answer
    if error is not None:
        typer.secho(f"\nerror: {error.get('message')}", fg=typer.colors.RED, err=True)
        return None
    if streamed:
        typer.echo("")
    _details(answer or {})
    return answer


def _details(answer: dict[str, Any]) -> None:
    status = "pending_approval" if answer.get("pending") else answer.get("status")
    colour = {"answered": typer.colors.GREEN, "partial": typer.colors.YELLOW}.get(status, typer.colors.RED)
    typer.secho(f"\n[{status} · {answer.get('mode')}]", fg=colour)
    for r in answer.get("tool_results") or []:
        mark = "✓" if r.get("ok") else "✗"
        typer.echo(f"  {mark} {r['tool']}: {r.get('summary')}" + (f" ({r['error']})" if r.get("error") else ""))
    cited = set(answer.get("cited") or [])
    for s in answer.get("sources") or []:
        if s["n"] not in cited:
            continue
        if s["kind"] == "document":
            page = f", p. {s['page']}" if s.get("page") else ""
            typer.echo(f"  [{s['n']}] {s['title']} — {(s.get('source') or '').rsplit('/', 1)[-1]}{page}")
        else:
            typer.echo(f"  [{s['n']}] {s['title']}")
    failed = [c for c in answer.get("checks") or [] if not c["ok"]]
    for c in failed:
        typer.secho(f"  ! {c['name']}: {c['detail']}", fg=typer.colors.YELLOW)
    for p in answer.get("pending") or []:
        args = p.get("args", {})
        typer.secho(f"  waiting for approval: {p['tool']} {args.get('asset', '')} ({args.get('priority', '')}): "
                    f"{args.get('problem', '')}", fg=typer.colors.CYAN)
        typer.echo(f"  approve:  onsite approve {answer['thread_id']} --by NAME\n"
                   f"  reject:   onsite approve {answer['thread_id']} --by NAME --reject --reason WHY")
    typer.echo(f"  conversation: {answer.get('thread_id')}")
