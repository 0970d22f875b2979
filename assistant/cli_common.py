"""Small helpers shared by the `onsite` command modules."""

from __future__ import annotations

import typer

from assistant.errors import user_message


def fail(exc: BaseException) -> None:
    """One readable line on stderr and exit 1."""
    typer.secho(f"error: {user_message(exc)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def bad_input(exc: BaseException) -> None:
    """Wrong input (an unknown zone, asset, kind …): the message with the valid names on stderr and
    exit 2, the usage-error code, like an option the command does not know."""
    typer.secho(f"error: {user_message(exc)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def progress(stage: str, done: int, total: int) -> None:
    if total:
        typer.echo(f"\r{stage}: {done}/{total}", nl=False, err=True)
        if done == total:
            typer.echo("", err=True)
    else:
        typer.echo(f"{stage}…", err=True)
