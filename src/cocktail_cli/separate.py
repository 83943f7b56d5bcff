"""The ``separate`` job as a library: inputs in, stem files out, any length, flat memory.

``cocktail separate`` (``commands/separate.py``) is a thin layer over this module::

    from cocktail_cli.separate import SeparateOptions, load_separator, plan, separate_file

    sep = load_separator(None)                      # the shipped model (or $COCKTAIL_MODEL)
    opts = SeparateOptions(out="out", fmt="flac", bits=24, stems=["speech"])
    for job in plan(["mix.wav", "recordings/"], opts):
        result = separate_file(sep, job, opts)      # FileResult: outputs, seconds, rtf, scale

A file is read block by block (:func:`~cocktail_cli.audio.open_audio`: libsndfile, else FFmpeg), resampled and separated as a stream
(:class:`~cocktail_cli.separator.SeparationStream`), and its stems are written block by block to
temporary files that are renamed once complete: memory does not grow with the input's length,
and a failure leaves no partial output. Integer output that would clip is separated again with
one gain for all stems of the file (a warning says so); float output is written as is.
"""

from __future__ import annotations

import os
import shutil
import string
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import FILE_MODE, make_temp
from .audio import (
    FORMATS, LOSSY, STDIO, SUBTYPES, check_can_write, check_stdin_readable, check_stream,
    find_audio_files, is_cocktail_output, open_audio, open_writer, peak_scale, stem_comment, subtype_for, write_error,
)
from .classes import CLASSES
from .errors import AudioError, CocktailError
from .separator import Separator

DEFAULT_TEMPLATE = "{track}/{stem}.{ext}"
#: The default template for inputs that share a track name (``x.mp3`` and ``x.ogg``): one folder
#: per input file, named like it (``x.mp3/``, ``x.ogg/``).
SHARED_TRACK_TEMPLATE = "{track}.{input_ext}/{stem}.{ext}"
TEMPLATE_FIELDS = ("track", "stem", "ext", "input_ext")
#: Frames read per block from an input file.
BLOCK_FRAMES = 1 << 16
STDIN_NAME = "<stdin>"
#: Largest sample magnitude integer output may reach (``audio.peak_scale``'s limit).
PEAK_LIMIT = 0.999
#: The extra stem of ``--rest``: the mixture minus the chosen stems (the sum of the others).
REST = "rest"


@dataclass
class SeparateOptions:
    out: str = "separated"
    filename: str = DEFAULT_TEMPLATE
    fmt: str | None = None  # wav, or the format -o FILE names
    bits: int | None = None  # 16 for wav and flac; none for the compressed formats
    stems: list[str] = field(default_factory=lambda: list(CLASSES))
    rest: bool = False  # also write REST, the mixture minus ``stems``
    plot: bool = False  # also write a PNG of the spectrograms beside the stems (plot_path)
    #: also write the events (``events.json`` beside the stems) from the same pass
    events: bool = False
    event_settings: object = None  # an events.EventSettings; None: the defaults
    event_classes: list[str] | None = None  # None: the four target classes

    @property
    def to_stdout(self) -> bool:
        return self.out == STDIO

    @property
    def to_file(self) -> bool:
        """``-o x.wav``: one stem into that file (an audio extension, and no folder of that name)."""
        return not self.to_stdout and out_file_format(self.out) is not None

    @property
    def output_stems(self) -> list[str]:
        """What is written: the chosen stems, then ``rest`` with ``--rest``."""
        return [*self.stems, REST] if self.rest else list(self.stems)

    @property
    def subtype(self) -> str:
        return subtype_for(self.fmt, self.bits)

    @property
    def is_float(self) -> bool:
        return self.subtype in ("FLOAT", "DOUBLE")


@dataclass
class Job:
    """One input and where its stems go (``outputs``: stem -> path, or ``"-"``)."""

    input: str  # a path, or "-" for standard input
    track: str
    outputs: dict[str, str]
    input_ext: str = ""  # the input's extension without the dot ("" for standard input)
    label: str = ""  # the name messages and --json use instead of ``input`` ("<example>")
    plot: str | None = None  # the PNG --plot writes (plot_path), or None
    events_path: str | None = None  # where ``--events`` writes the events (``{stem}`` = events, ``.json``)

    @property
    def name(self) -> str:
        return self.label or (STDIN_NAME if self.input == STDIO else self.input)


@dataclass
class FileResult:
    input: str
    outputs: dict[str, str]
    seconds: float
    duration: float
    sample_rate: int
    channels: int
    scale: float = 1.0
    precision: str = "fp32"  # the network's arithmetic (precision.py)
    plot: str | None = None  # the PNG --plot wrote
    events_path: str | None = None
    events: list | None = None  # events.Event list with --events

    @property
    def rtf(self) -> float:
        return self.seconds / self.duration if self.duration else 0.0

    def to_json(self) -> dict:
        return {
            "input": self.input,
            "outputs": self.outputs,
            "seconds": round(self.seconds, 4),
            "rtf": round(self.rtf, 5),
            "duration": round(self.duration, 4),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "scale": self.scale,
            "precision": self.precision,
            **({"plot": self.plot} if self.plot else {}),
            **({"events": self.events_path} if self.events_path else {}),
        }

    def summary(self) -> str:
        """One line for people: where the stems went, and how fast.

        ``mix.wav: 5 stems in out/mix/ (baby_cry.wav siren.wav dog.wav speech.wav other.wav);
        60.0 s of audio in 1.2 s (50x real time)``
        """
        from .console import speed_text

        paths = [p for p in self.outputs.values() if p != STDIO]
        n = len(self.outputs)
        where = "standard output"
        if paths:
            folder = os.path.commonpath([os.path.dirname(p) or "." for p in paths]) or "."
            names = " ".join(os.path.relpath(p, folder) for p in paths)
            where = f"{os.path.join(folder, '')} ({names})"
        speed = speed_text(self.duration / self.seconds) if self.seconds > 0 else ""
        picture = f", picture {self.plot}" if self.plot else ""
        return (
            f"{self.input}: {n} stem{'s' if n != 1 else ''} in {where}{picture}; "
            f"{self.duration:.1f} s of audio in {self.seconds:.1f} s{f' ({speed})' if speed else ''}"
        )

# -- options and planning ------------------------------------------------------------------------
def out_file_format(out: str) -> str | None:
    """The format ``-o OUT`` names when it is a file (``x.flac``: flac), else None (a folder)."""
    ext = Path(out).suffix.lower().lstrip(".")
    return ext if ext in FORMATS and not os.path.isdir(out) else None


def check_options(opts: SeparateOptions, n_inputs: int | None = None) -> None:
    """Refuse inconsistent options before any work (one-line :class:`CocktailError`)."""
    if opts.to_file:
        named = out_file_format(opts.out)
        if opts.fmt is None:
            opts.fmt = named
        elif opts.fmt.lower() != named:
            raise CocktailError(f"-o {opts.out} names a {named} file but --format is {opts.fmt}; make them agree")
    fmt = (opts.fmt or "wav").lower()
    if fmt not in FORMATS:
        raise CocktailError(f"unsupported output format '{opts.fmt}' (use {', '.join(FORMATS[:-1])} or {FORMATS[-1]})")
    opts.fmt = fmt
    if fmt in LOSSY:
        if opts.bits is not None:
            raise CocktailError(f"--format {fmt} is compressed and takes no --bits (a bit depth is for wav and flac)")
        check_can_write(fmt)
    else:
        if opts.bits is None:
            opts.bits = 16
        if opts.bits not in SUBTYPES[fmt]:
            allowed = ", ".join(str(b) for b in SUBTYPES[fmt])
            raise CocktailError(f"--format {fmt} cannot be written with --bits {opts.bits} (choose {allowed})")
    if not opts.stems:
        raise CocktailError("no stems selected")
    if opts.rest and len(opts.stems) == len(CLASSES):
        raise CocktailError("--rest writes the mixture minus the chosen --stems; choose some of them (e.g. --stems speech)")
    if opts.plot and opts.to_stdout:
        raise CocktailError("--plot writes a PNG beside the stems; give an output folder or file, not -o -")
    if opts.events and opts.to_stdout:
        raise CocktailError("--events writes events.json beside the stems; give a folder or a file with -o, not -")
    if opts.to_stdout or opts.to_file:
        target = "standard output" if opts.to_stdout else f"the file {opts.out}"
        if len(opts.output_stems) != 1:
            raise CocktailError(
                f"-o {opts.out} writes one stem to {target}; choose one with --stems (got "
                f"{', '.join(opts.output_stems)}), or give a folder (-o {Path(opts.out).stem or 'out'}/) for several"
            )
        if n_inputs is not None and n_inputs != 1:
            raise CocktailError(f"-o {opts.out} takes exactly one input (got {n_inputs}); give a folder for several")
        return
    check_template(opts.filename, len(opts.output_stems))


def check_template(template: str, n_stems: int) -> None:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise CocktailError(f"bad --filename template '{template}' ({err})") from None
    unknown = sorted({n for n in names if n not in TEMPLATE_FIELDS})
    if unknown or any(n == "" for n in names):
        raise CocktailError(
            f"bad --filename template '{template}': unknown field(s) {', '.join('{' + n + '}' for n in unknown) or '{}'}"
            f" (use {', '.join('{' + n + '}' for n in TEMPLATE_FIELDS)})"
        )
    if n_stems > 1 and "stem" not in names:
        raise CocktailError(f"--filename template '{template}' must contain {{stem}} when writing several stems")
    if os.path.isabs(template) or ".." in Path(template).parts:
        raise CocktailError(f"--filename template '{template}' leaves the output folder; it is a path below -o")


def expand_inputs(inputs: Iterable[str], exclude: str | None = None) -> list[tuple[str, str]]:
    """``(input, track)`` pairs: files as given, folders searched recursively for audio files.

    A file's track is its name without extension; a file found in a folder keeps its path below
    that folder (``live/set1.wav`` -> ``live/set1``), so same-named files do not collide.
    Missing paths are kept (they fail, reported, when their turn comes). A folder search leaves
    out the output folder ``exclude`` (when it lies inside the searched one) and every stem
    cocktail wrote (:func:`audio.is_cocktail_output`), so running twice on a folder separates
    what it held, not the first run's stems.
    """
    skip = os.path.realpath(exclude) if exclude and exclude != STDIO else None
    out: list[tuple[str, str]] = []
    for item in inputs:
        if item == STDIO:
            out.append((STDIO, "stdin"))
        elif os.path.isdir(item):
            root = Path(item)
            everything = find_audio_files(root)
            below = skip if skip and _is_within(skip, os.path.realpath(root)) and skip != os.path.realpath(root) else None
            found = [p for p in everything if not (below and _is_within(os.path.realpath(p), below)) and not is_cocktail_output(p)]
            if not found:
                hint = f" (leaving out {len(everything)}: the output folder and stems cocktail wrote)" if everything else ""
                raise CocktailError(f"folder contains no audio files{hint}", item)
            for p in found:
                rel = p.relative_to(root).with_suffix("")
                out.append((str(p), rel.as_posix()))
        else:
            out.append((item, Path(item).stem or Path(item).name))
    return out


def _is_within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def input_ext(inp: str) -> str:
    """The ``{input_ext}`` template field: the input's extension without the dot, as written."""
    return "" if inp == STDIO else Path(inp).suffix[1:]


def output_path(opts: SeparateOptions, track: str, stem: str, ext: str = "", template: str | None = None) -> str:
    template = opts.filename if template is None else template
    return os.path.join(opts.out, template.format(track=track, stem=stem, ext=opts.fmt, input_ext=ext))


def plot_path(outputs: dict[str, str], track: str, to_file: bool = False) -> str:
    """Where ``--plot`` writes a job's picture: beside its stems, named like the track
    (``out/mix/mix.png`` for ``out/mix/<stem>.wav``; ``x.png`` beside ``-o x.wav``). A PNG is no
    audio file, so a later folder search never takes it for an input."""
    paths = list(outputs.values())
    if to_file:
        return str(Path(paths[0]).with_suffix(".png"))
    folder = os.path.commonpath([os.path.dirname(p) or "." for p in paths])
    return os.path.join(folder, f"{Path(track).name or 'stdin'}.png")


def _collision_advice(a: str, b: str) -> str:
    if input_ext(a) != input_ext(b):
        return "add {input_ext} to --filename to tell them apart, e.g. --filename '" + SHARED_TRACK_TEMPLATE + "'"
    return (
        "separate them in two runs with different -o folders, or give the folder that holds both "
        "as the input (each track then keeps its path below it)"
    )


def plan(inputs: Iterable[str], opts: SeparateOptions) -> list[Job]:
    """Expand ``inputs`` into jobs with their output paths; refuse two jobs writing one file.

    With the default ``--filename``, inputs that share a track name (``x.mp3`` and ``x.ogg``)
    each get a folder named like the input file (``x.mp3/``, ``x.ogg/``) instead of ``x/``.
    """
    pairs = expand_inputs(inputs, opts.out)
    if not pairs:
        raise CocktailError("no inputs given")
    check_options(opts, len(pairs))
    if sum(1 for i, _ in pairs if i == STDIO) > 1:
        raise CocktailError("standard input ('-') can be given only once")
    shared = {t for t, n in Counter(t for _, t in pairs).items() if n > 1}
    jobs, seen = [], {}
    for inp, track in pairs:
        ext = input_ext(inp)
        if opts.to_stdout or opts.to_file:
            outputs = {opts.output_stems[0]: opts.out}
        else:
            template = SHARED_TRACK_TEMPLATE if opts.filename == DEFAULT_TEMPLATE and track in shared and ext else None
            outputs = {s: output_path(opts, track, s, ext, template) for s in opts.output_stems}
        picture = plot_path(outputs, track, opts.to_file) if opts.plot else None
        events_path = None
        if opts.events:
            if opts.to_file:
                events_path = os.path.join(os.path.dirname(opts.out), "events.json")
            else:
                events_path = output_path(opts, track, "events", ext, template)
                events_path = os.path.splitext(events_path)[0] + ".json"
        for path in [*outputs.values(), *([picture] if picture else []), *([events_path] if events_path else [])]:
            if not (opts.to_stdout or opts.to_file) and os.path.relpath(path, opts.out).split(os.sep)[0] == "..":
                raise CocktailError(f"--filename '{opts.filename}' would write {path}, outside -o {opts.out}")
            key = os.path.normcase(os.path.abspath(path)) if path != STDIO else STDIO
            if key in seen and seen[key] != inp:
                raise CocktailError(f"{seen[key]} and {inp} would both write {path}; {_collision_advice(seen[key], inp)}")
            seen[key] = inp
            if inp != STDIO and path != STDIO and os.path.exists(inp) and os.path.exists(path) and os.path.samefile(inp, path):
                raise CocktailError(f"output {path} would overwrite its input; choose another --out or --filename")
        jobs.append(Job(inp, track, outputs, ext, plot=picture, events_path=events_path))
    return jobs


def is_done(job: Job) -> bool:
    """True when every output of ``job`` exists and is newer than its input.

    Stems are written to temporary names and renamed when complete, so an existing stem is a
    whole one; an interrupted batch rerun with ``--skip-existing`` redoes only what is missing.
    """
    if job.input == STDIO or STDIO in job.outputs.values():
        return False
    try:
        source = os.path.getmtime(job.input)
        paths = [*job.outputs.values(), *([job.plot] if job.plot else []), *([job.events_path] if job.events_path else [])]
        return all(os.path.getmtime(p) >= source for p in paths)
    except OSError:
        return False


def load_separator(
    model: str | os.PathLike | None = None, chunk_seconds: float | None = None, independent_channels: bool = False,
    precision: str = "auto",
) -> Separator:
    """The separator for ``--model PATH`` (any checkpoint ``cocktail train`` wrote) or the default.

    ``independent_channels``: separate each channel of a multichannel input on its own instead of
    with masks shared by the channels (see :meth:`Separator.separate_channels`). ``precision``:
    the network's arithmetic, ``auto`` (bf16 where the CPU does it in hardware), ``bf16`` or ``fp32``.
    """
    kwargs = {} if chunk_seconds is None else {"chunk_seconds": chunk_seconds}
    return Separator.from_checkpoint(model, independent_channels=independent_channels, precision=precision, **kwargs)


# -- one file -------------------------------------------------------------------------------------
#: The first pass's drawing of a file whose stems clipped (keyed by its PNG path): the second
#: pass scales the stems by one factor, which the drawing (in dB re the mixture) does not show.
_SKETCHES: dict = {}

def _spool_stdin(tmpdir: str) -> str:
    """Copy standard input to a file (blockwise: flat memory), so it can be read twice."""
    check_stdin_readable()
    path = os.path.join(tmpdir, "stdin")
    src = sys.stdin.buffer
    with open(path, "wb") as fh:
        shutil.copyfileobj(src, fh, 1 << 20)
    if os.path.getsize(path) == 0:
        raise AudioError("standard input is empty", STDIN_NAME)
    return path


#: Held while a job makes its folders and first files, and while a failed one removes the folders
#: it made: a folder another job is about to write into is never removed under it.
_FOLDERS_LOCK = threading.Lock()


class _Writers:
    """One temporary file per output stem, renamed over the real names only by :meth:`commit`.

    Folders are made here, when the files are about to be written (so a run that fails before
    leaves none), and :meth:`abort` removes those this job made if they are still empty.
    """

    def __init__(self, outputs: dict[str, str], opts: SeparateOptions, sample_rate: int, channels: int, tmpdir: str,
                 source: str):
        self.outputs, self.files, self.tmp, self.created_dirs = outputs, {}, {}, []
        try:
            with _FOLDERS_LOCK:
                for stem, path in outputs.items():
                    if path == STDIO:
                        tmp = os.path.join(tmpdir, f"stdout.{opts.fmt}")
                    else:
                        self._makedirs(os.path.dirname(os.path.abspath(path)), path)
                        fd, tmp = make_temp(path)
                        os.close(fd)
                    self.tmp[stem] = tmp
                    self.files[stem] = open_writer(tmp, opts.fmt, opts.bits, sample_rate, channels,
                                                   comment=stem_comment(stem, source))
        except BaseException as err:
            self.abort()
            if isinstance(err, (OSError, sf.LibsndfileError, RuntimeError, ValueError)) and not isinstance(err, CocktailError):
                target = self.outputs[stem]
                raise AudioError(f"cannot write output ({write_error(err, target)})", target) from None
            raise

    def _makedirs(self, folder: str, path: str) -> None:
        missing = []
        f = folder
        while f and not os.path.exists(f):
            missing.append(f)
            parent = os.path.dirname(f)
            if parent == f:
                break
            f = parent
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise AudioError(f"cannot write ({write_error(err, path)})", path) from None
        self.created_dirs += [d for d in reversed(missing) if d not in self.created_dirs]

    def write(self, stems: dict[str, np.ndarray]) -> None:
        for stem, fh in self.files.items():
            try:
                fh.write(stems[stem].T)
            except (sf.LibsndfileError, RuntimeError, OSError) as err:
                raise AudioError(f"cannot write ({write_error(err, self.outputs[stem])})", self.outputs[stem]) from None

    def commit(self) -> None:
        for stem, fh in self.files.items():
            try:
                fh.close()  # the last samples and the header's sizes go out here
            except (sf.LibsndfileError, RuntimeError, OSError) as err:
                raise AudioError(f"cannot write ({write_error(err, self.outputs[stem])})", self.outputs[stem]) from None
        for stem, tmp in self.tmp.items():
            path = self.outputs[stem]
            if path == STDIO:
                try:
                    with open(tmp, "rb") as src:
                        shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
                    sys.stdout.buffer.flush()
                except OSError as err:
                    raise AudioError(f"cannot write to standard output ({write_error(err, tmp)})", "<stdout>") from None
                os.unlink(tmp)
            else:
                try:
                    os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; outputs get the usual mode
                    os.replace(tmp, path)
                except OSError as err:
                    raise AudioError(f"cannot write ({write_error(err, path)})", path) from None
        self.tmp = {}

    def abort(self) -> None:
        for fh in self.files.values():
            try:
                fh.close()
            except Exception:
                pass
        for tmp in self.tmp.values():
            try:
                os.unlink(tmp)
            except OSError:
                pass
        with _FOLDERS_LOCK:
            for d in reversed(self.created_dirs):  # only folders this job created, and only if empty
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        self.files, self.tmp, self.created_dirs = {}, {}, []


def separate_file(
    sep: Separator,
    job: Job,
    opts: SeparateOptions,
    progress: Callable[[int, int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> FileResult:
    """Separate one input into its output files (see the module doc).

    ``progress(done_seconds, total_seconds)``, in seconds of audio, is called as blocks are read
    (``total`` counts a second pass when one is needed); ``warn(message)`` receives the one-line
    scaling warning.
    Raises :class:`CocktailError` subclasses naming the file; nothing is left behind on failure.
    """
    start = time.perf_counter()
    name = job.name
    with tempfile.TemporaryDirectory(prefix="cocktail-") as tmpdir:
        path = _spool_stdin(tmpdir) if job.input == STDIO else job.input
        with open_audio(path, name) as reader:
            sr, channels, frames = reader.samplerate, reader.channels, reader.frames
            announced, exact = reader.announced_frames or 0, reader.exact
        # a cut file (a download or copy that stopped early): its WAV/AIFF header, or an MP3's
        # frame count, announces more than the file holds
        cut = f" (truncated: header says {_seconds(announced / sr)})" if frames is not None and announced > frames else ""
        if frames == 0:
            raise AudioError(f"contains no audio samples{cut}", name)
        if frames is not None and frames < sep.min_input_samples(sr):
            raise AudioError(f"too short to separate ({_too_short(frames, sep.min_input_samples(sr), sr)}){cut}", name)
        check_stream(opts.fmt, sr, channels, name)
        done = 0
        expected = frames if frames is not None else announced or None  # for progress: the file's say

        def on_block(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done / sr, None if total is None else max(total, done) / sr)

        total = expected
        picture = job.plot if opts.plot else None
        tracker = None
        if opts.events:
            from .events import EventTracker

            tracker = EventTracker(sep.frame_rate, opts.event_settings, opts.event_classes)
        peak, n_written = _run(sep, path, name, job.outputs, opts, sr, channels, tmpdir, 1.0, on_block, picture, tracker)
        scale = 1.0
        if peak is not None:  # integer output would clip: run again with one gain for all stems
            scale = peak_scale(np.array([peak], np.float32), PEAK_LIMIT)
            total = 2 * n_written
            if warn is not None:
                target = opts.fmt if opts.fmt in LOSSY else f"{opts.bits}-bit"
                warn(
                    f"{name}: stems peak at {20 * np.log10(peak):+.1f} dBFS, above full scale; scaled all stems "
                    f"by {scale:.4f} ({20 * np.log10(scale):+.1f} dB) to fit {target} output without clipping, "
                    f"so they sum to {scale:.2f}x the input (--bits 32 writes float WAV as is, summing to the input)"
                )
            _, n_written = _run(sep, path, name, job.outputs, opts, sr, channels, tmpdir, scale, on_block, picture,
                                drawn_events=None if tracker is None else tracker.events)  # found by the first pass
    # a warning, not an error: what is there is whole. Lengths FFmpeg announces are approximate
    # (a codec's padding): only a shortfall of more than half a second there says the file is cut.
    if n_written < announced - (0 if exact else sr // 2) and warn is not None:
        warn(
            f"{name}: truncated: header says {_seconds(announced / sr)}, file holds {_seconds(n_written / sr)}; "
            "separated what is there"
        )
    events = None
    if tracker is not None:  # the events of the first pass (a gain for a second one changes none)
        from .atomic import atomic_write_text
        from .events import clamp, events_json, sorted_events

        import json

        events = clamp(sorted_events(tracker.events), n_written / sr)
        try:
            atomic_write_text(job.events_path, json.dumps(events_json(name, events)) + "\n")
        except OSError as err:
            raise AudioError(f"cannot write ({write_error(err, job.events_path)})", job.events_path) from None
    seconds = time.perf_counter() - start
    return FileResult(name, dict(job.outputs), seconds, n_written / sr, sr, channels, scale, sep.precision,
                      plot=picture, events_path=job.events_path, events=events)


def _too_short(frames: int, need: int, sr: int) -> str:
    return f"{frames} sample{'s' if frames != 1 else ''}; need at least {need} at {sr} Hz"


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def _counted(blocks: Iterable[np.ndarray], on_block: Callable[[int], None]) -> Iterator[np.ndarray]:
    for block in blocks:
        on_block(block.shape[1])
        yield block


def _run(sep, path, name, outputs, opts, sr, channels, tmpdir, scale, on_block, picture=None, tracker=None,
         drawn_events=None):
    """One pass. Returns ``(peak, frames)``: ``peak`` is None unless integer (or compressed)
    output would clip (then nothing is written and the caller runs again with a gain).
    ``picture``: also draw the spectrograms (all five stems, as separated) into this PNG, which
    is written after the stems (drawn before they are committed: a failure leaves neither).
    ``tracker`` (an events.EventTracker) gets the activity frames of the same run of the network;
    its events, or ``drawn_events`` (a second pass), are drawn as bars in the picture."""
    sketch = None
    if picture is not None:
        from .plot import SeparationSketch  # matplotlib and librosa's filters only for --plot

        sketch = SeparationSketch(sr)
    writers = _Writers(outputs, opts, sr, channels, tmpdir, name)
    index = {s: CLASSES.index(s) for s in outputs if s != REST}
    others = [i for i, c in enumerate(CLASSES) if c not in index]  # what REST sums
    peak, n = 0.0, 0
    clipping = False
    try:
        with open_audio(path, name) as reader:
            on_frames = None if tracker is None else (lambda f: tracker.push(f[0], f[1]))
            for stems in sep.separate_blocks(_counted(reader.blocks(BLOCK_FRAMES), on_block), sr, name, on_frames):
                n += stems.shape[-1]
                if sketch is not None and scale == 1.0:  # the first pass draws; a second one would again
                    sketch.feed(stems)
                chosen = {s: stems[i] for s, i in index.items()}
                if REST in outputs:  # the stems sum to the input, so this is the input minus the chosen
                    chosen[REST] = stems[others].sum(axis=0)
                if not opts.is_float:
                    block_peak = max(float(np.max(np.abs(a))) for a in chosen.values())
                    peak = max(peak, block_peak)
                    if scale == 1.0 and peak > PEAK_LIMIT:
                        clipping = True  # keep going to find the whole file's peak; write nothing
                    if scale != 1.0:
                        chosen = {s: a * np.float32(scale) for s, a in chosen.items()}
                if not clipping:
                    writers.write(chosen)
        if tracker is not None:
            tracker.finish()
        if clipping:
            writers.abort()
            if sketch is not None:
                _SKETCHES[picture] = sketch  # kept for the second pass, which only rescales
            return peak, n
        png = None
        if picture is not None:
            sketch = sketch if scale == 1.0 else _SKETCHES.pop(picture, sketch)
            drawn = tracker.events if tracker is not None else drawn_events
            if drawn is not None:  # the events as bars under the spectrograms
                from .events import sorted_events

                drawn = sorted_events(drawn)
            png = sketch.png(events=drawn, title=f"{os.path.basename(name)}: cocktail separate")
        writers.commit()
        if png is not None:
            from .plot import write_png

            write_png(picture, png)
    except BaseException:
        writers.abort()
        if picture is not None and scale != 1.0:
            _SKETCHES.pop(picture, None)
        raise
    return None, n


__all__ = [
    "DEFAULT_TEMPLATE", "REST", "FileResult", "Job", "SeparateOptions", "check_options", "expand_inputs",
    "load_separator", "output_path", "plan", "separate_file",
]
