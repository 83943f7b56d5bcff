"""``cocktail events``: when each sound happens, a thin Typer layer over :mod:`cocktail_cli.events`."""

from __future__ import annotations

import os
from typing import List, Optional

import typer

from .. import console
from ..classes import CLASSES, TARGET_CLASSES
from ..errors import CocktailError
from ..precision import PRECISIONS

# numpy, soundfile and torch are imported inside the command: --help and completion stay fast.

TABLE_FORMATS = ("tsv", "csv")
#: What ``-o FILE`` writes when neither --json nor --format says: by its extension.
EXTENSION_FORMATS = {".json": "json", ".jsonl": "json", ".ndjson": "json", ".tsv": "tsv", ".txt": "tsv", ".csv": "csv"}

HELP = f"""When each sound happens: the events of {', '.join(TARGET_CLASSES)} (and {CLASSES[-1]} when asked) in each input, with start and end (seconds), the peak level of the event in its stem (dBFS) and a confidence (0-1).

Inputs as for separate: files, folders searched recursively, or - for standard input; any format, rate and length (audio streams through the separator's chunks: memory stays flat). The post-processing (median filter, hysteresis, shortest event, shortest gap) is the one recorded in the model, or the defaults.

[b]Examples[/b]

  cocktail events street.wav

  [dim]# one JSON object per file and line[/dim]
  cocktail events recordings/ --json

  [dim]# the DCASE layout (filename onset offset event_label) that sed_eval and psds_eval read[/dim]
  cocktail events recordings/ --format tsv -o events.tsv

  cocktail events night.flac --classes baby_cry
"""


def register(app: typer.Typer) -> None:
    app.command("events", help=HELP, no_args_is_help=True)(events)


def parse_classes(spec: Optional[str]) -> list[str]:
    """``--classes``: a comma-separated subset (default: the four target classes, not the background)."""
    from ..classes import parse_stems

    if spec is None:
        return list(TARGET_CLASSES)
    try:
        return parse_stems(spec)
    except ValueError as err:
        raise CocktailError(f"--classes: {str(err).replace('stem(s)', 'class(es)')}") from None


def events(
    inputs: Optional[List[str]] = typer.Argument(None, help="Audio files, folders (searched recursively) or - for standard input.", show_default=False),
    classes: Optional[str] = typer.Option(None, "--classes", "-c", help=f"Comma-separated classes to report (default {','.join(TARGET_CLASSES)}; also {CLASSES[-1]}, the background).", show_default=False),
    json_out: bool = typer.Option(False, "--json", help='One JSON object per input and line: {"file", "events": [{"class", "start", "end", "peak_db", "confidence"}]} (or {"file", "error"}).'),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="tsv (the DCASE layout: a header line, then filename, onset, offset, event_label, tab-separated) or csv.", show_default=False),
    out: Optional[str] = typer.Option(None, "-o", "--out", help="Write the JSON lines or the table to this file (written whole when all inputs are done); its extension (.json, .tsv, .csv) sets the format unless --json or --format does.", show_default=False),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint written by cocktail train (default: the shipped model, or $COCKTAIL_MODEL).", show_default=False),
    precision: str = typer.Option("auto", "--precision", help="The network's arithmetic: auto, bf16 or fp32 (as for separate)."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N", help="Do only the K-th of N slices of the sorted inputs (K from 1), as for separate.", show_default=False),
    plot: Optional[str] = typer.Option(None, "--plot", metavar="DIR", help="Also draw each input's spectrogram with its events into DIR/<track>.png.", show_default=False),
    chunk_seconds: Optional[float] = typer.Option(None, "--chunk-seconds", min=1.0, help="Length of the chunks the model sees (default: what the model's event settings were tuned on, 3 s for the shipped model's; separate --events uses separation's 20).", show_default=False),
) -> None:
    from ..shard import parse_shard

    shard_range = parse_shard(shard)
    chosen = parse_classes(classes)
    kind = _output_kind(json_out, fmt, out)
    if precision.lower() not in PRECISIONS:
        raise CocktailError(f"--precision must be one of {', '.join(PRECISIONS)} (got '{precision}')")
    if not inputs:
        raise CocktailError("no inputs given (give audio files, folders or -)")
    if "-" in inputs:
        from ..audio import check_stdin_readable

        check_stdin_readable("events")
    if plot is not None:
        _check_plot_available()
    if out is not None and out != "-":
        from ..audio import check_writable_dir

        check_writable_dir(os.path.dirname(out) or ".", create=False)

    from ..separate import STDIN_NAME, expand_inputs
    from ..shard import select_shard

    pairs = expand_inputs(inputs, exclude=out)
    if sum(1 for i, _ in pairs if i == "-") > 1:
        raise CocktailError("standard input ('-') can be given only once")
    if shard_range is not None:
        planned = len(pairs)
        pairs = select_shard(pairs, shard_range, key=lambda p: p[0])
        console.info(f"shard {shard}: {len(pairs)} of {planned} inputs")
        if not pairs:
            return

    import torch

    from ..events import settings_for
    from ..separate import load_separator
    from ..separator import Separator

    # Quiet passages drive the network's activations into subnormal floats, which the CPU
    # computes ~10x slower: a 3 s chunk of a real scene took 1.2 s instead of 0.12 s. Flushing
    # them to zero changes results by less than 1e-38.
    torch.set_flush_denormal(True)

    sep = load_separator(model, chunk_seconds, precision=precision)
    try:
        settings = settings_for(getattr(sep, "loaded", None))
    except ValueError as err:
        raise CocktailError(f"model's event settings are damaged ({err})") from None
    if chunk_seconds is None:  # the chunks the model's thresholds were tuned on
        sep = Separator.from_loaded(sep.loaded, chunk_seconds=settings.chunk_seconds, precision=precision)

    results, failed = [], []
    to_stdout = out is None or out == "-"
    with console.make_audio_progress() as progress:
        for inp, track in pairs:
            name = STDIN_NAME if inp == "-" else inp
            task = progress.add_task(os.path.basename(name), total=None, unit="audio")
            try:
                result = _one(sep, inp, name, settings, chosen, lambda d, t: progress.update(task, completed=d, total=t))
                if plot is not None:
                    _plot(plot, track, inp, result)
            except CocktailError as err:
                failed.append(name)
                if kind == "json" and to_stdout:
                    console.emit_json({"file": name, "error": str(err)})
                console.error(str(err))
                continue
            except Exception as err:  # a bug: still one line, and the batch goes on
                failed.append(name)
                console.error(f"{name}: unexpected error ({type(err).__name__}: {err})")
                if os.environ.get("COCKTAIL_DEBUG"):
                    raise
                continue
            finally:
                progress.remove_task(task)
                # clear the bar's line now: the table goes to standard output, which the bar
                # (on standard error) does not know about, and would start on the bar's line
                progress.refresh()
            results.append(result)
            if to_stdout:
                _show(result, kind, chosen, first=len(results) == 1)
    if not to_stdout and results:
        from ..atomic import atomic_write_text

        atomic_write_text(out, _render(results, kind))
        console.info(f"events of {len(results)} file{'s' if len(results) != 1 else ''} in {out}")
    if failed:
        if len(pairs) > 1:
            console.error(f"{len(failed)} of {len(pairs)} inputs failed")
        raise typer.Exit(1)


def _output_kind(json_out: bool, fmt: Optional[str], out: Optional[str]) -> str:
    """``json``, ``tsv``, ``csv`` or ``table`` (people: Rich tables), refusing contradictions."""
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in TABLE_FORMATS:
            raise CocktailError(f"unsupported --format '{fmt}' (use tsv or csv; --json for JSON lines)")
        if json_out:
            raise CocktailError("--json and --format both set the output; give one")
        return fmt
    if json_out:
        return "json"
    if out is not None and out != "-":
        ext = os.path.splitext(out)[1].lower()
        if ext not in EXTENSION_FORMATS:
            raise CocktailError(f"-o {out}: give --json or --format tsv|csv, or a .json, .tsv or .csv name")
        return EXTENSION_FORMATS[ext]
    if out == "-":
        return "tsv"
    return "table"


def _one(sep, inp: str, name: str, settings, classes, progress):
    from ..events import events_of_file

    if inp != "-":
        return events_of_file(sep, inp, name, settings, classes, progress=progress)
    import tempfile

    from ..separate import _spool_stdin

    with tempfile.TemporaryDirectory(prefix="cocktail-") as tmpdir:
        return events_of_file(sep, _spool_stdin(tmpdir), name, settings, classes, progress=progress)


def _render(results, kind: str) -> str:
    import json

    from ..events import events_table

    if kind == "json":
        return "".join(json.dumps(r.to_json()) + "\n" for r in results)
    sep = "\t" if kind == "tsv" else ","
    return events_table([(r.name, e) for r in results for e in r.events], sep=sep, header=True)


def _show(result, kind: str, classes, first: bool) -> None:
    import sys

    if kind == "json":
        console.emit_json(result.to_json())
        return
    if kind in TABLE_FORMATS:
        from ..events import events_table

        sys.stdout.write(events_table([(result.name, e) for e in result.events], "\t" if kind == "tsv" else ",",
                                      header=first))
        sys.stdout.flush()
        return
    _print_table(result, classes)


def _print_table(result, classes) -> None:
    """A Rich table of the file's events, then one timeline line per class, within 80 columns."""
    from rich.console import Console
    from rich.table import Table

    from ..events import timeline

    out = Console(highlight=False)
    width = min(out.width, 80)
    table = Table(title=f"{result.name} ({result.duration:.1f} s)", title_justify="left", width=min(width, 64))
    for header, justify in (("class", "left"), ("start s", "right"), ("end s", "right"), ("peak dBFS", "right"), ("confidence", "right")):
        table.add_column(header, justify=justify, no_wrap=True)
    for e in result.events:
        table.add_row(e.cls, f"{e.start:.2f}", f"{e.end:.2f}", f"{e.peak_db:.1f}", f"{e.confidence:.2f}")
    if result.events:
        out.print(table)
    else:
        out.print(f"{result.name} ({result.duration:.1f} s): no events of {', '.join(classes)}")
    label = max(len(c) for c in classes)
    cells = max(10, width - label - 4)
    for c in classes:
        out.print(f"{c:<{label}} │{timeline(result.events, c, result.duration, cells)}│", soft_wrap=True)
    out.print(f"{'':<{label}}  0 s{'':>{max(0, cells - 4 - len(f'{result.duration:.0f} s'))}}{result.duration:.0f} s")


def _check_plot_available() -> None:
    from ..plot import check_matplotlib  # plot.py imports matplotlib only when it draws

    check_matplotlib()


def _plot(folder: str, track: str, inp: str, result) -> None:
    """DIR/<track>.png: the mixture's spectrogram with the events drawn as bars."""
    from ..audio import read_audio
    from ..errors import AudioError
    from ..plot import plot_separation

    if inp == "-":  # standard input is gone once analysed: no picture of it
        raise AudioError("--plot cannot draw standard input (give a file)", result.name)
    audio, sr = read_audio(inp)
    path = os.path.join(folder, f"{track}.png")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    plot_separation(path, audio, sr, None, result.events)
