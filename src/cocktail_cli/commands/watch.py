"""``cocktail watch``: a live stream in, a line per event start and end out (:mod:`cocktail_cli.watch`)."""

from __future__ import annotations

from typing import Optional

import typer

from .. import console
from ..classes import CLASSES, TARGET_CLASSES
from ..errors import CocktailError, Terminated
from ..precision import PRECISIONS

# numpy and torch are imported inside the command: --help and completion stay fast.

HELP = f"""Listen to a live stream and print a line when an event of {', '.join(TARGET_CLASSES)} starts and when it ends.

The stream is WAV on standard input (a header without a length, as arecord and FFmpeg write to a pipe, is fine) or a microphone (--device; needs the optional sounddevice package: pip install 'cocktail-cli[mic]'). It keeps up with real time in flat memory, on about a tenth of one core, and says so if it falls behind. A start line comes about half a second after the sound begins. Ctrl-C or the end of the stream ends the open events and exits.

[b]Examples[/b]

  arecord -f S16_LE -r 16000 -c 1 | cocktail watch -

  ffmpeg -i rtsp://camera/stream -f wav - | cocktail watch - --classes siren,baby_cry

  [dim]# an alert per start; the class is in $COCKTAIL_CLASS[/dim]
  cocktail watch --device 0 --exec 'notify-send "cocktail: $COCKTAIL_CLASS"'

  cocktail watch - --json < <(ffmpeg -i URL -f wav -)
"""


def register(app: typer.Typer) -> None:
    app.command("watch", help=HELP)(watch)


def watch(
    source: Optional[str] = typer.Argument(None, metavar="[-]", help="- for a WAV stream on standard input (the default without --device).", show_default=False),
    device: Optional[str] = typer.Option(None, "--device", "-d", metavar="N", help="Listen to this input device (its number or name, as python -m sounddevice lists them) instead.", show_default=False),
    classes: Optional[str] = typer.Option(None, "--classes", "-c", help=f"Comma-separated classes to watch for (default {','.join(TARGET_CLASSES)}; also {CLASSES[-1]}).", show_default=False),
    json_out: bool = typer.Option(False, "--json", help='One JSON object per line: {"event": "start"|"end", "class", "time" (seconds of stream), "confidence"}.'),
    exec_cmd: Optional[str] = typer.Option(None, "--exec", metavar="CMD", help="Run CMD (through the shell, not waited for) at each start, with COCKTAIL_EVENT, COCKTAIL_CLASS, COCKTAIL_TIME and COCKTAIL_CONFIDENCE in its environment.", show_default=False),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint written by cocktail train (default: the shipped model, or $COCKTAIL_MODEL).", show_default=False),
    precision: str = typer.Option("fp32", "--precision", help="The network's arithmetic: auto, bf16 or fp32."),
) -> None:
    from .events import parse_classes

    chosen = parse_classes(classes)
    if source is not None and source != "-":
        raise CocktailError(f"watch reads a live stream: give - (standard input) or --device N, not '{source}' (for a file: cocktail events {source})")
    if source == "-" and device is not None:
        raise CocktailError("give - (standard input) or --device, not both")
    if precision.lower() not in PRECISIONS:
        raise CocktailError(f"--precision must be one of {', '.join(PRECISIONS)} (got '{precision}')")
    from ..watch import MicStream, Watcher, stdin_source

    if device is not None:
        src = MicStream(int(device) if device.isdigit() else device)
    else:
        src = stdin_source()  # the header is read here: a bad stream fails before the model loads
    import torch

    torch.set_num_threads(1)  # a live stream needs a steady slice of one core, not bursts of all
    torch.set_flush_denormal(True)  # subnormal activations in quiet passages: ~10x slower (see events)
    from ..events import settings_for
    from ..separate import load_separator

    sep = load_separator(model, precision=precision)
    try:
        settings = settings_for(getattr(sep, "loaded", None), live=True)
    except ValueError as err:
        raise CocktailError(f"model's event settings are damaged ({err})") from None
    watcher = Watcher(sep, settings, chosen, _printer(json_out), console.warn, exec_cmd=exec_cmd)
    try:
        watcher.run(src)
    except Terminated:
        raise
    except KeyboardInterrupt:  # Ctrl-C is how a live watch ends: the open events ended above
        return
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        return


def _printer(json_out: bool):
    import sys

    def emit(change) -> None:
        if json_out:
            console.emit_json(change.to_json())
            return
        line = f"{change.time:9.2f} s  {change.kind:<5}  {change.cls:<8}  {change.confidence:.2f}"
        if change.kind == "end" and change.event is not None:
            e = change.event
            line += f"  ({e.end - e.start:.1f} s, peak {e.peak_db:.1f} dBFS)"
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return emit
