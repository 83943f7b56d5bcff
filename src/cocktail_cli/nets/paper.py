"""The 2019 study's network (Hamdy, Vedula, Konduru), kept faithful to its description.

Encoder: a conv spanning all frequency bins (50 channels), a conv of 150 frames along time (30
channels), a fully connected layer to 128 with ReLU. Five decoders, one per class: a fully
connected layer back to the encoder size with ReLU and two transposed convs mirroring the
encoder. Outputs concatenated, ReLU, and masks f_i = o_i / sum_n o_n. The fully connected layers
fix the input length (``frames``), so inference runs on segments of exactly that length.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..classes import N_CLASSES
from .norm import InputNorm


class PaperDecoder(nn.Module):
    def __init__(self, n_bins: int, time_frames: int, bottleneck: int, freq_channels: int, time_channels: int, time_kernel: int):
        super().__init__()
        self.time_channels, self.time_frames = time_channels, time_frames
        self.fc = nn.Linear(bottleneck, time_channels * time_frames)
        self.deconv_time = nn.ConvTranspose2d(time_channels, freq_channels, kernel_size=(1, time_kernel))
        self.deconv_freq = nn.ConvTranspose2d(freq_channels, 1, kernel_size=(n_bins, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(z.shape[0], self.time_channels, 1, self.time_frames)
        return self.deconv_freq(self.deconv_time(h))  # (batch, 1, bins, frames)


class PaperNet(nn.Module):
    def __init__(
        self,
        n_bins: int = 257,
        frames: int = 517,
        freq_channels: int = 50,
        time_channels: int = 30,
        time_kernel: int = 150,
        bottleneck: int = 128,
        n_classes: int = N_CLASSES,
        norm: str = "minmax",
        eps: float = 1e-8,
    ):
        super().__init__()
        if frames < time_kernel:
            raise ValueError(f"paper net needs at least {time_kernel} frames, got {frames}")
        self.config = dict(
            n_bins=n_bins, frames=frames, freq_channels=freq_channels, time_channels=time_channels,
            time_kernel=time_kernel, bottleneck=bottleneck, n_classes=n_classes, norm=norm, eps=eps,
        )
        self.segment_frames = frames  # fixed input length
        self.eps = eps
        time_frames = frames - time_kernel + 1
        self.input_norm = InputNorm(norm, n_bins)
        self.conv_freq = nn.Conv2d(1, freq_channels, kernel_size=(n_bins, 1))
        self.conv_time = nn.Conv2d(freq_channels, time_channels, kernel_size=(1, time_kernel))
        self.fc = nn.Linear(time_channels * time_frames, bottleneck)
        self.decoders = nn.ModuleList(
            PaperDecoder(n_bins, time_frames, bottleneck, freq_channels, time_channels, time_kernel)
            for _ in range(n_classes)
        )

    def features(self, mag: torch.Tensor) -> torch.Tensor:
        """The paper normalises the STFT magnitude itself (no log)."""
        return mag

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(self.features(mag)).unsqueeze(1)  # (batch, 1, bins, frames)
        h = self.conv_time(self.conv_freq(x))  # (batch, 30, 1, frames - 149)
        z = torch.relu(self.fc(h.flatten(1)))
        out = torch.relu(torch.cat([dec(z) for dec in self.decoders], dim=1))  # (batch, C, bins, frames)
        return out / (out.sum(dim=1, keepdim=True) + self.eps)
