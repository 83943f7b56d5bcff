"""A tiny stand-in for ``cocktail synth`` output: one recognisable signal per class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


def class_signal(cls: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A stem of a fake mixture: :func:`class_clip` at a random peak level of -12..-6 dBFS."""
    x = class_clip(cls, n, sr, rng)
    return (2 * x * 10 ** (rng.uniform(-12, -6) / 20)).astype(np.float32)


def make_synth(root: Path, splits: dict[str, int], seconds: float = 1.0, sr: int = 16000, seed: int = 0,
               p_active: float = 0.7) -> Path:
    """``root/<split>/<id>/{mix,<stem>}.wav`` + ``metadata.jsonl``, like ``cocktail synth``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    for split, count in splits.items():
        meta = []
        for k in range(count):
            folder = root / split / f"{split}-{k:06d}"
            folder.mkdir(parents=True, exist_ok=True)
            stems = []
            for cls in CLASSES:
                on = cls == "other" or rng.random() < p_active
                stems.append(class_signal(cls, n, sr, rng) if on else np.zeros(n, np.float32))
            stems = np.stack(stems)
            q = np.round(stems * 32767) / 32767  # what a 16-bit WAV holds
            for cls, x in zip(CLASSES, q):
                sf.write(str(folder / f"{cls}.wav"), x, sr, subtype="PCM_16")
            sf.write(str(folder / "mix.wav"), q.sum(0), sr, subtype="PCM_16")
            meta.append({"id": folder.name, "active": [c for c, x in zip(CLASSES, q) if x.any()]})
        (root / split / "metadata.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    return root
