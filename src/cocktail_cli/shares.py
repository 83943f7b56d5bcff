"""Where a sound's energy goes: the checks behind issue 27's tests and the model card.

- :func:`stem_shares`: a sound heard alone, separated as a user's file would be (any rate, the
  chunked stream): each stem's share of the stems' total energy.
- :func:`part_shares`: a sound that is one part of a mixture (a bark under speech): the mixture's
  masks applied to that part's own spectrogram, so the share says where *its* energy went, not the
  other sounds'.
- :func:`context_variants`: the same sound with silence or quiet noise before or after it, and at
  the start, middle or end of one 20 s chunk (the separator's default), for context invariance.
"""

from __future__ import annotations

import numpy as np
import torch

from .separator import Separator


def stem_shares(sep: Separator, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(C,)`` energy shares of the stems of mono ``audio`` (they sum to one)."""
    stems = sep.separate(np.asarray(audio, np.float32)[None], sample_rate)[:, 0].astype(np.float64)
    energy = (stems**2).sum(-1)
    return energy / max(float(energy.sum()), 1e-20)


@torch.inference_mode()
def part_shares(sep: Separator, mixture: np.ndarray, part: np.ndarray) -> np.ndarray:
    """``(C,)``: the share of ``part``'s energy each stem's mask keeps, with the masks of
    ``mixture`` (both mono, at the model's rate, one chunk)."""
    mix = torch.as_tensor(np.asarray(mixture, np.float32))[None]
    spec = sep.stft.stft(torch.as_tensor(np.asarray(part, np.float32))[None])
    masks = sep.masks(sep.stft.stft(mix).abs())[0]  # softened by the model's temperature
    power = spec.abs()[0] ** 2
    kept = (masks**2 * power).sum(dim=(-2, -1)).double().numpy()
    return kept / max(float(power.sum()), 1e-20)


def context_variants(audio: np.ndarray, sample_rate: int, rng: np.random.Generator, chunk_seconds: float = 20.0) -> dict[str, np.ndarray]:
    """Name -> the sound in another context: 0.5, 2 and 10 s of digital silence or of quiet noise
    (white, 60 dB under the sound's peak) before or after it, and at the start, the middle and the
    end of one chunk of silence."""
    x = np.asarray(audio, np.float32)
    peak = float(np.abs(x).max()) or 1.0
    out = {}
    for seconds in (0.5, 2.0, 10.0):
        n = int(seconds * sample_rate)
        silence = np.zeros(n, np.float32)
        noise = (rng.standard_normal(n) * peak * 1e-3).astype(np.float32)
        out[f"{seconds:g} s silence before"] = np.concatenate([silence, x])
        out[f"{seconds:g} s silence after"] = np.concatenate([x, silence])
        out[f"{seconds:g} s noise before"] = np.concatenate([noise, x])
        out[f"{seconds:g} s noise after"] = np.concatenate([x, noise])
    chunk = int(chunk_seconds * sample_rate)
    if len(x) < chunk:
        for where, at in (("start", 0), ("middle", (chunk - len(x)) // 2), ("end", chunk - len(x))):
            y = np.zeros(chunk, np.float32)
            y[at : at + len(x)] = x
            out[f"{where} of a {chunk_seconds:g} s chunk"] = y
    return out
