"""When each sound happens: per-frame class evidence in, events (class, start, end) out.

The evidence is :meth:`Separator.frame_activity`'s: ``prob`` (C, T), the activity head's
probability or, for a network without a head, each class's share of the frame's energy under
its mask, and ``level_db`` (C, T), each stem's frame level; frame ``j`` is centred on
``j / frame_rate`` seconds. Post-processing, per class:

1. a median filter of ``median_seconds`` over ``prob`` (edges: the first and last frame repeated);
2. hysteresis: an event starts at a frame whose smoothed value reaches ``on`` and lasts while it
   stays at or above ``off`` (causal, so a live stream can decide as frames come);
3. events separated by a gap shorter than ``min_gap_seconds`` are one event;
4. events shorter than ``min_event_seconds`` are dropped;
5. with ``trim_db`` (files only), each event is cut to the frames where its stem, averaged over
   50 ms, is within ``trim_db`` of the event's loudest, gaps and pieces as in 3 and 4: the rule
   the bench's reference draws a clip's events by (bench/scenes.py: 50 ms windows within 20 dB
   of the loudest), on the estimated stem. Why: the head finds where a class sounds, but smears
   its edges over its 3 s field; tuned per class (scripts/tune_events.py), the trim lifts the
   shipped head's event F1 on 100 val scenes 0.415 -> 0.434 (200 test scenes 0.402 -> 0.409). A live
   stream has already announced a start when the trim would move it, so watch leaves it off.

``median_seconds``, ``min_event_seconds`` and ``min_gap_seconds`` are one number for every class
or a number per class (a dog's barks want a short filter, a siren's slow swell a long one).

:func:`detect` does it for a whole array; :class:`EventTracker` does the same frame by frame
(for ``cocktail watch`` and for files of any length) and gives the same events. The settings
travel in a checkpoint's ``inference["events"]`` (:func:`settings_for`), so tuning
(``scripts/tune_events.py``) ships with a model; ``inference["watch_events"]``, where present, are
those of a live stream (``cocktail watch``), tuned with short filters and shortest events because
every frame of smoothing or confirmation delays an alert.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .classes import CLASSES, TARGET_CLASSES

#: Longest median filter, shortest event and shortest gap a checkpoint may ask for (seconds).
MAX_SECONDS = 10.0
#: A frame whose stem is quieter than this (dBFS) is no evidence of its class, whatever the network
#: says. Why: an activity head hears context, and in digital silence next to a siren a trained one
#: (issue 27's p18w173) reported "speech" at -120 dBFS. -90 dBFS lies above a 16-bit file's
#: quantisation floor (about -101) and 45 dB under the quietest mixtures of training.
SILENT_DB = -90.0
#: Largest ``trim_db`` a checkpoint may ask for (dB).
MAX_TRIM_DB = 60.0
#: The level the trim compares is averaged over this long (s): the reference's windows.
TRIM_WINDOW_SECONDS = 0.05
#: Longest analysis chunk a checkpoint may ask for (seconds): memory grows with it.
MAX_CHUNK_SECONDS = 60.0
#: The chunk length ``cocktail events`` analyses in by default (seconds), separation's own; a
#: checkpoint's event settings may name another (``chunk_seconds``: the chunks its thresholds
#: were tuned on). Measured on 40 val scenes (scripts/tune_events.py, each length tuned for
#: itself): with the model shipped before 2026-12-04, whose features were floored relative to the
#: loudest bin of the chunk, 3 s chunks gave class-averaged event F1 0.267 / segment F1 0.751
#: against 0.218 / 0.671 with 20 s chunks, so 3 s was the default. With the shipped model's local
#: statistics and floor: 0.334 / 0.720 (3 s) against 0.335 / 0.694 (20 s), and on 40 test scenes
#: 0.261 / 0.733 against 0.287 / 0.688; in 3 s chunks a corpus siren after quiet noise started
#: 0.96 s early (20 s: 0.31 s, tests/test_events.py), and 20 s chunks cost a sixth of 3 s
#: chunks' overlaps and are the chunks `separate --events` sees.
EVENT_CHUNK_SECONDS = 20.0


#: The defaults: tuned for the shipped model (energy shares, no activity head) on 40 val scenes by
#: ``python scripts/tune_events.py --scenes 40 --chunk-seconds 20`` (retuned 2026-12-04 for its
#: local statistics: val event F1 0.222 with the earlier defaults -> 0.335). The shares of a
#: sounding class are small where the background is loud, hence thresholds far below one half.
_TUNED_ON = {"baby_cry": 0.05, "siren": 0.2, "dog": 0.1, "speech": 0.08, "other": 0.3}
_TUNED_OFF = {"baby_cry": 0.05, "siren": 0.1, "dog": 0.05, "speech": 0.08, "other": 0.15}


def _default_on() -> dict[str, float]:
    return dict(_TUNED_ON)


def _default_off() -> dict[str, float]:
    return dict(_TUNED_OFF)


#: the settings that are a length in seconds: one number, or a number per class
_LENGTHS = ("median_seconds", "min_event_seconds", "min_gap_seconds")
#: every setting that may be one number or a number per class
_PER_CLASS = (*_LENGTHS, "trim_db")


@dataclass
class EventSettings:
    """Post-processing of per-frame evidence into events (see the module doc)."""

    on: dict[str, float] = field(default_factory=_default_on)
    off: dict[str, float] = field(default_factory=_default_off)
    median_seconds: float | dict[str, float] = 0.1
    min_event_seconds: float | dict[str, float] = 0.1
    min_gap_seconds: float | dict[str, float] = 0.5
    #: the chunks ``cocktail events`` runs the network on, as tuned (a network whose statistics
    #: are local hears a quiet sound as well in 20 s chunks, which cost a sixth of 3 s chunks'
    #: overlaps)
    chunk_seconds: float = EVENT_CHUNK_SECONDS
    #: 0: no trim (step 5); a number, or a number per class
    trim_db: float | dict[str, float] = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> "EventSettings":
        """Settings from a dict (a checkpoint's); ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"event settings must be a mapping, got {type(data).__name__}")
        unknown = set(data) - {"on", "off", *_PER_CLASS, "chunk_seconds"}
        if unknown:
            raise ValueError(f"unknown event settings {sorted(unknown)}")
        base = cls()
        on = {**base.on, **dict(data.get("on") or {})}
        off = {**base.off, **dict(data.get("off") or {})}
        lengths = {}
        for name in _PER_CLASS:
            value = data.get(name, getattr(base, name))
            if isinstance(value, dict):  # classes it does not name keep the default
                value = {**{c: getattr(base, name) for c in CLASSES}, **value}
            lengths[name] = value
        settings = cls(on=on, off=off, chunk_seconds=data.get("chunk_seconds", base.chunk_seconds), **lengths)
        settings.check()
        return settings

    def check(self) -> None:
        for name in ("on", "off"):
            table = getattr(self, name)
            extra = set(table) - set(CLASSES)
            if extra:
                raise ValueError(f"event thresholds for unknown classes {sorted(extra)}")
        for c in CLASSES:
            on, off = self.on.get(c), self.off.get(c)
            if not all(isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in (on, off)):
                raise ValueError(f"event thresholds of {c} must lie in [0, 1] (on {on!r}, off {off!r})")
            if off > on:
                raise ValueError(f"event thresholds of {c}: off ({off}) above on ({on})")
        for name in _PER_CLASS:
            value = getattr(self, name)
            if isinstance(value, dict):
                extra = set(value) - set(CLASSES)
                if extra:
                    raise ValueError(f"{name} for unknown classes {sorted(extra)}")
                missing = set(CLASSES) - set(value)
                if missing:
                    raise ValueError(f"{name} lacks classes {sorted(missing)}")
            top, unit = (MAX_TRIM_DB, " dB") if name == "trim_db" else (MAX_SECONDS, " s")
            for v in (value.values() if isinstance(value, dict) else [value]):
                if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= top:
                    raise ValueError(f"{name} must lie in [0, {top:g}]{unit} (got {v!r})")
        v = self.chunk_seconds
        if not isinstance(v, (int, float)) or not math.isfinite(v) or not 1.0 <= v <= MAX_CHUNK_SECONDS:
            raise ValueError(f"chunk_seconds must lie in [1, {MAX_CHUNK_SECONDS:g}] s (got {v!r})")

    def length(self, name: str, cls: str) -> float:
        """Seconds of the length setting ``name`` for class ``cls`` (dB for ``trim_db``)."""
        value = getattr(self, name)
        return float(value[cls] if isinstance(value, dict) else value)

    # frame counts at a frame rate (``cls`` may be omitted where the setting is one number)
    def median_frames(self, frame_rate: float, cls: str | None = None) -> int:
        """Odd length of the median filter in frames (1: no filter)."""
        half = int(round(self.length("median_seconds", cls) * frame_rate / 2))
        return 2 * half + 1

    def min_event_frames(self, frame_rate: float, cls: str | None = None) -> int:
        return int(round(self.length("min_event_seconds", cls) * frame_rate))

    def min_gap_frames(self, frame_rate: float, cls: str | None = None) -> int:
        return int(round(self.length("min_gap_seconds", cls) * frame_rate))

    def live(self) -> "EventSettings":
        """These settings for a live stream: no trim (a start once reported stays)."""
        return EventSettings(**{**asdict(self), "trim_db": 0.0})


def settings_for(loaded, live: bool = False) -> EventSettings:
    """The event settings a loaded checkpoint carries (``inference["events"]``; with ``live``,
    ``inference["watch_events"]`` where present), else the defaults."""
    inference = getattr(loaded, "inference", None) or {}
    data = inference.get("watch_events", inference.get("events")) if live else inference.get("events")
    return EventSettings() if data is None else EventSettings.from_dict(data)


@dataclass
class Event:
    """One event: ``cls`` sounding from ``start`` to ``end`` (seconds); ``peak_db``: its stem's
    highest frame level (dBFS); ``confidence``: its mean per-frame evidence (0-1)."""

    cls: str
    start: float
    end: float
    peak_db: float
    confidence: float

    def to_json(self) -> dict:
        return {
            "class": self.cls, "start": round(self.start, 3), "end": round(self.end, 3),
            "peak_db": round(self.peak_db, 1), "confidence": round(self.confidence, 3),
        }


@dataclass
class Change:
    """What :class:`EventTracker` reports: an event of ``cls`` started or ended at ``time`` (s).

    ``confidence`` is the mean evidence so far (at a start) or of the whole event (at an end);
    an end carries the finished :class:`Event`.
    """

    kind: str  # "start" | "end"
    cls: str
    time: float
    confidence: float
    event: Event | None = None

    def to_json(self) -> dict:
        return {"event": self.kind, "class": self.cls, "time": round(self.time, 3),
                "confidence": round(self.confidence, 3)}


def _median_windows(padded: np.ndarray, size: int) -> np.ndarray:
    """Medians of every ``size``-long window along the last axis of ``padded`` (..., n) -> (..., n - size + 1).

    One function for :func:`detect` and :class:`EventTracker`, so both give identical values."""
    if size == 1:
        return padded.copy()
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=-1)
    return np.median(windows, axis=-1)


def _audible(prob: np.ndarray, level_db: np.ndarray) -> np.ndarray:
    """``prob`` with frames whose stem is under :data:`SILENT_DB` set to no evidence."""
    return np.where(level_db < SILENT_DB, 0.0, prob)


def _class_index(classes: Sequence[str] | None) -> list[int]:
    return [CLASSES.index(c) for c in (classes if classes is not None else TARGET_CLASSES)]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` of every run of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))).tolist()
    return list(zip(edges[::2], edges[1::2]))


def _close_gaps(segments: Iterable[tuple[int, int]], min_gap: int) -> list[list[int]]:
    """Sorted ``(start, end)`` frame segments with every gap under ``min_gap`` frames closed (step 3)."""
    merged: list[list[int]] = []
    for a, b in segments:
        if merged and a - merged[-1][1] < min_gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return merged


def _trim_runs(level_db: np.ndarray, trim_db: float, frame_rate: float, min_gap: int, min_event: int) -> list[tuple[int, int]]:
    """Step 5 on one event's frames: ``(start, end)`` frame pieces of ``level_db`` (its stem's
    level, dBFS) where the level averaged over :data:`TRIM_WINDOW_SECONDS` (as power, centred,
    the event's edges averaging fewer frames) is within ``trim_db`` of its highest; gaps under
    ``min_gap`` frames closed, pieces under ``min_event`` dropped."""
    half = int(round(TRIM_WINDOW_SECONDS * frame_rate / 2))
    power = np.power(10.0, np.asarray(level_db, np.float64) / 10.0)
    ones = np.ones(2 * half + 1)
    mean = np.convolve(power, ones, mode="same") / np.convolve(np.ones_like(power), ones, mode="same")
    level = 10.0 * np.log10(mean + 1e-30)
    pieces = _close_gaps(_runs(level >= level.max() - trim_db), min_gap)
    return [(a, b) for a, b in pieces if b - a >= min_event]


def detect(
    prob: np.ndarray, level_db: np.ndarray, frame_rate: float, settings: EventSettings | None = None,
    classes: Sequence[str] | None = None,
) -> list[Event]:
    """Events of ``classes`` (default the four target classes) in ``prob``/``level_db`` ``(C, T)``,
    sorted by start time (ties: class order)."""
    settings = settings or EventSettings()
    prob = np.asarray(prob, dtype=np.float64)
    level_db = np.asarray(level_db, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[0] != len(CLASSES) or level_db.shape != prob.shape:
        raise ValueError(f"expected prob and level_db of shape ({len(CLASSES)}, frames), got {prob.shape} and {level_db.shape}")
    t = prob.shape[1]
    if t == 0:
        return []
    prob = _audible(prob, level_db)
    events = []
    for i in _class_index(classes):
        c = CLASSES[i]
        size = settings.median_frames(frame_rate, c)
        s = _median_windows(np.pad(prob[i], size // 2, mode="edge"), size)
        min_event, min_gap = settings.min_event_frames(frame_rate, c), settings.min_gap_frames(frame_rate, c)
        high, low = s >= settings.on[c], s >= settings.off[c]
        # runs of ``low``; an event begins at the first ``high`` frame of a run and lasts to its end
        segments = []
        for a, b in _runs(low):
            hits = np.flatnonzero(high[a:b])
            if hits.size:
                segments.append((a + int(hits[0]), b))
        trim = settings.length("trim_db", c)
        for a, b in _close_gaps(segments, min_gap):
            if b - a < min_event:
                continue
            pieces = _trim_runs(level_db[i, a:b], trim, frame_rate, min_gap, min_event) if trim else [(0, b - a)]
            for p, q in pieces:
                events.append(Event(c, (a + p) / frame_rate, (a + q) / frame_rate, float(level_db[i, a + p:a + q].max()),
                                    float(prob[i, a + p:a + q].mean())))
    events.sort(key=lambda e: (e.start, CLASSES.index(e.cls)))
    return events


class _ClassState:
    __slots__ = ("active", "start", "end", "sum", "n", "peak", "gap_sum", "gap_n", "gap_peak", "confirmed", "frames")

    def __init__(self):
        self.active = False  # hysteresis state
        self.start = None  # first frame of the open candidate event, or None
        self.end = 0
        self.sum = self.n = 0
        self.peak = -math.inf
        self.gap_sum = 0.0
        self.gap_n = 0
        self.gap_peak = -math.inf
        self.confirmed = False
        self.frames = None  # with a trim: (prob, level) of every frame since start, gaps included


class EventTracker:
    """:func:`detect` frame by frame: :meth:`push` frames as they come, get :class:`Change` s.

    A start is reported once the event has lasted ``min_event_seconds`` (and the median filter
    has seen ``median_seconds / 2`` past it); an end once ``min_gap_seconds`` have passed without
    the class. Memory holds the filter's window, whatever the stream's length. The ended events,
    in the order they ended, are in :attr:`events`; sorted as :func:`detect` sorts them they are
    the same events.
    """

    def __init__(self, frame_rate: float, settings: EventSettings | None = None, classes: Sequence[str] | None = None,
                 keep_events: bool = True):
        self.frame_rate = float(frame_rate)
        self.settings = settings or EventSettings()
        self.index = _class_index(classes)
        names = [CLASSES[i] for i in self.index]
        self.sizes = [self.settings.median_frames(self.frame_rate, c) for c in names]
        # frames are decided once the longest filter has its right half (a shorter one reads the
        # same centred window's middle)
        self.size = max(self.sizes, default=1)
        self.half = self.size // 2
        self.min_event = [self.settings.min_event_frames(self.frame_rate, c) for c in names]
        self.min_gap = [self.settings.min_gap_frames(self.frame_rate, c) for c in names]
        self.trim = [self.settings.length("trim_db", c) for c in names]
        self.pending: np.ndarray | None = None  # (2, C', frames) not yet past the filter's centre
        self.frame = 0  # index of the next frame to decide
        self.state = [_ClassState() for _ in self.index]
        self.keep_events = keep_events
        self.events: list[Event] = []
        self.finished = False

    @property
    def time(self) -> float:
        """Seconds of stream decided so far."""
        return self.frame / self.frame_rate

    def open_events(self) -> list[str]:
        """Classes whose start has been reported and whose end has not."""
        return [CLASSES[i] for i, st in zip(self.index, self.state) if st.start is not None and st.confirmed]

    def push(self, prob: np.ndarray, level_db: np.ndarray) -> list[Change]:
        """Frames ``(C, n)`` of prob and level, in stream order."""
        level = np.asarray(level_db, np.float64)[self.index]
        block = np.stack([_audible(np.asarray(prob, np.float64)[self.index], level), level])
        if block.shape[-1] == 0:
            return []
        if self.pending is None:  # the filter's left edge: the first frame repeated
            block = np.concatenate([np.repeat(block[..., :1], self.half, axis=-1), block], axis=-1)
        else:
            block = np.concatenate([self.pending, block], axis=-1)
        return self._decide(block)

    def finish(self) -> list[Change]:
        """The end of the stream: the filter's right edge, then ends for the open events."""
        if self.finished:
            return []
        self.finished = True
        changes = []
        if self.pending is not None and self.pending.shape[-1] > self.half:
            tail = np.repeat(self.pending[..., -1:], self.half, axis=-1)
            changes += self._decide(np.concatenate([self.pending, tail], axis=-1))
        for k, (st, i) in enumerate(zip(self.state, self.index)):
            if st.start is not None:
                changes += self._close(st, CLASSES[i], k)
        return changes

    def _decide(self, block: np.ndarray) -> list[Change]:
        n = block.shape[-1] - self.size + 1
        if n <= 0:
            self.pending = block
            return []
        length = block.shape[-1]
        smooth = [
            _median_windows(block[0, k, self.half - size // 2 : length - (self.half - size // 2)], size)
            for k, size in enumerate(self.sizes)
        ]  # each (n,)
        raw = block[:, :, self.half : self.half + n]
        self.pending = block[..., n:]
        changes = []
        for k, (st, i) in enumerate(zip(self.state, self.index)):
            c = CLASSES[i]
            on, off = self.settings.on[c], self.settings.off[c]
            values, probs, levels = smooth[k].tolist(), raw[0, k].tolist(), raw[1, k].tolist()
            for j in range(n):
                frame = self.frame + j
                v = values[j]
                st.active = v >= off if st.active else v >= on
                if st.active:
                    if st.start is None:
                        st.start, st.sum, st.n, st.peak = frame, 0.0, 0, -math.inf
                        st.frames = [] if self.trim[k] else None
                    elif st.gap_n:  # a gap shorter than min_gap: it belongs to the event
                        st.sum += st.gap_sum
                        st.n += st.gap_n
                        st.peak = max(st.peak, st.gap_peak)
                    st.gap_sum, st.gap_n, st.gap_peak = 0.0, 0, -math.inf
                    st.sum += probs[j]
                    st.n += 1
                    st.peak = max(st.peak, levels[j])
                    st.end = frame + 1
                    if st.frames is not None:
                        st.frames.append((probs[j], levels[j]))
                    if not st.confirmed and st.end - st.start >= self.min_event[k]:
                        st.confirmed = True
                        changes.append(Change("start", c, st.start / self.frame_rate, st.sum / st.n))
                elif st.start is not None:
                    st.gap_sum += probs[j]
                    st.gap_n += 1
                    st.gap_peak = max(st.gap_peak, levels[j])
                    if st.frames is not None:
                        st.frames.append((probs[j], levels[j]))
                    if st.gap_n >= self.min_gap[k]:
                        changes += self._close(st, c, k)
        self.frame += n
        changes.sort(key=lambda ch: (ch.time, ch.kind == "start"))
        return changes

    def _close(self, st: _ClassState, c: str, k: int) -> list[Change]:
        out = []
        if st.confirmed:
            fr = self.frame_rate
            if st.frames is None:
                found = [Event(c, st.start / fr, st.end / fr, st.peak, st.sum / st.n)]
            else:  # step 5 on the event's own frames (detect's, so the same events)
                probs, levels = np.array(st.frames[: st.end - st.start]).T
                found = [Event(c, (st.start + a) / fr, (st.start + b) / fr, float(levels[a:b].max()), float(probs[a:b].mean()))
                         for a, b in _trim_runs(levels, self.trim[k], fr, self.min_gap[k], self.min_event[k])]
            if self.keep_events:
                self.events.extend(found)
            if found:
                out.append(Change("end", c, found[-1].end, found[-1].confidence, found[-1]))
        st.start, st.confirmed, st.frames = None, False, None
        st.gap_sum, st.gap_n, st.gap_peak = 0.0, 0, -math.inf
        return out


def sorted_events(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.start, CLASSES.index(e.cls)))


# -- file formats ---------------------------------------------------------------------------------
def events_json(name: str, events: Iterable[Event], duration: float | None = None) -> dict:
    """``{"file": name, "events": [...]}`` (``duration`` added when known)."""
    obj = {"file": name, "events": [e.to_json() for e in events]}
    if duration is not None:
        obj["duration"] = round(duration, 3)
    return obj


def events_table(rows: Iterable[tuple[str, Event]], sep: str = "\t", header: bool = True) -> str:
    """The DCASE layout ``filename onset offset event_label`` (what sed_eval and psds_eval read).

    With the header line: sed_eval's reader (dcase_util) guesses whether the first line is one,
    and without it took the first event for a header (tab) or read nothing (comma)."""
    lines = [sep.join(("filename", "onset", "offset", "event_label"))] if header else []
    for name, e in rows:
        lines.append(sep.join((name, f"{e.start:.3f}", f"{e.end:.3f}", e.cls)))
    return "\n".join(lines) + ("\n" if lines else "")


def clamp(events: Iterable[Event], duration: float) -> list[Event]:
    """Ends past the input's last sample (the last frame is centred on it) cut to ``duration``."""
    return [Event(e.cls, min(e.start, duration), min(e.end, duration), e.peak_db, e.confidence) for e in events]


__all__ = ["Change", "Event", "EventSettings", "EventTracker", "detect", "events_json", "events_table", "settings_for"]


# -- files ----------------------------------------------------------------------------------------
@dataclass
class FileEvents:
    """The events of one input (``cocktail events``)."""

    name: str
    events: list[Event]
    duration: float
    sample_rate: int
    channels: int
    seconds: float = 0.0

    def to_json(self) -> dict:
        return events_json(self.name, self.events)


def events_of_file(sep, path: str, name: str, settings: EventSettings | None = None,
                   classes: Sequence[str] | None = None, progress=None, block_frames: int = 1 << 16) -> FileEvents:
    """The events of an audio file, read block by block (flat memory; ``path`` a file name, not
    ``-``). ``progress(done_seconds, total_seconds_or_None)`` is called per block read.
    Raises :class:`~cocktail_cli.errors.CocktailError` subclasses naming the file."""
    import time

    from .audio import open_audio
    from .errors import AudioError

    start = time.perf_counter()
    with open_audio(path, name) as reader:
        sr, channels, frames = reader.samplerate, reader.channels, reader.frames
        if frames == 0:
            raise AudioError("contains no audio samples", name)
        if frames is not None and frames < sep.min_input_samples(sr):
            raise AudioError(f"too short to analyse ({frames} samples; need at least {sep.min_input_samples(sr)} at {sr} Hz)", name)
        total = (frames if frames is not None else reader.estimated_frames)
        tracker = EventTracker(sep.frame_rate, settings, classes)
        n = 0

        def counted():
            nonlocal n
            for block in reader.blocks(block_frames):
                n += block.shape[1]
                if progress is not None:
                    progress(n / sr, None if total is None else max(total, n) / sr)
                yield block

        for act in sep.activity_blocks(counted(), sr, name):
            tracker.push(act[0], act[1])
        tracker.finish()
    duration = n / sr
    return FileEvents(name, clamp(sorted_events(tracker.events), duration), duration, sr, channels,
                      time.perf_counter() - start)


def timeline(events: Iterable[Event], cls: str, duration: float, width: int) -> str:
    """One line of ``width`` cells for ``cls``: ``█`` where one of its events sounds, ``·`` elsewhere."""
    cells = ["·"] * width
    if duration > 0:
        for e in events:
            if e.cls != cls:
                continue
            a = int(e.start / duration * width)
            b = max(a + 1, int(math.ceil(e.end / duration * width)))
            for k in range(max(0, a), min(width, b)):
                cells[k] = "█"
    return "".join(cells)
