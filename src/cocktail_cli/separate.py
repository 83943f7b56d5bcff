"""The ``separate`` job as a library: inputs in, stem files out, any length, flat memory.

``cocktail separate`` (``commands/separate.py``) is a thin layer over this module::

    from cocktail_cli.separate import SeparateOptions, load_separator, plan, separate_file

    sep = load_separator(None)                      # the shipped model (or $COCKTAIL_MODEL)
    opts = SeparateOptions(out="out", fmt="flac", bits=24, stems=["speech"])
    for job in plan(["mix.wav", "recordings/"], opts):
        result = separate_file(sep, job, opts)      # FileResult: outputs, seconds, rtf, scale

A file is read block by block (soundfile), resampled and separated as a stream
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
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import FILE_MODE, make_temp
from .audio import (
    FORMATS, LOSSY, STDIO, SUBTYPES, announced_frames, check_can_write, check_input_file, check_stream, describe_error,
    find_audio_files, open_writer, peak_scale, subtype_for,
)
from .classes import CLASSES
from .console import quiet_c_stderr
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
    fmt: str = "wav"
    bits: int | None = None  # 16 for wav and flac; none for the compressed formats
    stems: list[str] = field(default_factory=lambda: list(CLASSES))
    rest: bool = False  # also write REST, the mixture minus ``stems``

    @property
    def to_stdout(self) -> bool:
        return self.out == STDIO

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
        return (
            f"{self.input}: {n} stem{'s' if n != 1 else ''} in {where}; "
            f"{self.duration:.1f} s of audio in {self.seconds:.1f} s{f' ({speed})' if speed else ''}"
        )

# -- options and planning ------------------------------------------------------------------------
def check_options(opts: SeparateOptions, n_inputs: int | None = None) -> None:
    """Refuse inconsistent options before any work (one-line :class:`CocktailError`)."""
    fmt = opts.fmt.lower()
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
    if opts.to_stdout:
        if len(opts.output_stems) != 1:
            raise CocktailError(
                f"-o - writes one stem to standard output; choose one with --stems (got {', '.join(opts.output_stems)})"
            )
        if n_inputs is not None and n_inputs != 1:
            raise CocktailError(f"-o - takes exactly one input (got {n_inputs})")
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


def expand_inputs(inputs: Iterable[str]) -> list[tuple[str, str]]:
    """``(input, track)`` pairs: files as given, folders searched recursively for audio files.

    A file's track is its name without extension; a file found in a folder keeps its path below
    that folder (``live/set1.wav`` -> ``live/set1``), so same-named files do not collide.
    Missing paths are kept (they fail, reported, when their turn comes).
    """
    out: list[tuple[str, str]] = []
    for item in inputs:
        if item == STDIO:
            out.append((STDIO, "stdin"))
        elif os.path.isdir(item):
            root = Path(item)
            found = find_audio_files(root)
            if not found:
                raise CocktailError("folder contains no audio files", item)
            for p in found:
                rel = p.relative_to(root).with_suffix("")
                out.append((str(p), rel.as_posix()))
        else:
            out.append((item, Path(item).stem or Path(item).name))
    return out


def input_ext(inp: str) -> str:
    """The ``{input_ext}`` template field: the input's extension without the dot, as written."""
    return "" if inp == STDIO else Path(inp).suffix[1:]


def output_path(opts: SeparateOptions, track: str, stem: str, ext: str = "", template: str | None = None) -> str:
    template = opts.filename if template is None else template
    return os.path.join(opts.out, template.format(track=track, stem=stem, ext=opts.fmt, input_ext=ext))


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
    pairs = expand_inputs(inputs)
    if not pairs:
        raise CocktailError("no inputs given")
    check_options(opts, len(pairs))
    if sum(1 for i, _ in pairs if i == STDIO) > 1:
        raise CocktailError("standard input ('-') can be given only once")
    shared = {t for t, n in Counter(t for _, t in pairs).items() if n > 1}
    jobs, seen = [], {}
    for inp, track in pairs:
        ext = input_ext(inp)
        if opts.to_stdout:
            outputs = {opts.stems[0]: STDIO}
        else:
            template = SHARED_TRACK_TEMPLATE if opts.filename == DEFAULT_TEMPLATE and track in shared and ext else None
            outputs = {s: output_path(opts, track, s, ext, template) for s in opts.output_stems}
        for path in outputs.values():
            key = os.path.normcase(os.path.abspath(path)) if path != STDIO else STDIO
            if key in seen and seen[key] != inp:
                raise CocktailError(f"{seen[key]} and {inp} would both write {path}; {_collision_advice(seen[key], inp)}")
            seen[key] = inp
            if inp != STDIO and path != STDIO and os.path.exists(inp) and os.path.exists(path) and os.path.samefile(inp, path):
                raise CocktailError(f"output {path} would overwrite its input; choose another --out or --filename")
        jobs.append(Job(inp, track, outputs, ext))
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
        return all(os.path.getmtime(p) >= source for p in job.outputs.values())
    except OSError:
        return False


def load_separator(
    model: str | os.PathLike | None = None, chunk_seconds: float | None = None, independent_channels: bool = False
) -> Separator:
    """The separator for ``--model PATH`` (any checkpoint ``cocktail train`` wrote) or the default.

    ``independent_channels``: separate each channel of a multichannel input on its own instead of
    with masks shared by the channels (see :meth:`Separator.separate_channels`).
    """
    kwargs = {} if chunk_seconds is None else {"chunk_seconds": chunk_seconds}
    return Separator.from_checkpoint(model, independent_channels=independent_channels, **kwargs)


# -- one file -------------------------------------------------------------------------------------
def _spool_stdin(tmpdir: str) -> str:
    """Copy standard input to a file (blockwise: flat memory), so it can be read twice."""
    path = os.path.join(tmpdir, "stdin")
    src = sys.stdin.buffer
    with open(path, "wb") as fh:
        shutil.copyfileobj(src, fh, 1 << 20)
    if os.path.getsize(path) == 0:
        raise AudioError("standard input is empty", STDIN_NAME)
    return path


def _open(path: str, name: str) -> sf.SoundFile:
    try:
        with quiet_c_stderr():  # mpg123 prints notes on a damaged MP3; our one line says it
            return sf.SoundFile(path)
    except sf.LibsndfileError as err:
        raise AudioError(f"cannot decode audio ({describe_error(err)})", name) from None
    except (RuntimeError, TypeError, ValueError) as err:
        raise AudioError(f"cannot decode audio ({err})", name) from None


def _blocks(fh: sf.SoundFile, name: str, on_block: Callable[[int], None] | None):
    while True:
        try:
            with quiet_c_stderr():
                data = fh.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"cannot decode audio ({describe_error(err)})", name) from None
        if data.shape[0] == 0:
            return
        if on_block is not None:
            on_block(data.shape[0])
        yield data.T


class _Writers:
    """One temporary file per output stem, renamed over the real names only by :meth:`commit`."""

    def __init__(self, outputs: dict[str, str], opts: SeparateOptions, sample_rate: int, channels: int, tmpdir: str):
        self.outputs, self.files, self.tmp, self.created_dirs = outputs, {}, {}, []
        try:
            for stem, path in outputs.items():
                if path == STDIO:
                    tmp = os.path.join(tmpdir, f"stdout.{opts.fmt}")
                else:
                    folder = os.path.dirname(os.path.abspath(path))
                    self._makedirs(folder, path)
                    fd, tmp = make_temp(path)
                    os.close(fd)
                self.tmp[stem] = tmp
                self.files[stem] = open_writer(tmp, opts.fmt, opts.bits, sample_rate, channels)
        except BaseException as err:
            self.abort()
            if isinstance(err, (OSError, sf.LibsndfileError, RuntimeError, ValueError)) and not isinstance(err, CocktailError):
                target = next(iter(outputs.values()))
                raise AudioError(f"cannot write output ({describe_error(err)})", target) from None
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
            raise AudioError(f"cannot write ({err.strerror or err})", path) from None
        self.created_dirs += [d for d in reversed(missing) if d not in self.created_dirs]

    def write(self, stems: dict[str, np.ndarray]) -> None:
        for stem, fh in self.files.items():
            try:
                fh.write(stems[stem].T)
            except (sf.LibsndfileError, RuntimeError, OSError) as err:
                raise AudioError(f"cannot write ({describe_error(err)})", self.outputs[stem]) from None

    def commit(self) -> None:
        for fh in self.files.values():
            fh.close()
        for stem, tmp in self.tmp.items():
            path = self.outputs[stem]
            if path == STDIO:
                with open(tmp, "rb") as src:
                    shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
                sys.stdout.buffer.flush()
                os.unlink(tmp)
            else:
                try:
                    os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; outputs get the usual mode
                    os.replace(tmp, path)
                except OSError as err:
                    raise AudioError(f"cannot write ({err.strerror or err})", path) from None
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
        for d in reversed(self.created_dirs):  # only folders this job created, and only if empty
            try:
                os.rmdir(d)
            except OSError:
                pass
        self.files, self.tmp = {}, {}


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
        if job.input != STDIO:
            check_input_file(path)
        with _open(path, name) as fh:
            sr, channels, frames = fh.samplerate, fh.channels, fh.frames
        # a cut file (a download or copy that stopped early): its WAV/AIFF header, or an MP3's
        # frame count, announces more than the file holds
        announced = max(frames, announced_frames(path) or 0)
        cut = f" (truncated: header says {_seconds(announced / sr)})" if announced > frames else ""
        if frames == 0:
            raise AudioError(f"contains no audio samples{cut}", name)
        if frames < sep.min_input_samples(sr):
            raise AudioError(
                f"too short to separate ({frames} samples; need at least {sep.min_input_samples(sr)} at {sr} Hz){cut}", name
            )
        check_stream(opts.fmt, sr, channels, name)
        done = 0

        def on_block(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done / sr, total / sr)

        total = frames
        peak, n_written = _run(sep, path, name, job.outputs, opts, sr, channels, tmpdir, 1.0, on_block)
        scale = 1.0
        if peak is not None:  # integer output would clip: run again with one gain for all stems
            scale = peak_scale(np.array([peak], np.float32), PEAK_LIMIT)
            total = 2 * frames
            if warn is not None:
                target = opts.fmt if opts.fmt in LOSSY else f"{opts.bits}-bit"
                warn(
                    f"{name}: stems peak at {20 * np.log10(peak):+.1f} dBFS; scaled all stems by {scale:.4f} "
                    f"({20 * np.log10(scale):+.1f} dB) to fit {target} output without clipping "
                    f"(--bits 32 writes float WAV without scaling)"
                )
            _, n_written = _run(sep, path, name, job.outputs, opts, sr, channels, tmpdir, scale, on_block)
    if n_written < announced and warn is not None:  # a warning, not an error: what is there is whole
        warn(
            f"{name}: truncated: header says {_seconds(announced / sr)}, file holds {_seconds(n_written / sr)}; "
            "separated what is there"
        )
    seconds = time.perf_counter() - start
    return FileResult(name, dict(job.outputs), seconds, n_written / sr, sr, channels, scale)


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def _run(sep, path, name, outputs, opts, sr, channels, tmpdir, scale, on_block):
    """One pass. Returns ``(peak, frames)``: ``peak`` is None unless integer (or compressed)
    output would clip (then nothing is written and the caller runs again with a gain)."""
    writers = _Writers(outputs, opts, sr, channels, tmpdir)
    index = {s: CLASSES.index(s) for s in outputs if s != REST}
    others = [i for i, c in enumerate(CLASSES) if c not in index]  # what REST sums
    peak, n = 0.0, 0
    clipping = False
    try:
        with _open(path, name) as fh:
            for stems in sep.separate_blocks(_blocks(fh, name, on_block), sr, name):
                n += stems.shape[-1]
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
        if clipping:
            writers.abort()
            return peak, n
        writers.commit()
    except BaseException:
        writers.abort()
        raise
    return None, n


__all__ = [
    "DEFAULT_TEMPLATE", "REST", "FileResult", "Job", "SeparateOptions", "check_options", "expand_inputs",
    "load_separator", "output_path", "plan", "separate_file",
]
