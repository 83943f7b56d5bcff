"""cocktail's default: a dilated temporal convolution network over log-magnitude STFT frames.

Why convolutions and not an LSTM: on a 2-core CPU, training throughput bounds what a model can
learn, and a stack of depthwise-separable 1-D convolutions runs every frame in parallel (an LSTM
steps through frames one by one), for both training and inference. Frequency is the channel axis
(every bin sees every other through the 1x1 convolutions); dilations 1..2^(depth-1), repeated,
give a receptive field of a second or more. Masks come from a softmax over the classes, so they
sum to one and the five stems sum to the mixture by construction.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..classes import N_CLASSES
from .norm import LogMagnitudeMaskNet


class SeparableBlock(nn.Module):
    """1x1 expand -> PReLU -> norm -> dilated depthwise conv -> PReLU -> norm -> 1x1 project, residual."""

    def __init__(self, channels: int, hidden: int, kernel: int, dilation: int):
        super().__init__()
        self.expand = nn.Conv1d(channels, hidden, 1)
        self.act1 = nn.PReLU()
        self.norm1 = nn.GroupNorm(1, hidden)
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2, groups=hidden)
        self.act2 = nn.PReLU()
        self.norm2 = nn.GroupNorm(1, hidden)
        self.project = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(self.act1(self.expand(x)))
        h = self.norm2(self.act2(self.depthwise(h)))
        return x + self.project(h)


class TCNMaskNet(LogMagnitudeMaskNet):
    def __init__(
        self,
        n_bins: int = 513,
        channels: int = 192,
        hidden: int = 384,
        kernel: int = 3,
        depth: int = 5,
        repeats: int = 2,
        n_classes: int = N_CLASSES,
        norm: str = "cmvn",
        log_eps: float = 1e-5,
        floor_db: float | None = None,
    ):
        super().__init__(n_bins, n_classes, norm, log_eps, floor_db)
        self.config = dict(
            n_bins=n_bins, channels=channels, hidden=hidden, kernel=kernel, depth=depth,
            repeats=repeats, n_classes=n_classes, norm=norm, log_eps=log_eps, floor_db=floor_db,
        )
        self.encode = nn.Conv1d(n_bins, channels, 1)
        self.blocks = nn.Sequential(
            *(SeparableBlock(channels, hidden, kernel, 2**d) for _ in range(repeats) for d in range(depth))
        )
        self.out_act = nn.PReLU()
        self.decode = nn.Conv1d(channels, n_classes * n_bins, 1)

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(self.features(mag))
        h = self.blocks(self.encode(x))
        logits = self.decode(self.out_act(h))
        logits = logits.view(mag.shape[0], self.n_classes, self.n_bins, mag.shape[-1])
        return torch.softmax(logits, dim=1)
