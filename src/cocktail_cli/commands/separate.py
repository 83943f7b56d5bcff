"""``cocktail separate``: the thin Typer layer over :mod:`cocktail_cli.separate`."""

from __future__ import annotations

import os
import sys
import threading
from typing import List, Optional

import typer

from . import OUT_ALIAS
from .. import console
from ..classes import CLASSES, parse_stems
from ..defaults import DEFAULT_TEMPLATE
from ..errors import CocktailError
from ..precision import PRECISIONS

# numpy, soundfile and torch are imported inside the command: --help and completion stay fast.

#: How messages and --json name the example recording (like "<stdin>" for standard input).
EXAMPLE_NAME = "<example>"

HELP = f"""Split recordings into five stems: {', '.join(CLASSES)}.

Each input (a file, a folder searched recursively for audio files, or - for standard input) gives one file per stem, at the input's sample rate and channel count (the channels of a file share one set of masks, so each stem keeps the stereo image; --independent-channels separates each channel on its own). Any format libsndfile or FFmpeg reads: WAV, FLAC, MP3, Ogg, M4A/AAC from phones, Opus in WebM, a video's sound. Any length: audio streams through overlapping chunks with a cross-fade, so memory stays flat, and the stems sum back to the input (unless integer output would clip: then all stems of the file are scaled by one factor, and a warning says by how much; --bits 32 writes them as they are).

A folder search leaves out the output folder and the stems cocktail wrote, so a second run on a folder separates the same files.

[b]Examples[/b]

  [dim]# out/mix/baby_cry.wav, siren.wav, dog.wav, speech.wav, other.wav[/dim]
  cocktail separate mix.wav -o out/

  [dim]# try it on the example recording shipped with cocktail: out/example/*.wav[/dim]
  cocktail separate --example -o out/

  cocktail separate recordings/ -o stems/ --format flac --bits 24 --jobs 2

  [dim]# and a picture of the separation: out/mix/mix.png[/dim]
  cocktail separate mix.wav -o out/ --plot

  cocktail separate *.wav --stems speech,dog --filename "{{stem}}/{{track}}.{{ext}}"

  [dim]# two stems, speech and everything else (rest.mp3), as MP3[/dim]
  cocktail separate song.mp3 --stems speech --rest --format mp3

  [dim]# one stem to standard output, from standard input[/dim]
  sox in.wav -t wav - | cocktail separate - --stems speech -o - > speech.wav

  cocktail separate long.flac --json --model runs/my-model.pt

  [dim]# one stem into one file[/dim]
  cocktail separate call.m4a --stems speech -o speech.wav

  [dim]# the 3rd of 8 slices of a big batch (a Slurm array task, a Kubernetes index)[/dim]
  cocktail separate recordings/ -o stems/ --shard 3/8 --skip-existing
"""


def register(app: typer.Typer) -> None:
    app.command("separate", help=HELP, no_args_is_help=True, context_settings=OUT_ALIAS)(separate)


def separate(
    inputs: Optional[List[str]] = typer.Argument(None, help="Audio files, folders (searched recursively) or - for standard input.", show_default=False),
    example: bool = typer.Option(False, "--example", help="Also separate the example recording shipped with cocktail (20 s: siren, dog, speech, birds; into OUT/example/)."),
    out: str = typer.Option("separated", "-o", "--out", help="Output folder; a file (x.wav, x.flac, x.mp3, x.ogg) for one stem of one input; or - to write one stem to standard output."),
    filename: str = typer.Option(DEFAULT_TEMPLATE, "--filename", help="Output path below --out; fields {track}, {stem}, {ext}, {input_ext} (inputs sharing a track name, like x.mp3 and x.ogg, get {track}.{input_ext}/ folders by default)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="Output format: wav (default; or what -o FILE names), flac, or compressed mp3 (LAME V0) or ogg (Vorbis q6).", show_default=False),
    bits: Optional[int] = typer.Option(None, "--bits", "-b", help="wav and flac: 16 (default) or 24 (integer; all stems of a file scaled by one factor, with a warning, if they would clip; so are mp3 and ogg) or 32 (float WAV, written as is).", show_default=False),
    stems: Optional[str] = typer.Option(None, "--stems", "-s", help=f"Comma-separated subset to write (default all): {','.join(CLASSES)}.", show_default=False),
    rest: bool = typer.Option(False, "--rest", help="Also write 'rest': the input minus the chosen --stems, i.e. the sum of the other classes (two stems, like demucs --two-stems: --stems speech --rest)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint written by cocktail train (default: the shipped model, or $COCKTAIL_MODEL).", show_default=False),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Files separated in parallel (CPU threads are shared between them)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON line per input: done (input, outputs, seconds, rtf, duration, sample_rate, channels, scale) or failed (input, error)."),
    chunk_seconds: float = typer.Option(20.0, "--chunk-seconds", min=1.0, help="Length of the chunks the model sees (memory grows with it, not with the input)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave out inputs whose stems all exist and are newer than the input (rerun an interrupted batch with it to finish only what is missing)."),
    precision: str = typer.Option("auto", "--precision", help="The network's arithmetic: auto (bf16 where the CPU has AMX-BF16 or AVX512-BF16, or on CUDA; float32 elsewhere), bf16 or fp32."),
    independent_channels: bool = typer.Option(False, "--independent-channels", help="Separate each channel on its own (slower), for recordings whose channels hold different scenes; by default the channels of one file share one set of masks."),
    plot: bool = typer.Option(False, "--plot", help="Also draw each input's spectrogram and its stems' into a PNG beside the stems (out/mix/mix.png; needs matplotlib)."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N", help="Do only the K-th of N slices of the sorted inputs (K from 1): N jobs with K = 1..N do every file once, e.g. a Slurm array or parallel over ssh.", show_default=False),
    events: bool = typer.Option(False, "--events", help="Also write when each sound happens, from the same pass: events.json beside the stems (as cocktail events --json writes it; with --filename, {stem} is 'events' and the extension .json)."),
) -> None:
    from ..shard import parse_shard

    if out == "-" and sys.stdout.isatty():  # as gzip does: binary audio would garble the terminal
        raise CocktailError("refusing to write audio to a terminal; redirect standard output (> stem.wav) or use -o DIR")
    if "-" in (inputs or []):  # a terminal there would wait for audio nobody types: refused
        from ..audio import check_stdin_readable

        check_stdin_readable()
    shard_range = parse_shard(shard)
    import torch

    from ..atomic import remove_stale_temps
    from ..audio import check_writable_dir
    from ..separate import SeparateOptions, is_done, load_separator, plan
    from ..shard import select_shard

    example_file = None
    if example:
        from ..examples import example_path

        example_file = str(example_path())
        inputs = [example_file, *(inputs or [])]
    if not inputs:
        raise CocktailError("no inputs given (give audio files, folders or -, or --example)")
    try:
        stem_list = parse_stems(stems)
    except ValueError as err:
        raise CocktailError(f"--stems: {err}") from None
    if plot:
        from ..plot import check_matplotlib

        check_matplotlib()
    opts = SeparateOptions(out=out, filename=filename, fmt=fmt, bits=bits, stems=stem_list, rest=rest, plot=plot, events=events)
    if json_out and opts.to_stdout:
        raise CocktailError("--json cannot be used with -o - (standard output carries the audio)")
    jobs_list = plan(inputs, opts)
    for job in jobs_list:
        if job.input == example_file:  # not its path deep in site-packages
            job.label = EXAMPLE_NAME
    if shard_range is not None:
        planned = len(jobs_list)
        jobs_list = select_shard(jobs_list, shard_range, key=lambda job: job.input)
        console.info(f"shard {shard}: {len(jobs_list)} of {planned} inputs")
        if not jobs_list:
            return
    if not opts.to_stdout:
        # made when a stem is about to be written: a run that fails leaves no empty folder
        check_writable_dir((os.path.dirname(opts.out) or ".") if opts.to_file else opts.out, create=False)
        # temporaries of an earlier run killed outright (kill -9): in --out and the folders the
        # template makes below it, and wherever this run writes
        if not opts.to_file:
            remove_stale_temps(opts.out, depth=opts.filename.count("/"))
        for folder in _output_folders(jobs_list):
            remove_stale_temps(folder)
    if skip_existing:
        todo = []
        for job in jobs_list:
            if not is_done(job):
                todo.append(job)
                continue
            if json_out:
                console.emit_json({"input": job.name, "outputs": job.outputs, "skipped": True})
            console.info(f"{job.name}: skipped, its stems exist")
        jobs_list = todo
        if not jobs_list:
            return
    if precision.lower() not in PRECISIONS:
        raise CocktailError(f"--precision must be one of {', '.join(PRECISIONS)} (got '{precision}')")
    sep = load_separator(model, chunk_seconds, independent_channels, precision)
    if events:
        from ..events import settings_for

        try:
            opts.event_settings = settings_for(getattr(sep, "loaded", None))
        except ValueError as err:
            raise CocktailError(f"model's event settings are damaged ({err})") from None
    threads = torch.get_num_threads()
    if jobs > 1:  # the cores are shared between the files in flight
        torch.set_num_threads(max(1, threads // min(jobs, len(jobs_list))))
    try:
        failed = _run_batch(sep, jobs_list, opts, jobs, json_out)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: also a temporary a writer had no time to note
        if not opts.to_stdout:
            for folder in _output_folders(jobs_list):
                remove_stale_temps(folder, mine=True)
        raise
    finally:
        torch.set_num_threads(threads)
    if len(jobs_list) > 1 and not (opts.to_stdout or opts.to_file):
        done = len(jobs_list) - len(failed)
        console.info(f"{done} of {len(jobs_list)} files separated; stems in {os.path.join(opts.out, '')}")
    if failed:
        if len(jobs_list) > 1:
            console.error(f"{len(failed)} of {len(jobs_list)} inputs failed")
        raise typer.Exit(1)


def _output_folders(jobs_list) -> list[str]:
    paths = [p for job in jobs_list for p in [*job.outputs.values(), *([job.plot] if job.plot else [])]]
    return sorted({os.path.dirname(p) or "." for p in paths})


def _run_batch(sep, jobs_list, opts, jobs: int, json_out: bool) -> list[str]:
    """Separate every job (``jobs`` at a time); report each failure on one line; return the failed."""
    from ..audio import STDIO
    from ..separate import separate_file

    failed: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()  # Ctrl-C or SIGTERM reached the main thread: files in flight give up
    with console.make_audio_progress() as progress:
        overall = progress.add_task(f"{len(jobs_list)} files", total=len(jobs_list)) if len(jobs_list) > 1 else None

        def work(job) -> None:
            label = os.path.basename(job.name) if job.input != STDIO else job.name
            task = progress.add_task(label, total=None, unit="audio")

            def on_progress(done: float, total: float) -> None:  # seconds of audio
                if stop.is_set():
                    raise KeyboardInterrupt  # unwinds separate_file: its temporaries are removed
                progress.update(task, completed=done, total=total)

            def fail(message: str) -> None:  # one line on stderr; with --json, one object on stdout
                with lock:
                    failed.append(job.name)
                    if json_out:
                        console.emit_json({"input": job.name, "error": message})
                console.error(message)

            try:
                result = separate_file(sep, job, opts, progress=on_progress, warn=console.warn)
            except CocktailError as err:
                fail(str(err))
            except Exception as err:  # a bug: still one line, and the batch goes on
                fail(f"{job.name}: unexpected error ({type(err).__name__}: {err})")
                if os.environ.get("COCKTAIL_DEBUG"):
                    raise
            else:
                if json_out:
                    with lock:
                        console.emit_json(result.to_json())
                if not opts.to_stdout:
                    console.info(result.summary())
            finally:
                progress.remove_task(task)
                if overall is not None:
                    progress.advance(overall)

        if jobs > 1 and len(jobs_list) > 1:
            from concurrent.futures import ThreadPoolExecutor  # here: its import (with logging) is 10-20 ms of --help

            pool = ThreadPoolExecutor(max_workers=jobs)
            try:
                list(pool.map(work, jobs_list))
            except BaseException:
                stop.set()  # files in flight stop at their next block; the rest never start
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown()
        else:
            for job in jobs_list:
                work(job)
    return failed
