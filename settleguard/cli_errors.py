"""One error style for every ``settleguard`` command: ``error: …`` on stderr.

Click prints its own errors as ``Error: …``; :class:`ErrorStyleGroup` prints them as the
commands do, with the same exit codes (1 for a failed command, 2 for a usage error).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click


def _show(exc: click.ClickException) -> None:
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
        click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
    click.echo(f"error: {exc.format_message()}", err=True)


class ErrorStyleGroup(click.Group):
    """A click group whose errors read ``error: …`` (exit codes unchanged)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """As :meth:`click.Group.main`; in standalone mode click's errors use our style."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            _show(exc)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)
