"""A band-split mask network: frequency-aware, after BSRNN / BS-RoFormer / TIGER, sized for a CPU.

Why: :mod:`.tcn` squeezes all 513 bins of a frame into one 192-channel vector, so overlapping
harmonic sounds (a siren over a cry) must be told apart bin by bin from that summary. Here the
spectrum is cut into bands (narrow at low frequencies, where harmonics are dense; wide at high
ones), and every band keeps its own feature vector through the network:

- encoder: per band, a linear map of its (normalised log-magnitude) bins to ``dim`` features;
- separator: ``blocks`` dual blocks, each
  - along time: a dilated depthwise-separable conv block (shared by all bands; see
    :class:`.tcn.SeparableBlock`), dilations 1..2^(depth-1) cycling, so the receptive field grows
    to a second or more;
  - across bands: an MLP over the band axis per feature (token mixing, as in MLP-Mixer), so a
    band hears every other band (harmonics an octave apart) at a cost linear in the frame count.
    Attention or an LSTM over bands does the same job at 5-20x the CPU cost at this size;
- decoder: per band, a linear map of its features to the class logits of its own bins; a
  softmax over the classes makes masks that sum to one.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..classes import N_CLASSES
from .norm import LogMagnitudeMaskNet
from .tcn import SeparableBlock

#: (upper edge in bins, band width in bins) for a 513-bin spectrum (n_fft 1024 at 22.05 kHz:
#: 21.5 Hz a bin): 86 Hz bands to 1 kHz, then 172 Hz to 2 kHz, 344 Hz to 4 kHz, 689 Hz to 8 kHz,
#: 1.4 kHz above. Other sizes scale the edges.
_BAND_PLAN = ((48, 8), (96, 16), (192, 32), (384, 64), (None, 128))


def default_bands(n_bins: int) -> list[int]:
    """Band widths (in bins, summing to ``n_bins``) for a spectrum of ``n_bins`` bins."""
    scale = (n_bins - 1) / 512
    widths: list[int] = []
    edge = 0
    for upper, width in _BAND_PLAN:
        upper = n_bins if upper is None else min(n_bins, round(upper * scale))
        width = max(1, round(width * scale))
        while edge < upper:
            w = min(width, upper - edge)
            if w < width // 2 and widths:  # a sliver: fold it into the band below
                widths[-1] += w
            else:
                widths.append(w)
            edge += w
    return widths


class BandMixer(nn.Module):
    """Residual MLP across the band axis, one per feature channel: ``(B, D, K, T)`` -> same."""

    def __init__(self, n_bands: int, dim: int, expand: int = 2):
        super().__init__()
        self.norm = nn.GroupNorm(1, dim)
        self.mlp = nn.Sequential(nn.Linear(n_bands, expand * n_bands), nn.GELU(), nn.Linear(expand * n_bands, n_bands))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, k, t = x.shape
        h = self.norm(x.reshape(b, d, k * t)).view(b, d, k, t).transpose(2, 3)  # (B, D, T, K)
        return x + self.mlp(h).transpose(2, 3)


class BandSplitNet(LogMagnitudeMaskNet):
    def __init__(
        self,
        n_bins: int = 513,
        bands: list[int] | None = None,
        dim: int = 64,
        hidden: int = 128,
        kernel: int = 3,
        depth: int = 4,
        blocks: int = 6,
        n_classes: int = N_CLASSES,
        norm: str = "cmvn",
        log_eps: float = 1e-5,
        floor_db: float | None = None,
    ):
        super().__init__(n_bins, n_classes, norm, log_eps, floor_db)
        bands = list(bands) if bands is not None else default_bands(n_bins)
        if sum(bands) != n_bins or min(bands) < 1:
            raise ValueError(f"band widths {bands} must be positive and sum to n_bins={n_bins}")
        self.config = dict(
            n_bins=n_bins, bands=bands, dim=dim, hidden=hidden, kernel=kernel, depth=depth, blocks=blocks,
            n_classes=n_classes, norm=norm, log_eps=log_eps, floor_db=floor_db,
        )
        k, wmax = len(bands), max(bands)
        # Bands are padded to the widest one so that the per-band linear maps run as one batched
        # matmul (einsum) rather than a Python loop of K small ones; the padding is zeros in, and
        # the decoder's padded outputs are dropped. ``gather`` takes bins to (band, slot).
        gather = torch.full((k, wmax), n_bins, dtype=torch.long)  # n_bins: the zero pad column
        valid = torch.zeros(k, wmax, dtype=torch.bool)
        edge = 0
        for i, w in enumerate(bands):
            gather[i, :w] = torch.arange(edge, edge + w)
            valid[i, :w] = True
            edge += w
        self.register_buffer("gather", gather, persistent=False)
        self.register_buffer("valid", valid, persistent=False)
        self.enc_weight = nn.Parameter(torch.randn(k, wmax, dim) / wmax**0.5)
        self.enc_bias = nn.Parameter(torch.zeros(k, dim))
        self.time_blocks = nn.ModuleList(SeparableBlock(dim, hidden, kernel, 2 ** (i % depth)) for i in range(blocks))
        self.band_blocks = nn.ModuleList(BandMixer(k, dim) for _ in range(blocks))
        self.out_act = nn.PReLU()
        self.dec_weight = nn.Parameter(torch.randn(k, dim, n_classes * wmax) / dim**0.5)
        self.dec_bias = nn.Parameter(torch.zeros(k, n_classes * wmax))
        with torch.no_grad():  # padded slots have no input: keep their weights at zero
            self.enc_weight.mul_(valid.unsqueeze(-1).float())

    def forward(self, mag: torch.Tensor) -> torch.Tensor:
        b, f, t = mag.shape
        k, wmax = self.gather.shape
        x = self.input_norm(self.features(mag))
        x = torch.cat([x, x.new_zeros(b, 1, t)], dim=1)[:, self.gather]  # (B, K, W, T)
        h = torch.einsum("bkwt,kwd->bdkt", x, self.enc_weight) + self.enc_bias.T[None, :, :, None]  # (B, D, K, T)
        d = h.shape[1]
        for time_block, band_block in zip(self.time_blocks, self.band_blocks):
            h = time_block(h.permute(0, 2, 1, 3).reshape(b * k, d, t)).view(b, k, d, t).permute(0, 2, 1, 3)
            h = band_block(h)
        out = torch.einsum("bdkt,kdo->bkot", self.out_act(h), self.dec_weight) + self.dec_bias[None, :, :, None]
        out = out.view(b, k, self.n_classes, wmax, t).permute(0, 2, 1, 3, 4)  # (B, C, K, W, T)
        logits = out[:, :, self.valid]  # (B, C, n_bins, T): the valid slots, in bin order
        return torch.softmax(logits, dim=1)
