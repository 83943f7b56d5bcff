"""Input normalisation whose statistics live in the model (and so in its checkpoint)."""

from __future__ import annotations

import torch
import torch.nn as nn

NORMS = ("minmax", "cmvn", "none")


class InputNorm(nn.Module):
    """Normalise features ``(batch, bins, frames)`` with dataset statistics.

    - ``minmax``: (x - min) / (max - min) with the training set's global min and max (the paper);
    - ``cmvn``: per-bin (x - mean) / std over the training set;
    - ``none``: identity.
    The statistics are buffers: fitted once from training data (:meth:`fit`), saved with the
    weights, and used unchanged at inference time.
    """

    def __init__(self, kind: str, n_bins: int):
        super().__init__()
        if kind not in NORMS:
            raise ValueError(f"unknown normalisation '{kind}' (choose {', '.join(NORMS)})")
        self.kind = kind
        self.register_buffer("shift", torch.zeros(n_bins, 1))
        self.register_buffer("scale", torch.ones(n_bins, 1))

    @torch.no_grad()
    def fit(self, features: torch.Tensor) -> None:
        """Set the statistics from a batch of training features ``(batch, bins, frames)``."""
        if self.kind == "minmax":
            lo, hi = features.min(), features.max()
            self.shift.fill_(float(lo))
            self.scale.fill_(float(max(hi - lo, 1e-8)))
        elif self.kind == "cmvn":
            x = features.transpose(0, 1).reshape(features.shape[1], -1)
            self.shift.copy_(x.mean(dim=1, keepdim=True))
            self.scale.copy_(x.std(dim=1, keepdim=True).clamp_min(1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return x
        return (x - self.shift) / self.scale
