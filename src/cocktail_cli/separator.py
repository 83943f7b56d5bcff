"""The one separation path: waveform -> STFT -> model masks -> masked STFT -> iSTFT -> stems.

``separate``, ``eval`` (model mode) and validation in ``train`` all call :class:`Separator`.
Long inputs are cut into overlapping chunks that are cross-faded with weights summing to one, so
the result is independent of where chunks fall and memory does not grow with the input.
A final projection spreads whatever the masks and resampling left over equally across stems,
so the stems sum to the input to float precision.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn as nn

from .audio import resample
from .checkpoint import LoadedModel, default_model_path, load_checkpoint
from .classes import CLASSES
from .errors import AudioError
from .stft import STFTConfig


def project_to_mixture(stems: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Add ``(mixture - sum(stems)) / C`` to each stem: stems ``(..., C, T)``, mixture ``(..., T)``."""
    residual = mixture - stems.sum(dim=-2)
    return stems + residual.unsqueeze(-2) / stems.shape[-2]


class Separator(nn.Module):
    """Wraps a mask network and its STFT into a waveform-in, stems-out separator."""

    def __init__(
        self,
        model: nn.Module,
        stft: STFTConfig,
        chunk_seconds: float = 20.0,
        overlap_seconds: float = 1.0,
        batch_chunks: int = 4,
    ):
        super().__init__()
        self.model = model
        self.stft = stft
        self.sample_rate = stft.sample_rate
        fixed = getattr(model, "segment_frames", None)
        if fixed:  # the paper's net takes exactly this many frames
            self.chunk = (fixed - 1) * stft.hop if stft.center else stft.n_fft + (fixed - 1) * stft.hop
        else:
            self.chunk = int(round(chunk_seconds * stft.sample_rate))
        self.fixed_length = bool(fixed)
        self.overlap = min(int(round(overlap_seconds * stft.sample_rate)), self.chunk // 4)
        self.batch_chunks = batch_chunks
        self.min_samples = stft.n_fft

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, **kwargs) -> "Separator":
        loaded = load_checkpoint(path if path is not None else default_model_path())
        sep = cls(loaded.model, loaded.stft, **kwargs)
        sep.loaded = loaded
        return sep

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, **kwargs) -> "Separator":
        sep = cls(loaded.model, loaded.stft, **kwargs)
        sep.loaded = loaded
        return sep

    # -- one segment (differentiable; what training optimises) ---------------------------------
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` at the model's rate -> stems ``(batch, C, samples)``."""
        spec = self.stft.stft(wave)  # (B, F, T)
        masks = self.model(spec.abs())  # (B, C, F, T)
        stems = self.stft.istft(masks * spec.unsqueeze(1), length=wave.shape[-1])
        return project_to_mixture(stems, wave)

    # -- any length, numpy in and out -----------------------------------------------------------
    def _weights(self, n: int, first: bool, last: bool) -> torch.Tensor:
        w = torch.ones(n)
        ramp = torch.linspace(0.0, 1.0, self.overlap + 2)[1:-1] if self.overlap else torch.empty(0)
        if not first and self.overlap:
            w[: self.overlap] = ramp
        if not last and self.overlap:
            w[n - self.overlap :] = 1.0 - ramp
        return w

    @torch.inference_mode()
    def separate_model_rate(self, wave: torch.Tensor) -> torch.Tensor:
        """``(channels, samples)`` at the model's rate -> ``(C, channels, samples)``, chunked."""
        channels, n = wave.shape
        if n <= self.chunk and not self.fixed_length:
            return self(wave).transpose(0, 1)
        step = self.chunk - self.overlap
        starts = list(range(0, max(n - self.overlap, 1), step))
        out = torch.zeros(len(CLASSES), channels, n)
        for i in range(0, len(starts), self.batch_chunks):
            group = starts[i : i + self.batch_chunks]
            segs = []
            for s in group:
                seg = wave[:, s : s + self.chunk]
                if seg.shape[-1] < self.chunk and (self.fixed_length or len(starts) > 1):
                    seg = torch.nn.functional.pad(seg, (0, self.chunk - seg.shape[-1]))
                segs.append(seg)
            stems = self(torch.cat(segs, dim=0))  # (len(group)*channels, C, chunk)
            stems = stems.view(len(group), channels, len(CLASSES), -1)
            for j, s in enumerate(group):
                length = min(self.chunk, n - s)
                w = self._weights(length, first=s == 0, last=s + self.chunk >= n)
                out[:, :, s : s + length] += stems[j, :, :, :length].transpose(0, 1) * w
        return out

    def separate(self, audio: np.ndarray, sample_rate: int, name: str = "<input>") -> np.ndarray:
        """Float ``(channels, samples)`` at any rate -> stems ``(C, channels, samples)`` at that rate.

        Each channel is separated on its own (mono stays mono, stereo stays stereo), and the
        stems sum to the input to float precision.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None]
        if not np.isfinite(audio).all():
            raise AudioError("contains NaN or infinite samples", name)
        model_audio = resample(audio, sample_rate, self.sample_rate)
        if model_audio.shape[-1] < self.min_samples:
            raise AudioError(
                f"too short to separate ({audio.shape[-1]} samples; need at least "
                f"{int(np.ceil(self.min_samples * sample_rate / self.sample_rate))} at {sample_rate} Hz)",
                name,
            )
        stems = self.separate_model_rate(torch.from_numpy(model_audio)).numpy()
        if sample_rate != self.sample_rate:
            stems = np.stack([resample(s, self.sample_rate, sample_rate) for s in stems])
            n = audio.shape[-1]
            if stems.shape[-1] < n:
                stems = np.pad(stems, [(0, 0), (0, 0), (0, n - stems.shape[-1])])
            stems = stems[..., :n]
        mix = torch.from_numpy(audio.astype(np.float64))
        return project_to_mixture(torch.from_numpy(stems.astype(np.float64)).transpose(0, 1), mix).transpose(0, 1).float().numpy()
