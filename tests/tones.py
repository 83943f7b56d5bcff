"""Tone-burst scenes for the band model (conftest.py's ``band_model``): known onsets."""

from __future__ import annotations

import numpy as np


#: The frequency bands (Hz) the band model (``band_model``) gives to each class; "other" has the rest.
BANDS = {"baby_cry": (300, 700), "siren": (700, 1200), "dog": (1200, 2000), "speech": (2000, 3000)}


def tone_scene(onsets: dict, seconds: float, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """``(channels, n)``: quiet low noise ("other" for the band model) with a tone burst per
    ``(class, start, end)`` in ``onsets`` (the centre of the class's band, 20 dB above the noise)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    noise = rng.standard_normal(n)
    spectrum = np.fft.rfft(noise)
    spectrum[np.fft.rfftfreq(n, 1 / sr) > 200] = 0  # the noise stays in "other"'s low band
    x = np.fft.irfft(spectrum, n)
    x *= 0.01 / np.sqrt(np.mean(x**2))
    t = np.arange(n) / sr
    for cls, start, end in onsets:
        lo, hi = BANDS[cls]
        f = (lo + hi) / 2
        on = (t >= start) & (t < end)
        x = x + on * 0.1 * np.sin(2 * np.pi * f * t)
    return np.repeat(x[None], channels, axis=0).astype(np.float32)
