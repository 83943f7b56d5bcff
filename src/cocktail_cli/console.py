"""Rich output shared by all commands: progress on a terminal, quiet and parseable when piped.

Human-facing text (progress, tables, warnings) goes to standard error, so standard output stays
free for machine-readable output (``--json``) and for audio piped with ``-o -``.
"""

from __future__ import annotations

import json
import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

err_console = Console(stderr=True, highlight=False)


def interactive() -> bool:
    """True when a person watches standard error (progress bars make sense)."""
    if os.environ.get("COCKTAIL_PROGRESS") == "1":
        return True
    return err_console.is_terminal and not os.environ.get("CI")


def make_progress(enabled: bool | None = None, transient: bool = False) -> Progress:
    """A Rich progress bar on a terminal; a silent no-op object otherwise."""
    if enabled is None:
        enabled = interactive()
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not enabled,
        transient=transient,
    )


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    err_console.print(f"[red]error:[/red] {_escape(message)}", markup=True, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    if interactive():
        err_console.print(message, highlight=False, soft_wrap=True)


def emit_json(obj) -> None:
    """One JSON object per line on standard output."""
    sys.stdout.write(json.dumps(obj, sort_keys=False, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
