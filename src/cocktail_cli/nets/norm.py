"""Input normalisation whose statistics live in the model (and so in its checkpoint)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMS = ("minmax", "cmvn", "none")
BLOCK_NORMS = ("global", "frame", "window")
#: How block_norm=window weighs the frames of its window (see :func:`frame_weights`).
NORM_WEIGHTINGS = ("uniform", "amplitude", "energy")
#: frames of block_norm=window's statistics (173 at 22.05 kHz / hop 256: 2 s)
DEFAULT_NORM_WINDOW = 173
#: New models floor their log-magnitude features this many dB below the input's loudest bin.
DEFAULT_FLOOR_DB = 80.0


def log_magnitude(mag: torch.Tensor, log_eps: float, floor_db: float | None, floor_frames: int | None = None) -> torch.Tensor:
    """``log(mag + eps)``, with bins more than ``floor_db`` below the example's loudest bin
    raised to that floor (``floor_db`` None: no floor, as models trained before it had).

    Why: with only the absolute ``eps`` (1e-5), an empty bin (above a resampler's anti-alias
    cut-off, an MP3's low-pass, a clean synthetic or float signal) reads log(1e-5) = -11.5 while
    every training mixture carried a 16-bit noise floor there (about -8.5). The shipped model sent
    such inputs almost wholly to ``other``: 30 corpus test mixtures gave +2.8 dB SI-SDRi at
    22.05 kHz and -3.4 dB when the same file came at 44.1 kHz. With the floor 80 dB under the
    loudest bin, -100 dB and -96 dB bins look alike, so the noise floor of the file (or its
    absence) is no longer an input; the same unretrained model then gave +2.5 dB at both rates.
    The floor is relative, so a gain moves every feature by the same offset.

    ``floor_frames`` (odd, or None): the loudest bin is taken within that many frames around each
    frame instead of over the whole input. Why: over the whole input it is a statistic of the
    chunk, so a loud sound ten seconds away changed the features of a quiet one; within a window
    no wider than the network's receptive field, a frame's output depends on nothing outside it.
    """
    if floor_db is None:
        return torch.log(mag + log_eps)
    if floor_frames:
        loudest = mag.detach().amax(dim=-2)  # (..., frames)
        flat = loudest.reshape(-1, 1, loudest.shape[-1])
        ref = F.max_pool1d(flat, floor_frames, stride=1, padding=floor_frames // 2).reshape(loudest.shape).unsqueeze(-2)
    else:
        ref = mag.detach().amax(dim=(-2, -1), keepdim=True)
    return torch.log(torch.maximum(mag, ref * 10.0 ** (-floor_db / 20.0)) + log_eps)


class FrameNorm(nn.Module):
    """Layer normalisation frame by frame: over channels for ``(batch, channels, frames)``, over
    channels and bins for ``(batch, channels, bins, frames)``, with a per-channel scale and shift.

    Why not ``GroupNorm(1, C)``: its mean and variance span every frame of the chunk, so one
    second of silence before a siren moved every frame's features and sent the whole siren to
    ``other`` (issue 27: 0.87 of a wail in ``siren``; with 1 s of silence before it, 0.00). Per frame,
    nothing outside the receptive field reaches a frame's output. Parameters are named and shaped as
    GroupNorm's (``weight``, ``bias``: ``(C,)``), so a GroupNorm network's weights load into it.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            y = F.layer_norm(x.transpose(1, 2), (x.shape[1],), self.weight, self.bias, self.eps)
            return y.transpose(1, 2)
        y = F.layer_norm(x.permute(0, 3, 1, 2), x.shape[1:3], None, None, self.eps).permute(0, 2, 3, 1)
        return y * self.weight[:, None, None] + self.bias[:, None, None]


class WindowNorm(nn.Module):
    """``GroupNorm(1, C)`` whose mean and variance are taken over the ``window`` frames centred on
    each frame (fewer at the ends of the input) instead of over the whole chunk; ``(batch, channels,
    frames)``. Parameters named and shaped as GroupNorm's, so a GroupNorm network's weights load.

    Why not only :class:`FrameNorm`: the shipped tcn's weights were learnt with chunk statistics.
    With the same weights and no training, on the recipe's synth val (200 mixtures of 4 s): chunk
    statistics 5.18 dB SI-SDRi, a 173-frame (2 s) window 4.81, 63 frames 4.24, per frame 1.29;
    fine-tuned per frame for 210 CPU-minutes (runs p14, p16a) it got back to 4.25. A window keeps
    what a frame's statistics know of its surroundings, yet a sound ``window / 2`` frames away no
    longer reaches them (with chunk statistics one quiet second sent a whole siren to ``other``).
    On inputs shorter than half the window it is GroupNorm exactly (uniform weights).

    With frames weighted by level (``weight``, :func:`frame_weights`), silence around a sound no
    longer enters its statistics. Shipped weights, no training (val as above; context: the largest
    change of a sound's share in its own stem, scripts/scene_checks.py's sounds): 173 frames
    uniform 4.81 dB / context 0.74, amplitude-weighted 4.72 / 0.09, energy-weighted 4.48 / 0.15;
    345 frames (4 s) amplitude-weighted 4.99 / 0.10; 689 frames (8 s: every frame's window covers
    a whole 4 s training crop) amplitude-weighted 5.12 / 0.11, the shipped model since 2026-12-04.
    """

    def __init__(self, channels: int, window: int = DEFAULT_NORM_WINDOW, eps: float = 1e-5):
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"norm_window must be odd and positive, got {window}")
        self.window, self.eps = int(window), eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``weight`` (batch, 1, frames), optional: how much each frame counts in the statistics
        of the frames around it (:func:`frame_weights`); None counts every frame alike."""
        xf = x.float()  # statistics in float32, also under bf16 autocast
        if self.window // 2 + 1 >= xf.shape[-1] and not torch.is_grad_enabled():
            return self._spanning(xf, weight).to(x.dtype)  # (autograd takes the general path)
        stats = torch.stack([xf.mean(1), xf.square().mean(1)], 1)  # (batch, 2, frames): E[x], E[x^2]
        if weight is not None:
            stats = torch.cat([stats * weight, weight, stats], 1)
        stats = window_mean(stats, self.window)
        if weight is not None:
            # a window whose weights are lost in the running sums' rounding (digital silence far
            # from a loud sound: 1e-12 against 1e3) holds no level to weigh by: its frames count
            # alike there, as they do when every weight is equal
            weighed = stats[:, 2:3] > 1e-12 * weight.mean(-1, keepdim=True)
            stats = torch.where(weighed, stats[:, :2] / stats[:, 2:3].clamp_min(1e-30), stats[:, 3:])
        mean, meansq = stats[:, :1], stats[:, 1:]
        rstd = torch.rsqrt((meansq - mean.square()).clamp_min(0) + self.eps)
        # ((x - mean) * rstd) * w + b as two multiply-adds over the big tensor. Why: one thread,
        # (1, 384, 1723): 2.7 ms against 6.8 for the five passes written out (GroupNorm: 0.27)
        y = torch.addcmul(-(mean * rstd), xf, rstd)
        return torch.addcmul(self.bias[:, None], y, self.weight[:, None]).to(x.dtype)

    def _spanning(self, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """The statistics when every frame's window spans the input (watch's 1.3 s windows, a
        training crop): one mean and variance per example, as frame-weighted sums (two
        matrix-vector products), applied as one multiply-add per channel. Why: the general path's
        many small operations cost a fifth of ``watch``'s network time (one thread, 112 frames:
        16.5 ms a step against 11.4 with GroupNorm), and its goal is a quarter of one core."""
        b, c, t = x.shape
        if weight is None:
            weight = x.new_ones(b, 1, t)
        w = weight.transpose(1, 2)  # (batch, frames, 1)
        total = w.sum(1) * c  # (batch, 1)
        mean = torch.bmm(x, w).sum(1) / total
        var = (torch.bmm(x.square(), w).sum(1) / total - mean.square()).clamp_min(0)
        scale = self.weight * torch.rsqrt(var + self.eps)  # (batch, channels)
        shift = self.bias - mean * scale
        return torch.addcmul(shift[..., None], x, scale[..., None])


def window_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """The mean of ``x`` (batch, channels, frames) over the ``window`` frames centred on each frame,
    fewer at the ends (``F.avg_pool1d(x, window, 1, window // 2, count_include_pad=False)``).

    Hand-written as differences of a cumulative sum, in float64: its cost does not grow with the
    window. Why: avg_pool1d adds up every frame of every window, and with the shipped model's 689
    frames its 20 norms made the network 1.5x slower (one thread, 112 frames as `watch` runs it:
    13.0 ms with GroupNorm, 19.0 ms with avg_pool1d; 1,723 frames: 169 -> 258 ms).
    """
    frames, half = x.shape[-1], window // 2
    total = F.pad(x.double().cumsum(-1), (1, 0))
    idx = torch.arange(frames, device=x.device)
    hi, lo = (idx + half + 1).clamp(max=frames), (idx - half).clamp(min=0)
    return ((total[..., hi] - total[..., lo]) / (hi - lo).to(total.dtype)).to(x.dtype)


def check_norm_weighting(kind: str) -> str:
    """``kind`` if it is one of :data:`NORM_WEIGHTINGS`, else ``ValueError`` naming them."""
    if kind not in NORM_WEIGHTINGS:
        raise ValueError(f"unknown norm_weighting '{kind}' (choose {', '.join(NORM_WEIGHTINGS)})")
    return kind


def frame_weights(mag: torch.Tensor, kind: str) -> torch.Tensor | None:
    """Each frame's weight in a :class:`WindowNorm`'s statistics, from the mixture's magnitude
    ``(batch, bins, frames)``: ``uniform`` None (every frame alike), ``amplitude`` its RMS,
    ``energy`` its energy.

    Why: with uniform weights, frames of silence around a sound enter the statistics of the
    sound's own frames, and through 20 stacked norms the silence reached the whole sound (issue
    27: a 4 s US8K siren in the middle of 20 s of silence went from 0.77 to 0.03 in ``siren``).
    Weighted by level, silence and quiet noise count for almost nothing, so a sound's statistics
    are those of the sound wherever it sits. Absolute, not relative to the example's loudest
    frame, which would be a statistic of the chunk again.
    """
    if check_norm_weighting(kind) == "uniform":
        return None
    energy = mag.detach().float().square().sum(-2, keepdim=True)  # (batch, 1, frames)
    w = energy.sqrt() if kind == "amplitude" else energy
    # a window of digital silence: every frame alike, as with uniform weights (a 16-bit noise
    # floor's frame has an energy of about 1e-4 at n_fft 1024, a full-scale one about 1e7)
    return w + 1e-12


def chunk_or_frame_norm(kind: str, channels: int, window: int | None = None) -> nn.Module:
    """``global``: GroupNorm(1, C), statistics over the whole chunk (networks made before issue
    27); ``frame``: :class:`FrameNorm`; ``window``: :class:`WindowNorm` over ``window`` frames;
    all with the same parameters."""
    if kind not in BLOCK_NORMS:
        raise ValueError(f"unknown block_norm '{kind}' (choose {', '.join(BLOCK_NORMS)})")
    if kind == "window":
        return WindowNorm(channels, window or DEFAULT_NORM_WINDOW)
    return nn.GroupNorm(1, channels) if kind == "global" else FrameNorm(channels)


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


class LogMagnitudeMaskNet(nn.Module):
    """What every mask network over floored log magnitudes shares (``tcn``, ``blstm``,
    ``bandsplit``, ``unet``): its input settings, the :class:`InputNorm` whose statistics travel
    in the checkpoint, and :meth:`features`. Subclasses build their layers after calling
    ``super().__init__`` and record their arguments in ``self.config``."""

    #: Networks with a per-frame activity head set this and take ``forward(mag, activity=True)``.
    has_activity = False

    def __init__(self, n_bins: int, n_classes: int, norm: str, log_eps: float, floor_db: float | None, floor_frames: int | None = None):
        super().__init__()
        self.segment_frames = None  # any length
        self.n_bins, self.n_classes, self.log_eps, self.floor_db = n_bins, n_classes, log_eps, floor_db
        self.floor_frames = floor_frames
        self.input_norm = InputNorm(norm, n_bins)

    def features(self, mag: torch.Tensor) -> torch.Tensor:
        """Log magnitude: mixtures span 60 dB of level, and the log turns gain into an offset.
        Floored relative to the input's loudest bin (see :func:`log_magnitude`)."""
        return log_magnitude(mag, self.log_eps, self.floor_db, self.floor_frames)
