"""Shared fixtures: small generated audio, so tests never need ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.classes import CLASSES


def class_clip(cls: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A short signal with a recognisable character per class (float32, peak about 0.5)."""
    t = np.arange(n) / sr
    if cls == "baby_cry":  # harmonic tone with vibrato
        f = rng.uniform(350, 500) * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f) / sr
        x = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    elif cls == "siren":  # up-down chirp
        f = 900 + 400 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t)
        x = np.sin(2 * np.pi * np.cumsum(f) / sr)
    elif cls == "dog":  # noise bursts
        x = rng.standard_normal(n) * (np.sin(2 * np.pi * rng.uniform(1.5, 3) * t) > 0.5)
    elif cls == "speech":  # buzz, amplitude-modulated at syllable rate
        x = np.sign(np.sin(2 * np.pi * rng.uniform(110, 180) * t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    else:  # broadband noise
        x = rng.standard_normal(n)
    x = np.asarray(x, dtype=np.float64)
    return (0.5 * x / (np.abs(x).max() + 1e-9)).astype(np.float32)


@pytest.fixture
def make_class_tree():
    """Factory: ``make(root, files=12, seconds=1.0, sr=16000, seed=0, signal=None)`` writes
    ``root/<class>/clip_XX.wav`` for the five classes and returns ``root``. ``signal(cls, n, sr,
    rng)`` replaces the default per-class signal (e.g. a pure tone)."""

    def make(root: Path, files: int = 12, seconds: float = 1.0, sr: int = 16000, seed: int = 0, signal=None) -> Path:
        rng = np.random.default_rng(seed)
        gen = signal or class_clip
        for cls in CLASSES:
            (root / cls).mkdir(parents=True, exist_ok=True)
            for k in range(files):
                x = gen(cls, int(seconds * sr), sr, rng)
                sf.write(str(root / cls / f"clip_{k:02d}.wav"), x, sr, subtype="PCM_16")
        return root

    return make
