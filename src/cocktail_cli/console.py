"""Rich output shared by all commands: progress on a terminal, quiet and parseable when piped.

Human-facing text (progress, tables, warnings) goes to standard error, so standard output stays
free for machine-readable output (``--json``) and for audio piped with ``-o -``.

Rich is imported on first use: ``cocktail --version`` and shell completion never need it.
``err_console`` (the stderr Console) is a module attribute made when first asked for.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

_err_console: Console | None = None


def get_err_console() -> Console:
    """The one Rich console on standard error (made on first use)."""
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False)
    return _err_console


def __getattr__(name: str):
    if name == "err_console":
        return get_err_console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def interactive() -> bool:
    """True when a person watches standard error (progress bars make sense)."""
    if os.environ.get("COCKTAIL_PROGRESS") == "1":
        return True
    return get_err_console().is_terminal and not os.environ.get("CI")


def make_progress(enabled: bool | None = None, transient: bool = False) -> Progress:
    """A Rich progress bar on a terminal; a silent no-op object otherwise."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if enabled is None:
        enabled = interactive()
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=get_err_console(),
        disable=not enabled,
        transient=transient,
    )


def warn(message: str) -> None:
    get_err_console().print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    get_err_console().print(f"[red]error:[/red] {_escape(message)}", markup=True, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    if interactive():
        get_err_console().print(message, highlight=False, soft_wrap=True)


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
