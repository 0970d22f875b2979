"""`onsite auth`: the sign-in sessions of the data home — list them, end them.

Works on ``<home>/sessions.sqlite`` directly; a running server sees the change on its next check of
a token (it notices another process's writes), so a revocation holds at once and across restarts.
"""

from __future__ import annotations

import getpass
import json
import time
from typing import Optional

import typer

from assistant.settings import Settings

auth_app = typer.Typer(no_args_is_help=True, help="Sign-in sessions: list them, end them.")


def _store(create: bool):
    from assistant.api.auth import SESSIONS_FILE
    from assistant.api.sessions import SessionStore

    path = Settings().home / SESSIONS_FILE
    if not create and not path.exists():
        return None
    return SessionStore(path)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


@auth_app.command("sessions")
def sessions(
    user: Optional[str] = typer.Option(None, "--user", help="Only this person's ('key:<name>' or 'wx:<openid>')."),
    include_ended: bool = typer.Option(False, "--all", help="Also ended sessions (kept 30 days)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List sign-in sessions (live ones unless --all)."""
    store = _store(create=False)
    rows = store.list(principal=user, include_ended=include_ended, limit=1000) if store else []
    if store is not None:
        store.close()
    now = time.time()
    if as_json:
        typer.echo(json.dumps([r.to_dict(now) for r in rows], ensure_ascii=False, indent=1))
        return
    if not rows:
        typer.echo("no sessions" if include_ended else "no live sessions")
        return
    for r in rows:
        state = "live" if r.active(now) else (f"revoked {_when(r.revoked_at)} by {r.revoked_by}: {r.reason}"
                                               if r.revoked_at else "expired")
        typer.echo(f"{r.id}  {r.principal} ({r.role}, {r.via}{', key' if r.key_fp else ''})  "
                   f"since {_when(r.created)}  renewed {_when(r.renewed)}  ends {_when(r.expires)}  {state}")


@auth_app.command("revoke")
def revoke(
    user: Optional[str] = typer.Option(None, "--user",
                                       help="End every session of this person ('key:<name>', 'wx:<openid>')."),
    session: Optional[str] = typer.Option(None, "--session",
                                          help="End this one session (an id from `onsite auth sessions`)."),
    reason: str = typer.Option("revoked by an admin", "--reason", help="Why; kept with the sessions."),
) -> None:
    """End sessions at once: their tokens and page cookies are refused from now on."""
    if bool(user) == bool(session):
        raise typer.BadParameter("give --user or --session (one of them)")
    store = _store(create=True)
    by = f"cli:{getpass.getuser()}"
    try:
        if user:
            ended = store.revoke_principal(user, reason=reason, by=by)
            typer.echo(f"revoked {user}: {ended} live session(s) ended; sessions begun before now are refused")
        elif store.revoke(session, reason=reason, by=by):
            typer.echo(f"session {session} ended")
        else:
            typer.secho(f"no live session {session}", fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(1)
    finally:
        store.close()
