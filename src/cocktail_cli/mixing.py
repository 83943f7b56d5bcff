"""Training mixtures drawn on the fly from source clips held in memory (``train --sources``).

Every step gets fresh mixtures: for each of the four target classes a clip is active with
``active_prob``, "other" gets one or two clips (``others``); each source is cropped (or placed, when shorter)
at random, sped up or slowed down (pitch and tempo together, by resampling), band-limited and
scaled on its own (and, with ``vocoder_prob``, pitch-shifted and stretched by a phase vocoder, as
the 2019 study's recipe and ``synth`` do). The finished mixture then goes through what a user's
file goes through before it reaches the model, applied to every stem alike so the stems still add
up to the mixture:

- its level (the mixture's peak anywhere from -45 to 0 dBFS);
- a resampling round trip through 8/16/44.1/48 kHz (a phone call, a resampled download);
- a low-pass (an MP3/AAC encoder's, a cheap microphone's);
- background noise (white, pink or brown) at -80..-20 dB of the mixture, added to ``other``;
- quantisation to 8-24 bits, with or without dither, or none (float): the quantisation error
  is added to ``other`` too, since it is part of what the model hears.

Why: the model learned its training data's quirks (every mixture carried a 16-bit noise floor,
every baby cry was 8 kHz phone audio), and separated a 44.1 kHz or float file into ``other``.
Drawing everything from ``(seed, step, example)`` keeps a run a pure function of the step, so
``--resume`` continues exactly and each process of a distributed run draws only its own slice.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import soundfile as sf
import soxr

from .audio import resample
from .augment import make_variants
from .classes import CLASSES, N_CLASSES, TARGET_CLASSES
from .errors import CocktailError
from .cries import draw_cry, render_cry
from .decoys import draw_decoy, render_decoy
from .sirens import draw_siren, render_siren
from .sources import folder_of, scan_folders

OTHER = CLASSES.index("other")


@dataclass
class MixConfig:
    """How mixtures are drawn; recorded in the checkpoint so a resumed run draws the same."""

    seconds: float = 4.0
    active_prob: float = 0.7
    others: tuple[int, int] = (1, 2)
    # per source
    gain_db: float = 8.0
    speed_prob: float = 0.5
    speed_range: tuple[float, float] = (0.85, 1.18)
    band_prob: float = 0.3  # low-pass any class, so bandwidth never tells a class
    #: through an 8 kHz phone line, as every baby cry of the corpus came: so 4 kHz of bandwidth
    #: is no sign of a baby
    phone_prob: float = 0.15
    highpass_prob: float = 0.1
    synthetic_siren_prob: float = 0.4
    #: the 2019 study's processing (synth's default): a phase vocoder shifts the source's pitch by
    #: +-vocoder_steps semitones and stretches it vocoder_stretch times, leaving the vocoder's
    #: smeared transients and phasiness that every source of a `synth` test mixture carries.
    #: Off by default. Cost, measured on a busy 2-core machine: a 4 s example with every source
    #: vocoded takes 0.14 CPU-s to draw, against 0.045 without (a training step: about 4 CPU-s).
    vocoder_prob: float = 0.0
    vocoder_steps: tuple[float, ...] = (2.0, 4.0)
    vocoder_stretch: float = 1.2
    #: Synthetic full-band cries (cries.py) in place of a corpus cry, so a cry is heard by its
    #: pitch contour and rhythm rather than by the one phone app every corpus cry came through.
    synthetic_cry_prob: float = 0.0
    #: Synthetic look-alikes (decoys.py: rings, beeps, bells, whistles, chords) in place of an
    #: "other" clip: hard negatives for siren, dog and baby_cry.
    decoy_prob: float = 0.0
    #: Scenes (draw_scene) instead of filled crops for this share of examples: events with onsets,
    #: offsets and gaps over a background that runs on, or over silence. Off by default, so runs
    #: recorded before it existed draw as they did.
    scene_prob: float = 0.0
    scene_active_prob: float = 0.5  # each target class present in a scene
    scene_repeat_prob: float = 0.3  # ... and, when present, heard twice
    scene_empty_prob: float = 0.1  # a scene with no target at all (background and decoys only)
    scene_background_prob: float = 0.75  # a continuous "other" background under the events
    scene_background_db: tuple[float, float] = (-30.0, -3.0)  # its level against the events'
    scene_other_events: tuple[int, int] = (0, 2)  # short "other" events besides the background
    scene_event_s: tuple[float, float] = (0.3, 6.0)  # event lengths (log-uniform, at most the example)
    # the whole mixture (the user's file)
    level_dbfs: tuple[float, float] = (-45.0, 0.0)
    roundtrip_prob: float = 0.3
    roundtrip_rates: tuple[int, ...] = (8000, 16000, 44100, 48000)
    lowpass_prob: float = 0.15
    noise_prob: float = 0.5
    noise_db: tuple[float, float] = (-80.0, -20.0)
    #: quantisation: bits (0 = float, none) and their probabilities
    bits: tuple[int, ...] = (0, 8, 12, 16, 24)
    bits_prob: tuple[float, ...] = (0.4, 0.05, 0.1, 0.35, 0.1)
    dither_prob: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "MixConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d or {}) - known)
        if unknown:
            raise CocktailError(f"unknown mixing setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        defaults = cls()
        return cls(**{k: _coerce(k, v, getattr(defaults, k)) for k, v in (d or {}).items()})


#: Settings that are a (low, high) range: exactly two values.
_RANGES = {"others", "speed_range", "level_dbfs", "noise_db", "scene_background_db", "scene_other_events", "scene_event_s"}


def _coerce(key: str, value, default):
    """A --mix-arg value in its setting's type: ``others=0,2`` and ``others=[0,2]`` both give
    ``(0, 2)``. A wrong type is refused here, not as a traceback some steps into a run."""
    if isinstance(default, tuple):
        kind = type(default[0])
        if isinstance(value, str):
            value = [v.strip() for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]

        def item(v):
            if isinstance(v, bool):
                raise ValueError
            x = float(v)
            if kind is int and not x.is_integer():
                raise ValueError
            return kind(x)

        try:
            out = tuple(item(v) for v in value)
        except (TypeError, ValueError):
            out = None
        if out is None or (key in _RANGES and len(out) != 2):
            raise CocktailError(f"mixing setting {key}: expected a list of {kind.__name__}s like {','.join(map(str, default))}, got {value!r}")
        return out
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CocktailError(f"mixing setting {key}: expected a number like {default}, got {value!r}")
    return type(default)(value)


@dataclass
class ClipBank:
    """The clips of one split from one or more source folders, per class, as int16 at one rate.

    int16 halves the memory of float32 and loses nothing for 16-bit sources (both corpora are
    16-bit FLAC); the train splits of the corpus and corpus-extra take about 1.1 GB.
    """

    sample_rate: int
    split: str
    clips: dict[str, list[np.ndarray]] = field(default_factory=dict)
    listing: str = ""

    def __len__(self) -> int:
        return sum(len(v) for v in self.clips.values())


def load_bank(folders: list[str], split: str, sample_rate: int, progress=None) -> ClipBank:
    """Read every clip of ``split`` in ``folders`` into memory (mono, ``sample_rate``, int16)."""
    # sirens may be missing: synthetic ones stand in (MixConfig.synthetic_siren_prob)
    found = scan_folders(folders, split, optional=("siren",)).clips
    bank = ClipBank(sample_rate, split)
    h = hashlib.sha1()
    total = sum(len(v) for v in found.values())
    done = 0
    for cls in CLASSES:
        bank.clips[cls] = []
        for clip in found[cls]:
            try:
                x, sr = sf.read(clip.path, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, OSError) as err:
                raise CocktailError(f"cannot read source clip ({err})", clip.path) from None
            x = x.mean(axis=1)
            if sr != sample_rate:
                x = resample(x, sr, sample_rate)
            bank.clips[cls].append(np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16))
            # folder index and relative name, not the absolute path: a run resumes on another machine
            folder_index, rel = folder_of(clip.rel)
            h.update(f"{cls}\0{folder_index}\0{rel}\0{len(x)}\n".encode())
            done += 1
            if progress is not None:
                progress(done, total)
    bank.listing = h.hexdigest()[:16]
    return bank


# -- one example ---------------------------------------------------------------------------------


def _band(x: np.ndarray, cutoff: float, sr: int, kind: str) -> np.ndarray:
    """Low- or high-pass along the last axis: zero-phase, in the FFT domain, with a raised-cosine
    transition from 0.85 to 1.15 times ``cutoff``. Why not scipy's Butterworth: designing one
    took 12 ms and filtering 7 ms per 4 s source; this takes about 4 ms, and a training batch
    draws some 40 sources."""
    n = x.shape[-1]
    spec = np.fft.rfft(x, axis=-1)
    f = np.arange(spec.shape[-1]) * (sr / n)
    t = np.clip((f / cutoff - 0.85) / 0.3, 0.0, 1.0)
    gain = 0.5 + 0.5 * np.cos(np.pi * t)  # 1 below the band, 0 above
    if kind == "highpass":
        gain = 1.0 - gain
    return np.fft.irfft(spec * gain, n, axis=-1).astype(np.float32)


def _source(rng: np.random.Generator, bank: ClipBank, cls: str, n: int, cfg: MixConfig) -> np.ndarray:
    """One source of class ``cls``: ``n`` samples, peak about 1 before its gain."""
    sr = bank.sample_rate
    pool = bank.clips.get(cls) or []
    if cls == "siren" and (not pool or rng.random() < cfg.synthetic_siren_prob):
        x = render_siren(draw_siren(rng), n, sr)
    elif (rendered := _synthetic(rng, cls, n, sr, cfg)) is not None:
        x = rendered
    else:
        seg = _clip_segment(rng, pool, n, sr, cfg)
        x = np.zeros(n, np.float32)
        m = min(n, len(seg))
        at = int(rng.integers(0, n - m + 1))  # a short clip lands anywhere in the example
        x[at : at + m] = seg[:m]
    return _colour(rng, x, sr, cfg)


def _synthetic(rng: np.random.Generator, cls: str, n: int, sr: int, cfg: MixConfig) -> np.ndarray | None:
    """A synthetic cry or decoy in place of a clip, or None. No draw when both are off, so runs
    recorded before they existed draw the same numbers and resume exactly."""
    if cls == "baby_cry" and cfg.synthetic_cry_prob > 0 and rng.random() < cfg.synthetic_cry_prob:
        return render_cry(draw_cry(rng), n, sr)
    if cls == "other" and cfg.decoy_prob > 0 and rng.random() < cfg.decoy_prob:
        return render_decoy(draw_decoy(rng), n, sr)
    return None


def _clip_segment(rng: np.random.Generator, pool: list[np.ndarray], n: int, sr: int, cfg: MixConfig) -> np.ndarray:
    """About ``n`` samples (fewer if the clip is shorter) of a random clip of ``pool``, at a random
    offset, sped up or slowed down and maybe through the phase vocoder; float32."""
    clip = pool[int(rng.integers(len(pool)))]
    speed = float(rng.uniform(*cfg.speed_range)) if rng.random() < cfg.speed_prob else 1.0
    shape = None  # (semitones, stretch) of the phase vocoder; no draw when it is off, so
    # runs recorded before it existed draw the same numbers and resume exactly
    if cfg.vocoder_prob > 0 and rng.random() < cfg.vocoder_prob:
        steps = float(cfg.vocoder_steps[int(rng.integers(len(cfg.vocoder_steps)))])
        shape = (steps if rng.random() < 0.5 else -steps, float(cfg.vocoder_stretch))
    need = int(math.ceil(n * speed / (shape[1] if shape else 1.0))) + 16
    if len(clip) > need:
        start = int(rng.integers(0, len(clip) - need + 1))
        seg = clip[start : start + need]
    else:
        seg = clip
    seg = seg.astype(np.float32) / 32768.0
    if shape is not None:
        seg = make_variants(seg, sr, sr, [shape])[shape]
    if speed != 1.0:  # played faster: higher and shorter (a tape's speed change)
        seg = soxr.resample(seg, sr * speed, sr, quality="LQ").astype(np.float32)  # augmentation: LQ is 4x faster
    return seg


def _colour(rng: np.random.Generator, x: np.ndarray, sr: int, cfg: MixConfig) -> np.ndarray:
    """The channel a source came through (phone line, band limits) and its gain."""
    n = len(x)
    if rng.random() < cfg.phone_prob:
        x = soxr.resample(soxr.resample(x, sr, 8000, quality="HQ"), 8000, sr, quality="HQ")[:n].astype(np.float32)
        x = np.pad(x, (0, n - len(x)))
    if rng.random() < cfg.band_prob:
        x = _band(x, float(np.exp(rng.uniform(math.log(1500.0), math.log(0.45 * sr)))), sr, "lowpass")
    if rng.random() < cfg.highpass_prob:
        x = _band(x, float(rng.uniform(80.0, 600.0)), sr, "highpass")
    peak = float(np.abs(x).max())
    if peak > 0:
        x *= np.float32(10 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20) / peak)
    return x


def _fade(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Short raised-cosine fades (5-30 ms) at both ends: an event cut out of a longer recording."""
    m = min(len(x) // 2, int(rng.uniform(0.005, 0.03) * sr))
    if m > 1:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)).astype(np.float32)
        x[:m] *= ramp
        x[-m:] *= ramp[::-1]
    return x


def _event(rng: np.random.Generator, bank: ClipBank, cls: str, n: int, cfg: MixConfig) -> np.ndarray:
    """One event of class ``cls`` somewhere in ``n`` samples: a stretch of a clip (or a synthetic
    siren, cry or decoy) that starts and stops, possibly cut by the example's edges; silence elsewhere."""
    sr = bank.sample_rate
    lo, hi = cfg.scene_event_s
    span = int(np.exp(rng.uniform(math.log(lo), math.log(max(lo, min(hi, n / sr))))) * sr)
    span = max(1, min(span, n))
    pool = bank.clips.get(cls) or []
    if cls == "siren" and (not pool or rng.random() < cfg.synthetic_siren_prob):
        seg = render_siren(draw_siren(rng), span, sr)
    elif (rendered := _synthetic(rng, cls, span, sr, cfg)) is not None:
        seg = rendered
    else:
        seg = _clip_segment(rng, pool, span, sr, cfg)[:span]
    seg = _fade(seg.copy(), sr, rng)
    x = np.zeros(n, np.float32)
    m = len(seg)
    at = int(rng.integers(-m // 4, n - (3 * m) // 4 + 1))  # sometimes cut by the start or the end
    a, b = max(0, at), min(n, at + m)
    x[a:b] = seg[a - at : b - at]
    return _colour(rng, x, sr, cfg)


def _background(rng: np.random.Generator, bank: ClipBank, n: int, cfg: MixConfig) -> np.ndarray:
    """A continuous "other" sound under the whole example: a clip, looped with cross-fades if it
    is shorter (traffic, rain, a room), with its own channel colouring; peak about 1."""
    sr = bank.sample_rate
    pool = bank.clips.get("other") or []
    if not pool:
        return np.zeros(n, np.float32)
    seg = _clip_segment(rng, pool, n, sr, cfg)
    if len(seg) < n:  # loop it, with 20 ms cross-fades at the joins
        fade = min(int(0.02 * sr), len(seg) // 4)
        out = np.zeros(n + len(seg), np.float32)
        pos = 0
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32) if fade > 0 else np.zeros(0, np.float32)
        while pos < n:
            piece = seg.copy()
            if fade > 0:
                piece[:fade] *= ramp
                piece[-fade:] *= ramp[::-1]
            out[pos : pos + len(piece)] += piece
            pos += max(1, len(piece) - fade)
        seg = out[:n]
    return _colour(rng, seg[:n].copy(), sr, cfg)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise, unit RMS."""
    white = rng.standard_normal(n)
    colour = int(rng.integers(3))
    if colour:
        spec = np.fft.rfft(white)
        f = np.maximum(np.arange(len(spec)), 1.0)
        spec /= f ** (0.5 * colour)  # pink: 1/f power, brown: 1/f^2
        white = np.fft.irfft(spec, n)
    return (white / max(float(np.sqrt(np.mean(white**2))), 1e-12)).astype(np.float32)


def _file_path(rng: np.random.Generator, stems: np.ndarray, sr: int, cfg: MixConfig) -> np.ndarray:
    """What happens to a recording before cocktail reads it, applied to all stems alike."""
    n = stems.shape[-1]
    mix = stems.sum(0)
    peak = float(np.abs(mix).max())
    if peak <= 0:
        return stems
    stems *= np.float32(10 ** (rng.uniform(*cfg.level_dbfs) / 20) / peak)
    if rng.random() < cfg.roundtrip_prob:
        rate = int(cfg.roundtrip_rates[int(rng.integers(len(cfg.roundtrip_rates)))])
        there = soxr.resample(stems.T, sr, rate, quality="HQ")
        back = soxr.resample(there, rate, sr, quality="HQ").T
        out = np.zeros_like(stems)
        out[:, : min(n, back.shape[1])] = back[:, :n]
        stems = out
    if rng.random() < cfg.lowpass_prob:
        stems = _band(stems, float(rng.uniform(3000.0, 0.48 * sr)), sr, "lowpass")
    mix = stems.sum(0)
    if rng.random() < cfg.noise_prob:
        rms = float(np.sqrt(np.mean(mix**2)))
        stems[OTHER] += _noise(rng, n) * np.float32(rms * 10 ** (rng.uniform(*cfg.noise_db) / 20))
        mix = stems.sum(0)
    bits = int(rng.choice(cfg.bits, p=np.asarray(cfg.bits_prob) / np.sum(cfg.bits_prob)))
    if bits:
        step = 2.0 ** (1 - bits)  # full scale [-1, 1)
        dither = (rng.random(n) - rng.random(n)) * step if rng.random() < cfg.dither_prob else 0.0
        quantised = np.clip(np.round((mix + dither) / step) * step, -1.0, 1.0 - step)
        stems[OTHER] += (quantised - mix).astype(np.float32)
    return stems


def draw_scene(rng: np.random.Generator, bank: ClipBank, cfg: MixConfig) -> np.ndarray:
    """Stems ``(C, n)`` of one scene: each target class present with ``scene_active_prob`` as one
    or two events at random onsets (``_event``), over a background that runs on (or silence), with
    short "other" events among them; some scenes hold no target. Then the file's path, as for
    :func:`draw_example`."""
    n = int(round(cfg.seconds * bank.sample_rate))
    stems = np.zeros((N_CLASSES, n), np.float32)
    empty = rng.random() < cfg.scene_empty_prob
    for c, cls in enumerate(TARGET_CLASSES):
        if not empty and rng.random() < cfg.scene_active_prob:
            for _ in range(2 if rng.random() < cfg.scene_repeat_prob else 1):
                stems[c] += _event(rng, bank, cls, n, cfg)
    if rng.random() < cfg.scene_background_prob:
        stems[OTHER] += _background(rng, bank, n, cfg) * np.float32(10 ** (rng.uniform(*cfg.scene_background_db) / 20))
    for _ in range(int(rng.integers(cfg.scene_other_events[0], cfg.scene_other_events[1] + 1))):
        stems[OTHER] += _event(rng, bank, "other", n, cfg)
    return _file_path(rng, stems, bank.sample_rate, cfg)


def draw_example(rng: np.random.Generator, bank: ClipBank, cfg: MixConfig) -> np.ndarray:
    """Stems ``(C, n)`` float32 of one fresh mixture; ``other`` is empty only when ``cfg.others``
    allows zero clips and neither noise nor quantisation put anything there. With ``scene_prob``,
    that share of examples are scenes (:func:`draw_scene`) instead."""
    if cfg.scene_prob > 0 and rng.random() < cfg.scene_prob:
        return draw_scene(rng, bank, cfg)
    n = int(round(cfg.seconds * bank.sample_rate))
    stems = np.zeros((N_CLASSES, n), np.float32)
    for c, cls in enumerate(TARGET_CLASSES):
        if rng.random() < cfg.active_prob:
            stems[c] = _source(rng, bank, cls, n, cfg)
    for _ in range(int(rng.integers(cfg.others[0], cfg.others[1] + 1))):
        stems[OTHER] += _source(rng, bank, "other", n, cfg)
    return _file_path(rng, stems, bank.sample_rate, cfg)


class MixedBatches:
    """Like :class:`~cocktail_cli.train.Batches`, but every example is drawn fresh from
    ``(seed, step, index)``: ``batch(step, rank, world)`` is this rank's slice, as stems."""

    #: Steps counted as one "epoch" (only for logging: nothing repeats).
    STEPS_PER_EPOCH = 1000

    def __init__(self, bank: ClipBank, cfg: MixConfig, batch_size: int, seed: int):
        self.bank, self.cfg, self.batch_size, self.seed = bank, cfg, batch_size, seed
        self.steps_per_epoch = self.STEPS_PER_EPOCH

    def example(self, step: int, k: int) -> np.ndarray:
        return draw_example(np.random.default_rng([self.seed, 2, step, k]), self.bank, self.cfg)

    def batch(self, step: int, rank: int = 0, world: int = 1):
        import torch

        per = self.batch_size // world
        return torch.from_numpy(np.stack([self.example(step, k) for k in range(rank * per, (rank + 1) * per)]))


class FixedMixtures:
    """``n`` mixtures drawn once with a fixed seed (validation, norm fitting); indexable like a
    store split: ``fixed[i]`` is stems ``(C, samples)``."""

    def __init__(self, bank: ClipBank, cfg: MixConfig, n: int, seed: int):
        self.samples = int(round(cfg.seconds * bank.sample_rate))
        self.items = [draw_example(np.random.default_rng([seed, 9, i]), bank, cfg) for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.items[i]
