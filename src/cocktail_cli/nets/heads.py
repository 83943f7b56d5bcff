"""Activity heads: per-frame class logits from a mask network's features (issue 25).

``activity_hidden=0`` is the first head, one 1x1 convolution on the features the masks are
decoded from. With ``activity_hidden=H`` the head also sees each class's share of the frame's
energy under its mask (the evidence thresholds use without a head) and looks at its
neighbourhood: a 1x1 convolution to ``H`` channels, dilated convolutions over time (kernel 3;
by default dilations 1, 2, 4, 8, 16: 63 frames, 0.73 s at the shipped STFT; ``activity_dilations``
sets them: the shipped head's 1 ... 64 span 255 frames, 2.96 s), then a 1x1 convolution to the
classes. Why the context: the reference events close gaps under 0.5 s (a dog's barks, a
speaker's pauses are one event), which a per-frame head cannot see; why the shares: the features
do not carry the spectrum's weighting by energy, which tells which class holds a frame's energy.
The head's field is bounded, so a frame's activity never depends on audio far outside it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

#: the time dilations of the context head (field 1 + 2 * sum = 63 frames)
HEAD_DILATIONS = (1, 2, 4, 8, 16)
#: shares under this count as this (log of a share: finite in silence)
SHARE_FLOOR = 1e-4


def energy_shares(masks: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """``(batch, C, frames)``: each class's share of a frame's energy under masks ``(batch, C, bins,
    frames)`` of the magnitude ``(batch, bins, frames)``."""
    power = mag.float().square()
    return (masks * power.unsqueeze(1)).sum(2) / (power.sum(1, keepdim=True) + 1e-12)


class ContextHead(nn.Module):
    def __init__(self, channels: int, n_classes: int, hidden: int, dilations: tuple[int, ...] | list[int] = HEAD_DILATIONS):
        super().__init__()
        dilations = [int(d) for d in dilations]
        if not dilations or any(d < 1 for d in dilations):
            raise ValueError(f"activity_dilations must be positive, got {dilations}")
        self.inp = nn.Conv1d(channels + n_classes, hidden, 1)
        self.layers = nn.ModuleList(nn.Conv1d(hidden, hidden, 3, dilation=d, padding=d) for d in dilations)
        self.acts = nn.ModuleList(nn.PReLU() for _ in range(len(dilations) + 1))
        self.out = nn.Conv1d(hidden, n_classes, 1)

    def forward(self, h: torch.Tensor, masks: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
        return self.from_inputs(self.inputs(h, masks, mag))

    @staticmethod
    def inputs(h: torch.Tensor, masks: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
        """What the head reads, ``(batch, channels + C, frames)``: the features and the log shares
        (apart from :meth:`from_inputs`, so a head can be trained on them cached)."""
        shares = energy_shares(masks, mag).clamp_min(SHARE_FLOOR).log().to(h.dtype)
        return torch.cat([h, shares], 1)

    def from_inputs(self, z: torch.Tensor) -> torch.Tensor:
        x = self.acts[0](self.inp(z))
        for conv, act in zip(self.layers, self.acts[1:]):
            x = x + act(conv(x))  # residual: the field widens, the frame's own evidence stays
        return self.out(x).float()


def activity_head(channels: int, n_classes: int, hidden: int = 0, dilations=None) -> nn.Module:
    """The head for ``activity_hidden``: 0 is a bare 1x1 convolution (the first head's weights,
    ``activity_head.weight``, load as they were); ``dilations`` (``activity_dilations``) widen or
    narrow the context head's field, ``1 + 2 * sum(dilations)`` frames."""
    if not hidden:
        return nn.Conv1d(channels, n_classes, 1)
    return ContextHead(channels, n_classes, hidden, HEAD_DILATIONS if dilations is None else dilations)


def head_logits(head: nn.Module, h: torch.Tensor, masks: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """Float32 logits ``(batch, C, frames)`` of either kind of head."""
    return head(h, masks, mag) if isinstance(head, ContextHead) else head(h).float()
