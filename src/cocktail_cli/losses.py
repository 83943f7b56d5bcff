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


#: A stem's frame counts as sounding when it is within this many dB of the stem's loudest frame
#: in the example (and not below ``ACTIVITY_FLOOR_DB`` under the mixture's loudest frame); gaps
#: shorter than ``ACTIVITY_GAP_S`` between sounding frames count as sounding (the pauses between
#: words or barks belong to the event). The same definition as the events bench's ground truth
#: (bench/scenes.py: 20 dB, gaps under 0.5 s merged).
ACTIVITY_RANGE_DB = 20.0
ACTIVITY_FLOOR_DB = -60.0
ACTIVITY_GAP_S = 0.5


def frame_energy(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Mean square of ``x`` ``(..., samples)`` over ``n_fft``-sample windows centred on samples
    ``0, hop, 2 hop, ...``: one value per STFT frame (``center=True``)."""
    shape = x.shape
    flat = (x.reshape(-1, 1, shape[-1]) ** 2)
    pooled = torch.nn.functional.avg_pool1d(flat, n_fft, stride=hop, padding=n_fft // 2, count_include_pad=True)
    return pooled.reshape(*shape[:-1], -1)


def _close_gaps(on: torch.Tensor, frames: int) -> torch.Tensor:
    """Morphological closing along the last axis: gaps of fewer than ``frames`` frames between
    active frames become active; nothing before the first or after the last active frame does."""
    if frames < 2:
        return on
    k = frames | 1  # odd
    flat = on.reshape(-1, 1, on.shape[-1])
    grown = torch.nn.functional.max_pool1d(flat, k, stride=1, padding=k // 2)
    closed = -torch.nn.functional.max_pool1d(-grown, k, stride=1, padding=k // 2)
    # max_pool pads with -inf, so the closing's erosion keeps the ends: clip them to the original extent
    idx = torch.arange(on.shape[-1], device=on.device)
    active = flat > 0
    first = torch.where(active.any(-1, keepdim=True), torch.where(active, idx, on.shape[-1]).amin(-1, keepdim=True), on.shape[-1])
    last = torch.where(active, idx, -1).amax(-1, keepdim=True)
    closed = closed * ((idx >= first) & (idx <= last))
    return closed.reshape(on.shape)


def activity_labels(
    stems: torch.Tensor, n_fft: int, hop: int, frames: int, sample_rate: int | None = None,
    range_db: float = ACTIVITY_RANGE_DB, gap_s: float = ACTIVITY_GAP_S,
) -> torch.Tensor:
    """``(batch, C, frames)`` float 0/1: where each reference stem ``(batch, C, samples)`` sounds.

    The labels a drawn mixture carries for free: a frame is active where the stem is within
    ``range_db`` of its own loudest frame, so quiet tails count as silent while a quiet but
    present sound counts as present, whatever else is playing; with ``sample_rate``, gaps under
    ``gap_s`` are closed.
    """
    energy = frame_energy(stems, n_fft, hop)[..., :frames]
    if energy.shape[-1] < frames:
        energy = torch.nn.functional.pad(energy, (0, frames - energy.shape[-1]))
    db = 10 * torch.log10(energy + 1e-12)
    own_peak = db.amax(dim=-1, keepdim=True)
    mix_peak = (10 * torch.log10(frame_energy(stems.sum(1), n_fft, hop) + 1e-12)).amax(dim=-1, keepdim=True).unsqueeze(1)
    on = ((db >= own_peak - range_db) & (db >= mix_peak + ACTIVITY_FLOOR_DB)).float()
    if sample_rate and gap_s > 0:
        on = _close_gaps(on, int(round(gap_s * sample_rate / hop)))
    return on


def activity_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per example and class, mean over frames: ``(batch, C)``."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(-1)
