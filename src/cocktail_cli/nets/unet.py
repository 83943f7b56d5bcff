"""A 2-D convolutional time-frequency U-Net with a temporal-convolution bottleneck (a CRN-style
design without the recurrence, which steps frame by frame and is slow on a CPU).

Why: 2-D kernels see local time-frequency shapes (a harmonic's slope, a bark's onset) at every
frequency with the same weights, which the 1-D :mod:`.tcn` must learn bin by bin. Each encoder
level halves the frequency axis (stride 2 along bins, 1 along frames), so the bottleneck sees
the whole spectrum of a frame in ``channels[-1] x bins/2^levels`` features; a stack of dilated
temporal convolutions there gives the long context. The decoder mirrors the encoder with skip
connections (added, not concatenated: half the decoder cost) back to full resolution, and a
softmax over the five output channels makes masks that sum to one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..classes import N_CLASSES
from .norm import LogMagnitudeMaskNet, chunk_or_frame_norm
from .tcn import SeparableBlock


def _conv_block(c_in: int, c_out: int, stride: int, block_norm: str = "global") -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=(stride, 1), padding=1), chunk_or_frame_norm(block_norm, c_out), nn.PReLU())


class UNetMaskNet(LogMagnitudeMaskNet):
    def __init__(
        self,
        n_bins: int = 513,
        channels: list[int] | None = None,
        bottleneck: int = 192,
        hidden: int = 384,
        kernel: int = 3,
        depth: int = 4,
        repeats: int = 1,
        n_classes: int = N_CLASSES,
        norm: str = "cmvn",
        log_eps: float = 1e-5,
        floor_db: float | None = None,
        block_norm: str = "global",
        floor_frames: int | None = None,
        activity: bool = False,
    ):
        super().__init__(n_bins, n_classes, norm, log_eps, floor_db, floor_frames)
        channels = list(channels) if channels is not None else [12, 16, 24, 32]
        self.config = dict(
            n_bins=n_bins, channels=channels, bottleneck=bottleneck, hidden=hidden, kernel=kernel, depth=depth,
            repeats=repeats, n_classes=n_classes, norm=norm, log_eps=log_eps, floor_db=floor_db,
        )
        for key, value, default in (("block_norm", block_norm, "global"), ("floor_frames", floor_frames, None), ("activity", activity, False)):
            if value != default:
                self.config[key] = value
        # The stem already halves the bins: convolutions at full resolution were half the cost of
        # the whole network (profiled); full-resolution detail comes back through the head, which
        # sees the input features beside the decoder's output.
        self.stem = _conv_block(1, channels[0], 2, block_norm)
        self.down = nn.ModuleList(_conv_block(a, b, 2, block_norm) for a, b in zip(channels[:-1], channels[1:]))
        sizes = [(n_bins - 1) // 2 + 1]
        for _ in self.down:
            sizes.append((sizes[-1] - 1) // 2 + 1)  # a stride-2, kernel-3, pad-1 conv
        self.sizes = sizes
        flat = channels[-1] * sizes[-1]
        self.to_bottleneck = nn.Conv1d(flat, bottleneck, 1)
        self.blocks = nn.Sequential(*(SeparableBlock(bottleneck, hidden, kernel, 2**d, block_norm) for _ in range(repeats) for d in range(depth)))
        self.from_bottleneck = nn.Conv1d(bottleneck, flat, 1)
        self.up = nn.ModuleList(_conv_block(b, a, 1, block_norm) for a, b in zip(channels[:-1], channels[1:]))
        self.head = nn.Conv2d(channels[0] + 1, n_classes, 3, padding=1)
        self.has_activity = bool(activity)
        self.activity_head = nn.Conv1d(bottleneck, n_classes, 1) if activity else None

    def receptive_field(self) -> int:
        """Frames that reach one output frame: the 2-D 3x3 convolutions (one frame each way per
        layer: stem, down, up, head) and the bottleneck's dilated blocks."""
        c = self.config
        layers = 1 + 2 * (len(c["channels"]) - 1) + 1
        return 1 + 2 * layers + c["repeats"] * sum((c["kernel"] - 1) * 2**d for d in range(c["depth"]))

    def forward(self, mag: torch.Tensor, activity: bool = False):
        b, f, t = mag.shape
        # Channels-last: oneDNN's convolutions run faster on it. Measured on idle cores, 2 threads,
        # the same weights: a training step (8 x 4 s, forward + backward) 1.5-1.8 s against
        # 2.1-2.3 s; inference on a 20 s chunk RTF 0.013 against 0.015 (outputs equal to 3e-6).
        x = self.input_norm(self.features(mag)).unsqueeze(1).contiguous(memory_format=torch.channels_last)
        h = self.stem(x)  # (B, C0, F/2, T)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        c = h.shape[1]
        z = self.blocks(self.to_bottleneck(h.reshape(b, c * h.shape[2], t)))
        h = h + self.from_bottleneck(z).view(b, c, -1, t)
        for level in range(len(self.up) - 1, -1, -1):
            # Upsample the frequency axis to the level above (nearest, then a 3x3 conv smooths).
            h = F.interpolate(h, size=(self.sizes[level], t), mode="nearest")
            h = self.up[level](h) + skips[level]
        h = F.interpolate(h, size=(f, t), mode="nearest")
        masks = torch.softmax(self.head(torch.cat([h, x], dim=1)).float(), dim=1)
        if activity:
            return masks, self.activity_head(z).float()
        return masks
