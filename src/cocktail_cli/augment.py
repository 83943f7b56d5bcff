"""Source augmentation for synth: pitch shift and time stretch as precomputed variants, band-limiting.

A phase vocoder costs tens of milliseconds a call, far too much to run on every draw of a
100,000-mixture set. So each clip's variants (one per pitch x stretch value) are computed once,
stored in a :class:`VariantStore` on disk, and every mixture then only slices, filters and sums.

One variant = one phase vocoder plus one resample: the vocoder changes the length by
``stretch * ratio`` (pitch kept), and resampling from ``sr * ratio`` to the output rate then
shortens it by ``ratio`` while raising the pitch by ``ratio`` (ratio = 2**(semitones/12)). That
resample is also the one to the output rate, so a clip is never resampled twice.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import scipy.signal

from .atomic import atomic_open
from .audio import read_audio, resample

#: Bump when the variant computation changes, so stale cache files are not reused.
VARIANT_VERSION = 2
#: Variants are stored as int16 scaled to peak at 32767: half the disk and page cache of
#: float32, and about 7x faster to convert back than float16. Their absolute level does not
#: matter: synth sets every excerpt to a reference RMS anyway.
STORE_FULL_SCALE = 32767


def semitone_ratio(semitones: float) -> float:
    return float(2.0 ** (semitones / 12.0))


def _vocoder_fft(sr: float) -> int:
    """About a 93 ms window whatever the rate (librosa's 2048 at 22.05 kHz)."""
    return int(2 ** round(np.log2(0.093 * sr)))


def make_variants(
    audio: np.ndarray, sr: int, out_sr: int, shapes: list[tuple[float, float]]
) -> dict[tuple[float, float], np.ndarray]:
    """Each ``(semitones, stretch)`` variant of mono ``audio`` at ``out_sr`` (float32).

    ``stretch`` is a duration factor (1.2 = 20% longer); pitch 0 and stretch 1 is the clip itself.
    The vocoder runs at the lower of the clip's and the output's rate: upsampling first would add
    no content, only cost.
    """
    import librosa  # slow to import; only the processes that build variants need it

    work_sr = min(sr, out_sr)
    x = resample(np.asarray(audio, dtype=np.float32), sr, work_sr)
    n_fft = _vocoder_fft(work_sr)
    hop = n_fft // 4
    spec = None  # one STFT shared by every variant of the clip
    out: dict[tuple[float, float], np.ndarray] = {}
    for semitones, stretch in shapes:
        ratio = semitone_ratio(semitones)
        rate = 1.0 / (stretch * ratio)  # vocoder speed; < 1 makes it longer
        if abs(rate - 1.0) < 1e-9 or len(x) < n_fft:
            y = x  # too short to vocode: keep the length, the resample below still shifts pitch
        else:
            if spec is None:
                spec = librosa.stft(x, n_fft=n_fft, hop_length=hop)
            stretched = phase_vocoder(spec, rate, hop, n_fft)
            y = librosa.istft(stretched, hop_length=hop, n_fft=n_fft, length=int(round(len(x) / rate)))
        out[(semitones, stretch)] = resample(y.astype(np.float32, copy=False), work_sr * ratio, out_sr)
    return out


def phase_vocoder(spec: np.ndarray, rate: float, hop: int, n_fft: int) -> np.ndarray:
    """Time-scale an STFT ``(bins, frames)`` by ``rate`` (> 1 faster), keeping the pitch.

    The textbook algorithm, vectorised over frames: magnitudes are interpolated between the two
    nearest input frames, and each bin's phase advances by its measured instantaneous frequency,
    accumulated with a cumulative sum (librosa's version loops over frames in Python).
    """
    # Frames along the first axis, so the cumulative sum runs over contiguous rows.
    frames = np.ascontiguousarray(spec.T)
    padded = np.concatenate([frames, np.zeros((2, frames.shape[1]), dtype=frames.dtype)])
    magnitude, angle = np.abs(padded), np.angle(padded)
    steps = np.arange(0, frames.shape[0], rate, dtype=np.float64)
    left = steps.astype(np.int64)
    frac = (steps - left).astype(np.float32)[:, None]
    mag = (1.0 - frac) * magnitude[left] + frac * magnitude[left + 1]
    # Expected phase advance of each bin over one hop, and the measured deviation from it.
    advance = np.linspace(0, np.pi * hop, frames.shape[1]).astype(np.float32)
    deviation = angle[left + 1] - angle[left] - advance
    deviation -= np.float32(2 * np.pi) * np.rint(deviation / np.float32(2 * np.pi))
    # Accumulate in float64 (hundreds of frames), then wrap so float32 cos/sin stay accurate.
    phase = np.empty(mag.shape, dtype=np.float64)
    phase[0] = angle[0]
    if len(phase) > 1:
        np.cumsum(advance + deviation[:-1], axis=0, dtype=np.float64, out=phase[1:])
        phase[1:] += phase[0]
    phase -= (2 * np.pi) * np.floor(phase / (2 * np.pi))
    phase32 = phase.astype(np.float32)
    out = np.empty(mag.shape, dtype=np.complex64)
    out.real = mag * np.cos(phase32)
    out.imag = mag * np.sin(phase32)
    return out.T


def band_limit(x: np.ndarray, cutoff_hz: float, sr: int) -> np.ndarray:
    """Low-pass ``x`` at ``cutoff_hz`` (8th-order Butterworth): a phone line, a cheap microphone."""
    sos = scipy.signal.butter(8, min(cutoff_hz, 0.45 * sr), fs=sr, output="sos")
    return scipy.signal.sosfilt(sos.astype(np.float32), x).astype(np.float32, copy=False)


def to_stored(variant: np.ndarray) -> np.ndarray:
    """A variant as stored: int16, peak-normalised (level is set per excerpt later)."""
    peak = float(np.max(np.abs(variant))) if variant.size else 0.0
    if peak == 0.0:
        return np.zeros(variant.shape, dtype=np.int16)
    return np.rint(variant * (STORE_FULL_SCALE / peak)).astype(np.int16)


def from_stored(part: np.ndarray) -> np.ndarray:
    """A slice of a stored variant back to float32 (peak 1)."""
    x = part.astype(np.float32)
    x *= np.float32(1.0 / STORE_FULL_SCALE)
    return x


class VariantStore:
    """Precomputed variants as ``.npy`` files in ``folder``, named by a hash of what made them.

    The key covers the file (path, size, mtime), the output rate, the shape and the algorithm
    version, so a changed clip or setting never hits a stale entry. Files are written to a
    temporary name and renamed, so a killed run leaves no half-written entry; loads are memory
    maps, so worker processes share one copy in the page cache.
    """

    def __init__(self, folder: str | os.PathLike, out_sr: int):
        self.folder = Path(folder)
        self.out_sr = out_sr
        self._maps: dict[str, np.ndarray] = {}
        self._stat: dict[str, tuple[int, int]] = {}

    def path(self, clip_path: str, semitones: float, stretch: float) -> Path:
        # realpath: the same clip reached through a symlinked folder must hit the same entry
        if clip_path not in self._stat:
            st = os.stat(clip_path)
            self._stat[clip_path] = (st.st_size, st.st_mtime_ns)
        size, mtime = self._stat[clip_path]
        key = f"{VARIANT_VERSION}|{os.path.realpath(clip_path)}|{size}|{mtime}|{self.out_sr}|{semitones!r}|{stretch!r}"
        name = hashlib.sha1(key.encode("utf-8")).hexdigest()
        return self.folder / name[:2] / f"{name}.npy"

    def has(self, clip_path: str, semitones: float, stretch: float) -> bool:
        try:
            return self.path(clip_path, semitones, stretch).is_file()
        except OSError:
            return False

    def build(self, clip_path: str, shapes: list[tuple[float, float]]) -> None:
        """Compute and store the missing ``shapes`` of one clip; raises AudioError if unreadable."""
        missing = [s for s in shapes if not self.has(clip_path, *s)]
        if not missing:
            return
        audio, sr = read_audio(clip_path, mono=True)
        for shape, variant in make_variants(audio[0], sr, self.out_sr, missing).items():
            self._save(self.path(clip_path, *shape), to_stored(variant))

    def load(self, clip_path: str, semitones: float, stretch: float) -> np.ndarray:
        target = str(self.path(clip_path, semitones, stretch))
        arr = self._maps.get(target)
        if arr is None:
            arr = self._maps[target] = np.load(target, mmap_mode="r")
        return arr

    @staticmethod
    def _save(target: Path, data: np.ndarray) -> None:
        with atomic_open(target) as fh:
            np.save(fh, data)
