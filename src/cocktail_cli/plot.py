"""Pictures of a separation and of a score table (``--plot``): PNG files drawn with matplotlib.

- :func:`plot_separation`: the mixture's spectrogram and each stem's, one above the other on a
  shared time axis (mel frequency, dB colour scale common to all panels, so a quiet stem looks
  quiet), and the events as bars in a lane per class.
- :func:`plot_scores`: per-class SI-SDRi and SDR of a system beside the floor (the mixture as
  the estimate) and the oracle (ideal masks), from ``cocktail eval``'s aggregate.

Spectrograms are built by :class:`SpectrogramSketch` from blocks of audio, into a bounded number
of columns whatever the length (columns are merged pairwise, and frames thinned, as the input
grows), so a one-hour file is drawn in bounded time and memory, and ``separate`` can feed it the
blocks it streams. matplotlib (with the Agg backend: no display needed) is imported only inside
the drawing functions, never when a command merely starts.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .atomic import atomic_open
from .classes import CLASS_COLOURS, CLASSES
from .errors import CocktailError

#: Columns a spectrogram keeps at least (and at most twice this): the width of the drawing.
MAX_COLUMNS = 900
N_MELS = 96
FMIN = 30.0
#: The colour scale spans this many dB below the loudest bin of the mixture.
DB_RANGE = 80.0
#: A column averages at most this many frames; beyond, frames are thinned (taken further apart).
FRAMES_PER_COLUMN = 4
SYSTEM_COLOURS = {"mixture": "#BBBBBB"}


def check_matplotlib() -> None:
    """Refuse ``--plot`` before any work when matplotlib is not installed (one line)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise CocktailError("--plot needs matplotlib, which is not installed (pip install matplotlib)")


class SpectrogramSketch:
    """A mel power spectrogram of a stream, in at most ``2 * max_columns`` columns.

    Feed it mono blocks with :meth:`feed`; :meth:`columns` gives ``(n_mels, columns)`` mean power
    and the seconds one column spans. Frames are ``n_fft`` (about 46 ms) Hann windows taken every
    ``stride`` samples; each column averages the frames whose centre falls in it. When the
    columns would exceed the bound, neighbours are merged pairwise (a column spans twice as much),
    and once a column averages :data:`FRAMES_PER_COLUMN` frames the stride doubles instead: the
    work per hour of audio is then bounded too (a thinned drawing can miss a sound shorter than
    the gaps between frames, which at that scale is narrower than a pixel anyway).
    """

    def __init__(self, sample_rate: int, max_columns: int = MAX_COLUMNS, n_mels: int = N_MELS, fmin: float = FMIN):
        import librosa  # its filterbank; imported here, with the plot

        self.sample_rate = int(sample_rate)
        self.n_fft = max(256, 1 << int(round(np.log2(0.046 * sample_rate))))
        self.stride = self.n_fft // 2
        self.span = self.stride  # samples per column
        self.max_columns = max_columns
        fmax = sample_rate / 2
        mel = librosa.filters.mel(sr=sample_rate, n_fft=self.n_fft, n_mels=n_mels, fmin=min(fmin, fmax / 2), fmax=fmax, norm=None)
        mel[mel < 1e-6 * mel.max()] = 0  # the filters' far tails (1e-15) made denormal products: 30x slower
        self.mel_t = np.ascontiguousarray(mel.T, np.float32)  # (bins, n_mels); a transposed view is 40x slower
        self.window = np.hanning(self.n_fft).astype(np.float32)
        # linear-frequency power sums per column; the mel filters are applied once, in columns():
        # a small matrix product per block ran 10x slower than the FFTs when BLAS threads had to
        # share busy cores
        self.sums = np.zeros((2 * max_columns + 2, self.n_fft // 2 + 1), np.float32)
        self.counts = np.zeros(2 * max_columns + 2, np.int64)
        self.buffer = np.zeros(0, np.float32)
        self.buffer_start = 0  # the stream index of buffer[0]
        self.next_start = -(self.n_fft // 2)  # the first frame is centred on sample 0
        self.total = 0  # samples fed

    def feed(self, block: np.ndarray) -> None:
        """Add the next samples of the stream (1-D)."""
        block = np.asarray(block, np.float32).reshape(-1)
        if self.total == 0:  # the first frame's left half: silence before the stream
            self.buffer = np.zeros(self.n_fft // 2, np.float32)
            self.buffer_start = -(self.n_fft // 2)
        self.total += block.size
        self.buffer = np.concatenate([self.buffer, block])
        self._frames(final=False)

    def _frames(self, final: bool) -> None:
        end = self.buffer_start + self.buffer.size
        if final:  # the last frames' right halves: silence after the stream
            pad = self.n_fft
            self.buffer = np.concatenate([self.buffer, np.zeros(pad, np.float32)])
            limit = self.total - self.n_fft // 2  # frames centred within the stream
        else:
            limit = end - self.n_fft
        while self.next_start <= limit:
            starts = np.arange(self.next_start, limit + 1, self.stride)[:4096]
            offsets = starts - self.buffer_start
            frames = np.lib.stride_tricks.sliding_window_view(self.buffer, self.n_fft)[offsets] * self.window
            # floored: the power of a near-silent stem, times a filter weight, would be denormal (slow)
            power = np.maximum(np.abs(np.fft.rfft(frames, axis=-1)) ** 2, np.float32(1e-20))
            self._add(starts + self.n_fft // 2, power.astype(np.float32, copy=False))
            self.next_start = int(starts[-1]) + self.stride
        keep_from = self.next_start - self.buffer_start
        if keep_from > 0:
            self.buffer = self.buffer[keep_from:]
            self.buffer_start = self.next_start

    def _add(self, centres: np.ndarray, power: np.ndarray) -> None:
        cols = centres // self.span
        while cols[-1] >= self.sums.shape[0]:
            self._merge()
            cols = centres // self.span
        first = np.flatnonzero(np.diff(cols, prepend=-1))  # frames come in time order: runs per column
        self.sums[cols[first]] += np.add.reduceat(power, first, axis=0)
        self.counts[cols[first]] += np.diff(np.append(first, len(cols)))

    def _merge(self) -> None:
        n = self.sums.shape[0]
        merged = self.sums.reshape(n // 2, 2, -1).sum(1)
        counts = self.counts.reshape(n // 2, 2).sum(1)
        self.sums[: n // 2], self.sums[n // 2:] = merged, 0
        self.counts[: n // 2], self.counts[n // 2:] = counts, 0
        if self.span // self.stride >= FRAMES_PER_COLUMN:
            self.stride *= 2  # thinned: the same frames a column, twice as far apart
            self.next_start = int(np.ceil(self.next_start / self.stride)) * self.stride - self.n_fft // 2
        self.span *= 2

    def columns(self) -> tuple[np.ndarray, float]:
        """``(n_mels, columns)`` mean power over the stream (NaN where a column got no frame),
        and the seconds each column spans. Call once, after the last :meth:`feed`."""
        self._frames(final=True)
        n = max(1, int(np.ceil(self.total / self.span)))
        counts = self.counts[:n]
        with np.errstate(invalid="ignore", divide="ignore"):
            power = self.sums[:n] / counts[:, None]
        power = power @ self.mel_t
        power[counts == 0] = np.nan
        return power.T, self.span / self.sample_rate


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    return audio if audio.ndim == 1 else audio.reshape(-1, audio.shape[-1]).mean(0)


class SeparationSketch:
    """The spectrograms :func:`plot_separation` draws, fed block by block (as ``separate`` streams).

    :meth:`feed` takes one block of stems ``(C, channels, samples)`` or ``(C, samples)`` in class
    order; the mixture is their sum (``separate``'s stems sum to its input).
    """

    def __init__(self, sample_rate: int, classes: Sequence[str] = CLASSES, max_columns: int = MAX_COLUMNS):
        self.sample_rate = sample_rate
        self.classes = list(classes)
        self.mixture = SpectrogramSketch(sample_rate, max_columns)
        self.stems = [SpectrogramSketch(sample_rate, max_columns) for _ in self.classes]

    def feed(self, stems: np.ndarray | None = None, mixture: np.ndarray | None = None) -> None:
        if stems is not None:
            stems = np.asarray(stems)
            mono = stems if stems.ndim == 2 else stems.mean(1)
            for sketch, stem in zip(self.stems, mono):
                sketch.feed(stem)
            if mixture is None:
                mixture = mono.sum(0)
        self.mixture.feed(_mono(mixture))

    def png(self, events: Iterable | None = None, title: str | None = None) -> bytes:
        stems = [s.columns()[0] for s in self.stems] if self.stems[0].total else []
        mix, column_s = self.mixture.columns()
        return render_separation(mix, column_s, self.sample_rate, stems, self.classes, events, title,
                                 duration=self.mixture.total / self.sample_rate)


def _feed_in_blocks(sketch: SeparationSketch, mixture: np.ndarray, stems: np.ndarray | None, block: int = 1 << 16) -> None:
    n = mixture.shape[-1]
    for i in range(0, n, block):
        sketch.feed(None if stems is None else stems[..., i:i + block], mixture[..., i:i + block])


def plot_separation(
    png_path: str | os.PathLike, mixture: np.ndarray, sample_rate: int, stems: np.ndarray | None = None,
    events: Iterable | None = None, title: str | None = None,
) -> None:
    """Write a PNG of ``mixture`` ``(samples,)`` or ``(channels, samples)``, its ``stems``
    ``(C, samples)`` or ``(C, channels, samples)`` in class order, and ``events`` (objects with
    ``cls``, ``start``, ``end`` in seconds and optionally ``confidence``). Atomic: the file appears
    complete or not at all."""
    mixture = np.asarray(mixture, np.float32)
    if mixture.shape[-1] == 0:
        raise CocktailError("nothing to plot: the mixture has no samples")
    if stems is not None:
        stems = np.asarray(stems, np.float32)
        if stems.shape[0] != len(CLASSES) or stems.shape[-1] != mixture.shape[-1]:
            raise CocktailError(f"stems must be ({len(CLASSES)}, ..., {mixture.shape[-1]}) in class order, got {stems.shape}")
    sketch = SeparationSketch(sample_rate)
    _feed_in_blocks(sketch, mixture, stems)
    write_png(png_path, sketch.png(events, title))


def write_png(png_path: str | os.PathLike, data: bytes) -> None:
    try:
        with atomic_open(png_path, "wb") as fh:
            fh.write(data)
    except OSError as err:
        raise CocktailError(f"cannot write ({err.strerror or err})", os.fspath(png_path)) from None


# -- drawing ------------------------------------------------------------------------------------------
def _png_bytes(fig) -> bytes:
    """The figure as PNG with a 256-colour palette: spectrograms are noise-like and compress
    badly as RGB (a 30 s picture: ~400 KB), but use few distinct colours (the colour map's 256,
    the class colours, text); palette PNG is a third of the size and looks the same."""
    from PIL import Image  # matplotlib's own dependency

    raw = io.BytesIO()
    fig.savefig(raw, format="png")
    raw.seek(0)
    image = Image.open(raw).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _figure(**kwargs):
    """A matplotlib Figure on the Agg canvas: files only, no display whatever the environment
    says, and no pyplot (its global state is not thread-safe; ``separate --jobs`` draws in
    threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


@dataclass
class _Event:
    cls: str
    start: float
    end: float
    confidence: float | None


def _events(events: Iterable | None) -> list[_Event]:
    out = []
    for e in events or []:
        get = e.get if isinstance(e, dict) else lambda k, d=None, e=e: getattr(e, k, d)
        cls = get("cls", None) or get("class", None)
        out.append(_Event(str(cls), float(get("start")), float(get("end")), get("confidence", None)))
    return out


def _time_unit(duration: float) -> tuple[float, str]:
    if duration > 3 * 3600:
        return 3600.0, "h"
    if duration > 180:
        return 60.0, "min"
    return 1.0, "s"


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


def render_separation(
    mixture: np.ndarray, column_s: float, sample_rate: int, stems: Sequence[np.ndarray], classes: Sequence[str],
    events: Iterable | None = None, title: str | None = None, duration: float | None = None,
) -> bytes:
    """PNG bytes: mel power spectrograms ``(n_mels, columns)`` of the mixture and stems, events lane."""
    import librosa

    lane = events is not None  # an empty list: none found (drawn); None: not looked for (no lane)
    events = _events(events)
    duration = duration if duration is not None else mixture.shape[1] * column_s
    unit, unit_name = _time_unit(duration)
    ref = np.nanmax(mixture) if np.isfinite(np.nanmax(mixture)) and np.nanmax(mixture) > 0 else 1.0
    fmax = sample_rate / 2
    mel_lo, mel_hi = librosa.hz_to_mel(min(FMIN, fmax / 2)), librosa.hz_to_mel(fmax)
    ticks = [t for t in (100, 500, 1000, 2000, 5000, 10000) if FMIN < t < fmax]

    panels = [("mixture", mixture, "#000000")] + [(c, s, CLASS_COLOURS.get(c, "#000000")) for c, s in zip(classes, stems)]
    heights = [1.6] + [1.0] * len(stems) + ([0.25 * len(classes) + 0.3] if lane else [])
    fig_h = sum(heights) + 1.0
    fig = _figure(figsize=(11, fig_h), dpi=90)
    axes = fig.subplots(len(heights), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights, "hspace": 0.12})
    axes = axes[:, 0]
    extent = (0, mixture.shape[1] * column_s / unit, mel_lo, mel_hi)
    image = None
    for ax, (name, power, colour) in zip(axes, panels):
        db = 10 * np.log10(np.maximum(power, 1e-30) / ref)
        image = ax.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=-DB_RANGE, vmax=0,
                          interpolation="nearest")
        shown = ticks if name == "mixture" else [t for t in ticks if t in (100, 1000, 10000)]
        ax.set_yticks(librosa.hz_to_mel(np.array(shown, float)), [_hz_label(t) for t in shown])
        ax.set_ylabel("frequency (Hz)" if name == "mixture" else "Hz", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=8)
        mixture_panel = name == "mixture"  # a white label: black would vanish in the dark of silence
        ax.text(0.005, 0.93, name, transform=ax.transAxes, va="top", ha="left", fontsize=10, weight="bold",
                color="black" if mixture_panel else "white",
                bbox=dict(boxstyle="round,pad=0.25", fc="white" if mixture_panel else colour, ec="none", alpha=0.9))
        for side in ("left", "right", "top", "bottom"):
            ax.spines[side].set_color(colour)
            ax.spines[side].set_linewidth(2.5 if name != "mixture" else 1.0)
    if lane:
        ax = axes[-1]
        for row, cls in enumerate(classes):
            y = len(classes) - 1 - row
            ax.axhspan(y - 0.5, y + 0.5, color="#F4F4F4" if row % 2 else "white", zorder=0)
            mine = [e for e in events if e.cls == cls]
            for e in mine:
                alpha = 0.35 + 0.65 * float(e.confidence) if e.confidence is not None else 1.0
                ax.broken_barh([(e.start / unit, max(e.end - e.start, 0) / unit)], (y - 0.38, 0.76),
                               facecolor=CLASS_COLOURS.get(cls, "#000000"), alpha=min(alpha, 1.0), edgecolor="none")
        ax.set_yticks(range(len(classes)), list(reversed(classes)), fontsize=8)
        for label, cls in zip(ax.get_yticklabels(), reversed(classes)):
            label.set_color(CLASS_COLOURS.get(cls, "#000000"))
            label.set_weight("bold")
        ax.set_ylim(-0.5, len(classes) - 0.5)
        ax.tick_params(labelsize=8)
        ax.text(1.005, 0.5, "events" if events else "events\n(none)", transform=ax.transAxes, fontsize=8,
                va="center", ha="left")
    axes[-1].set_xlim(0, duration / unit)
    axes[-1].set_xlabel(f"time ({unit_name})", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11, x=0.47, y=1 - 0.2 / fig_h)
    fig.subplots_adjust(left=0.075, right=0.9, top=1 - 0.5 / fig_h, bottom=0.5 / fig_h)
    top, low = axes[0].get_position(), axes[len(panels) - 1].get_position()
    bar = fig.colorbar(image, cax=fig.add_axes((0.915, low.y0, 0.012, top.y1 - low.y0)))
    bar.set_label("dB re the mixture's loudest bin", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    return _png_bytes(fig)


def _system_names(systems: dict) -> tuple[str | None, str | None]:
    """The estimate system (model, else estimate) and the oracle of an aggregate's systems."""
    estimate = next((s for s in ("model", "estimate") if s in systems), None)
    oracle = next((s for s in sorted(systems) if s.startswith("oracle")), None)
    return estimate, oracle


def plot_scores(png_path: str | os.PathLike, table: dict, title: str | None = None) -> None:
    """Write a PNG of per-class SI-SDRi and SDR (means over active stems, dB) from ``cocktail
    eval``'s aggregate ``table`` (:func:`cocktail_cli.evaluate.aggregate`): the model (or the
    estimates) beside the floor (the mixture) and the oracle, per class and overall."""
    from matplotlib.patches import Patch

    systems = table.get("systems", {})
    estimate, oracle = _system_names(systems)
    order = [s for s in ("mixture", estimate, oracle) if s is not None and s in systems]
    if not order:
        raise CocktailError("nothing to plot: the score table has no systems")
    groups = [*CLASSES, "overall"]
    labels = {"mixture": "floor (mixture)", "model": "model", "estimate": "estimates"}
    if oracle:
        labels[oracle] = f"oracle ({oracle.removeprefix('oracle_')})"
    fig = _figure(figsize=(11, 4.2), dpi=90)
    axes = fig.subplots(1, 2)
    width = 0.8 / len(order)
    x = np.arange(len(groups))
    for ax, metric, name in zip(axes, ("si_sdri_mean", "sdr_mean"), ("SI-SDRi (dB)", "SDR (dB)")):
        for k, system in enumerate(order):
            block = systems[system]
            values = [(block["overall"] if g == "overall" else block["classes"][g]).get(metric) for g in groups]
            colours = [CLASS_COLOURS.get(g, "#333333") for g in groups]
            pos = x + (k - (len(order) - 1) / 2) * width
            heights = [0.0 if v is None else v for v in values]
            if system == "mixture":
                style = dict(color=SYSTEM_COLOURS["mixture"], edgecolor="#888888")
            elif system == oracle:
                style = dict(color="white", edgecolor=colours, hatch="///", linewidth=1.2)
            else:
                style = dict(color=colours, edgecolor="black", linewidth=0.6)
            ax.bar(pos, heights, width, **style, zorder=2)
            for p, v in zip(pos, values):
                text = "n/a" if v is None else f"{v:.1f}"
                ax.text(p, (v or 0) + (0.3 if (v or 0) >= 0 else -0.3), text, ha="center",
                        va="bottom" if (v or 0) >= 0 else "top", fontsize=6.5, rotation=90 if len(order) > 2 else 0)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, groups, fontsize=8)
        for label, g in zip(ax.get_xticklabels(), groups):
            label.set_color(CLASS_COLOURS.get(g, "#000000"))
            label.set_weight("bold")
        ax.set_ylabel(name, fontsize=9)
        ax.grid(axis="y", color="#DDDDDD", zorder=0)
        ax.set_title(f"{name.split(' ')[0]}, mean over active stems", fontsize=10)
        lo, hi = ax.get_ylim()
        margin = 0.12 * (hi - min(lo, 0))  # room for the value labels above and below the bars
        ax.set_ylim(min(lo, 0) - (margin if lo < 0 else 1), hi + margin)
    handles = [Patch(facecolor=SYSTEM_COLOURS["mixture"], edgecolor="#888888", label=labels["mixture"])]
    if estimate:
        handles.append(Patch(facecolor="#555555", edgecolor="black", label=f"{labels.get(estimate, estimate)} (class colour)"))
    if oracle:
        handles.append(Patch(facecolor="white", edgecolor="#555555", hatch="///", label=labels[oracle]))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    n = table.get("mixtures")
    fig.suptitle(title or f"cocktail eval: {n} mixture(s)", fontsize=11)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.86, bottom=0.2, wspace=0.18)
    write_png(png_path, _png_bytes(fig))


__all__ = ["CLASS_COLOURS", "SeparationSketch", "SpectrogramSketch", "check_matplotlib", "plot_scores", "plot_separation"]
