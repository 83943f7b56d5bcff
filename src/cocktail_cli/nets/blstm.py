"""A bidirectional LSTM mask network: the classic baseline, kept as a candidate for comparison.

Log magnitude -> normalisation -> linear encoder -> BLSTM layers -> linear decoder -> softmax
over the classes (masks sum to one). Steps through frames one by one, so it is slower per
example on a CPU than :mod:`.tcn` at a similar size.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..classes import N_CLASSES
from .norm import LogMagnitudeMaskNet


class BLSTMMaskNet(LogMagnitudeMaskNet):
    def __init__(
        self,
        n_bins: int = 513,
        hidden: int = 192,
        layers: int = 2,
        n_classes: int = N_CLASSES,
        norm: str = "cmvn",
        log_eps: float = 1e-5,
        floor_db: float | None = None,
    ):
        super().__init__(n_bins, n_classes, norm, log_eps, floor_db)
        self.config = dict(n_bins=n_bins, hidden=hidden, layers=layers, n_classes=n_classes, norm=norm, log_eps=log_eps, floor_db=floor_db)
        self.encode = nn.Linear(n_bins, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.decode = nn.Linear(2 * hidden, n_classes * n_bins)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(self.features(mag)).transpose(1, 2)  # (batch, frames, bins)
        h, _ = self.lstm(torch.tanh(self.encode(x)))
        logits = self.decode(h).view(mag.shape[0], mag.shape[-1], self.n_classes, self.n_bins)
        return torch.softmax(logits.permute(0, 2, 3, 1), dim=1)  # (batch, C, bins, frames)
