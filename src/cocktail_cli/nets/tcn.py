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
from .heads import activity_head, head_logits
from .norm import LogMagnitudeMaskNet, WindowNorm, check_norm_weighting, chunk_or_frame_norm as _block_norm, frame_weights


def _softmax_masks(decode: nn.Conv1d, h: torch.Tensor, shape: tuple, temperature: float, head: nn.Module | None,
                   mag: torch.Tensor):
    """Masks ``softmax(decode(h) / temperature)`` over the classes (``shape``: (B, C, F, T)), and
    with a ``head`` its logits from the masks at temperature 1 (what it was trained on).

    Without a head the temperature divides the decoder's weights, not its output: the same
    logits without one more pass over all of them."""
    if temperature != 1.0 and head is None:
        scale = 1.0 / temperature
        logits = nn.functional.conv1d(h, decode.weight * scale, decode.bias * scale)
    else:
        logits = decode(h)
    logits = logits.float().view(shape)  # the softmax in float32 under bf16 autocast
    if head is None:
        return torch.softmax(logits, dim=1)
    plain = torch.softmax(logits, dim=1)
    masks = plain if temperature == 1.0 else torch.softmax(logits * (1.0 / temperature), dim=1)
    return masks, head_logits(head, h, plain, mag)


class SeparableBlock(nn.Module):
    """1x1 expand -> PReLU -> norm -> dilated depthwise conv -> PReLU -> norm -> 1x1 project, residual."""

    def __init__(self, channels: int, hidden: int, kernel: int, dilation: int, block_norm: str = "global",
                 norm_window: int | None = None):
        super().__init__()
        self.expand = nn.Conv1d(channels, hidden, 1)
        self.act1 = nn.PReLU()
        self.norm1 = _block_norm(block_norm, hidden, norm_window)
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2, groups=hidden)
        self.act2 = nn.PReLU()
        self.norm2 = _block_norm(block_norm, hidden, norm_window)
        self.project = nn.Conv1d(hidden, channels, 1)

    def _norm(self, norm: nn.Module, h: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        return norm(h, weight) if isinstance(norm, WindowNorm) else norm(h)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``weight``: frame weights for windowed statistics (:func:`~.norm.frame_weights`)."""
        h = self._norm(self.norm1, self.act1(self.expand(x)), weight)
        h = self._norm(self.norm2, self.act2(self.depthwise(h)), weight)
        return x + self.project(h)


class TCNMaskNet(LogMagnitudeMaskNet):
    softmax_masks = True  # forward takes ``temperature`` (Separator.masks_and_activity)

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
        block_norm: str = "global",
        floor_frames: int | None = None,
        activity: bool = False,
        context_dilations: tuple[int, ...] | list[int] = (),
        norm_window: int | None = None,
        norm_weighting: str = "uniform",
        activity_hidden: int = 0,
        activity_dilations: tuple[int, ...] | list[int] | None = None,
    ):
        super().__init__(n_bins, n_classes, norm, log_eps, floor_db, floor_frames)
        check_norm_weighting(norm_weighting)
        # only windowed statistics take weights: other norms need none computed
        self.norm_weighting = norm_weighting if block_norm == "window" else "uniform"
        context_dilations = [int(d) for d in context_dilations]
        if any(d < 1 for d in context_dilations):
            raise ValueError(f"context_dilations must be positive, got {context_dilations}")
        self.config = dict(
            n_bins=n_bins, channels=channels, hidden=hidden, kernel=kernel, depth=depth,
            repeats=repeats, n_classes=n_classes, norm=norm, log_eps=log_eps, floor_db=floor_db,
        )
        # recorded only when set, so checkpoints made before they existed keep their arguments
        for key, value, default in (
            ("block_norm", block_norm, "global"), ("floor_frames", floor_frames, None), ("activity", activity, False),
            ("context_dilations", context_dilations, []), ("norm_window", norm_window, None),
            ("norm_weighting", norm_weighting, "uniform"), ("activity_hidden", activity_hidden, 0),
            ("activity_dilations", None if activity_dilations is None else [int(d) for d in activity_dilations], None),
        ):
            if value != default:
                self.config[key] = value
        self.encode = nn.Conv1d(n_bins, channels, 1)
        # ``context_dilations``: blocks after the repeats with wider dilations. Why: without a
        # statistic over the chunk (block_norm=frame), what a frame knows of its context is its
        # receptive field (125 frames, 1.45 s, for the shipped sizes); each block with dilation d
        # widens it by 2d frames at a tenth of the network's cost. They come last, so a network
        # without them loads into the first blocks, and their projection starts at zero, so such a
        # network starts as the same function (see _load_init_weights in train.py).
        dilations = [2**d for _ in range(repeats) for d in range(depth)] + context_dilations
        self.blocks = nn.Sequential(*(SeparableBlock(channels, hidden, kernel, d, block_norm, norm_window) for d in dilations))
        for block in self.blocks[len(dilations) - len(context_dilations):]:
            nn.init.zeros_(block.project.weight)
            nn.init.zeros_(block.project.bias)
        self.out_act = nn.PReLU()
        self.decode = nn.Conv1d(channels, n_classes * n_bins, 1)
        self.has_activity = bool(activity)
        #: per-frame class activity (logits) from the same features the masks come from (heads.py)
        self.activity_head = (
            activity_head(channels, n_classes, int(activity_hidden), activity_dilations) if activity else None
        )

    def forward(self, mag: torch.Tensor, activity: bool = False, temperature: float = 1.0):
        """Masks ``(B, C, F, T)`` of ``softmax(logits / temperature)``; with ``activity`` also the
        head's logits (the head sees the masks at temperature 1, as it was trained)."""
        x = self.input_norm(self.features(mag))
        weight = frame_weights(mag, self.norm_weighting)
        h = self.encode(x)
        for block in self.blocks:
            h = block(h, weight)
        h = self.out_act(h)
        shape = (mag.shape[0], self.n_classes, self.n_bins, mag.shape[-1])
        return _softmax_masks(self.decode, h, shape, temperature, self.activity_head if activity else None, mag)

    def receptive_field(self) -> int:
        """Frames that reach one output frame (the window's centre frame included)."""
        return 1 + sum((b.depthwise.kernel_size[0] - 1) * b.depthwise.dilation[0] for b in self.blocks)


class StridedTCNMaskNet(LogMagnitudeMaskNet):
    """A wide tcn whose blocks run at a quarter of the frame rate (issue 27's large candidate).

    Why: a per-frame network does as many multiply-adds per frame as it has weights, so on a CPU
    its size is its cost. Here the wide blocks (``channels``/``hidden``, about 10 M weights) see
    every ``stride``-th frame of a learned downsampling, and their output is upsampled and added to
    the full-rate encoding, from which the masks (and the activity head) are decoded at full
    resolution: about ``stride`` times more weights for the same cost, and a receptive field
    ``stride`` times longer for the same dilations. Per-frame norms throughout (no statistic spans
    the chunk); softmax masks that sum to one.

    ``refine``: that many narrow blocks (``skip`` channels, dilations 1, 2, 4, ...) at the full
    frame rate before the decoder. Why: without them a frame's masks differ from its neighbours'
    only through one 1x1 encoding, and the long run's estimates on fully overlapped mixtures were
    artefact-heavy (SAR 3.7-3.9 dB against the shipped tcn's 8.3; DEVELOPERS.md).
    """

    has_activity = False
    softmax_masks = True  # forward takes ``temperature`` (Separator.masks_and_activity)

    def __init__(
        self,
        n_bins: int = 513,
        skip: int = 256,
        channels: int = 512,
        hidden: int = 1024,
        kernel: int = 3,
        depth: int = 5,
        repeats: int = 2,
        stride: int = 4,
        n_classes: int = N_CLASSES,
        norm: str = "cmvn",
        log_eps: float = 1e-5,
        floor_db: float | None = None,
        floor_frames: int | None = None,
        activity: bool = False,
        refine: int = 0,
    ):
        super().__init__(n_bins, n_classes, norm, log_eps, floor_db, floor_frames)
        self.config = dict(
            n_bins=n_bins, skip=skip, channels=channels, hidden=hidden, kernel=kernel, depth=depth, repeats=repeats,
            stride=stride, n_classes=n_classes, norm=norm, log_eps=log_eps, floor_db=floor_db,
            floor_frames=floor_frames, activity=activity,
        )
        if refine:  # only when set, so earlier checkpoints' configs stay as they were
            self.config["refine"] = int(refine)
        self.stride = stride
        self.encode = nn.Conv1d(n_bins, skip, 1)
        self.enc_act = nn.PReLU()
        self.down = nn.Conv1d(skip, channels, stride, stride=stride)
        self.blocks = nn.Sequential(
            *(SeparableBlock(channels, hidden, kernel, 2**d, "frame") for _ in range(repeats) for d in range(depth))
        )
        self.up = nn.ConvTranspose1d(channels, skip, stride, stride=stride)
        self.refine = nn.ModuleList(SeparableBlock(skip, 2 * skip, kernel, 2**d, "frame") for d in range(int(refine)))
        self.out_act = nn.PReLU()
        self.decode = nn.Conv1d(skip, n_classes * n_bins, 1)
        self.has_activity = bool(activity)
        self.activity_head = nn.Conv1d(skip, n_classes, 1) if activity else None

    def receptive_field(self) -> int:
        c = self.config
        low = c["stride"] * (2 + c["repeats"] * sum((c["kernel"] - 1) * 2**d for d in range(c["depth"])))
        return low + sum((c["kernel"] - 1) * 2**d for d in range(c.get("refine", 0)))

    def forward(self, mag: torch.Tensor, activity: bool = False, temperature: float = 1.0):
        t = mag.shape[-1]
        e = self.enc_act(self.encode(self.input_norm(self.features(mag))))
        pad = (-t) % self.stride
        low = self.down(nn.functional.pad(e, (0, pad)))
        h = e + self.up(self.blocks(low))[..., :t]
        for block in self.refine:
            h = block(h)
        h = self.out_act(h)
        shape = (mag.shape[0], self.n_classes, self.n_bins, t)
        return _softmax_masks(self.decode, h, shape, temperature, self.activity_head if activity else None, mag)
