"""Training losses. Each returns a per-example, per-class loss ``(batch, C)``; callers average.

- :func:`waveform_loss` (default archs): negative SI-SDR for stems present in the example, and for
  absent stems their energy relative to the mixture in dB, softly floored, which drives them to
  silence without rewarding ever-smaller leakage past the floor.
- :func:`magnitude_mse` (the paper): MSE between the masked mixture magnitude f_i * |X| and the
  stem magnitude |S_i|; the paper's loss is the sum over classes of these.
"""

from __future__ import annotations

import torch

#: A stem whose energy is this far (dB) below the mixture's counts as absent from the example.
ABSENT_DB = -60.0


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis (same definition as :func:`metrics.si_sdr`)."""
    alpha = (estimate * reference).sum(-1, keepdim=True) / ((reference * reference).sum(-1, keepdim=True) + eps)
    target = alpha * reference
    noise = estimate - target
    return 10 * torch.log10(((target**2).sum(-1) + eps) / ((noise**2).sum(-1) + eps))


def active_stems(stems: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """``(batch, C)`` bool: which reference stems carry energy within ``ABSENT_DB`` of the mixture."""
    energy = (stems**2).sum(-1)
    mix_energy = (mixture**2).sum(-1, keepdim=True)
    return energy > mix_energy * 10 ** (ABSENT_DB / 10) + 1e-12


def waveform_loss(
    estimate: torch.Tensor, stems: torch.Tensor, mixture: torch.Tensor, floor_db: float = -30.0, absent_weight: float = 1.0
) -> torch.Tensor:
    """``estimate``, ``stems``: ``(batch, C, samples)``; ``mixture``: ``(batch, samples)``."""
    active = active_stems(stems, mixture)
    present = -si_sdr(estimate, stems)
    rel = (estimate**2).sum(-1) / ((mixture**2).sum(-1, keepdim=True) + 1e-8)
    absent = 10 * torch.log10(rel + 10 ** (floor_db / 10))
    return torch.where(active, present, absent_weight * absent)


def magnitude_mse(masks: torch.Tensor, mix_mag: torch.Tensor, stem_mags: torch.Tensor) -> torch.Tensor:
    """``masks``, ``stem_mags``: ``(batch, C, bins, frames)``; ``mix_mag``: ``(batch, bins, frames)``."""
    return ((masks * mix_mag.unsqueeze(1) - stem_mags) ** 2).mean(dim=(-2, -1))
