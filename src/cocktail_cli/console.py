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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

_err_console: Console | None = None
#: Held while Python writes to standard error, and while :func:`quiet_c_stderr` has it silenced.
STDERR_LOCK = threading.RLock()


class _Stderr:
    """``sys.stderr`` as Rich sees it (looked up at every write, as ``Console(stderr=True)`` does),
    written under :data:`STDERR_LOCK` so that no line is lost while a decoder is silenced."""

    def write(self, text: str) -> int:
        with STDERR_LOCK:
            return sys.stderr.write(text)

    def flush(self) -> None:
        with STDERR_LOCK:
            sys.stderr.flush()

    def __getattr__(self, name: str):
        return getattr(sys.stderr, name)


@contextmanager
def quiet_c_stderr() -> Iterator[None]:
    """Silence what C libraries print on file descriptor 2 (mpg123's "Note: Illegal Audio-MPEG-Header",
    "Warning: Xing stream size off") while an audio file is opened or read: cocktail reports
    problems itself, in one line. Python's own writes wait for the lock meanwhile, so none is lost.
    """
    with STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield  # no file descriptor 2 to redirect
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def get_err_console() -> Console:
    """The one Rich console on standard error (made on first use)."""
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(file=_Stderr(), highlight=False)
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


def make_progress(
    enabled: bool | None = None, transient: bool = False, amount_columns: tuple | None = None, width_left: int = 0
) -> Progress:
    """A Rich progress bar on a terminal; a silent no-op object otherwise. ``amount_columns``
    replace the default ``M/N`` between the bar and the times. ``width_left``: the most
    characters those columns take; non-zero keeps every line within the terminal's width (80
    columns and up): the description is cut with an ellipsis, the bar is short, and the elapsed
    time is left out (the time remaining stays)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Column

    if enabled is None:
        enabled = interactive()
    out = get_err_console()
    description = TextColumn("[progress.description]{task.description}")
    times = [TimeElapsedColumn(), TimeRemainingColumn()]
    bar = BarColumn()
    if width_left:
        # spinner 1, bar 12, time remaining 7, and a space between each two of the columns
        room = out.width - (1 + 12 + width_left + 7 + 3 + len(amount_columns or ()))
        description = TextColumn(
            "[progress.description]{task.description}",
            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=max(8, room)),
        )
        times, bar = [TimeRemainingColumn()], BarColumn(bar_width=12)
    return Progress(
        SpinnerColumn(),
        description,
        bar,
        *(amount_columns or (MofNCompleteColumn(),)),
        *times,
        console=out,
        disable=not enabled,
        transient=transient,
        redirect_stdout=False,  # standard output carries --json lines and audio, never the display
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


def audio_progress_text(done: float, total: float | None) -> str:
    """How far a file is, in seconds of audio: ``12.3/600.0 s audio``."""
    return f"{done:.1f}/{'?' if total is None else format(total, '.1f')} s audio"


def speed_text(speed: float | None) -> str:
    """Seconds of audio per second of wall time, as people read it: ``35x real time``."""
    if not speed or speed <= 0:
        return ""
    return f"{speed:.0f}x real time" if speed >= 10 else f"{speed:.1f}x real time"


def make_audio_progress(enabled: bool | None = None) -> Progress:
    """:func:`make_progress` for jobs counted in seconds of audio.

    A task added with ``unit="audio"`` (``completed``/``total`` in seconds of audio) shows
    ``12.3/600.0 s audio`` and its speed, ``35x real time``; other tasks (a batch's files) show
    ``M/N``.
    """
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class AmountColumn(ProgressColumn):
        def __init__(self):
            super().__init__(table_column=Column(no_wrap=True))

        def render(self, task) -> Text:
            if task.fields.get("unit") == "audio":
                return Text(audio_progress_text(task.completed, task.total), style="progress.download")
            total = "?" if task.total is None else f"{task.total:.0f}"
            return Text(f"{task.completed:.0f}/{total}", style="progress.download")

    class SpeedColumn(ProgressColumn):
        def __init__(self):
            super().__init__(table_column=Column(no_wrap=True))

        def render(self, task) -> Text:
            if task.fields.get("unit") != "audio":
                return Text("")
            return Text(speed_text(task.speed), style="progress.data.speed")

    # "3600.0/3600.0 s audio" and "150x real time": an hour-long file still fits 80 columns
    return make_progress(enabled, amount_columns=(AmountColumn(), SpeedColumn()), width_left=21 + 14)
