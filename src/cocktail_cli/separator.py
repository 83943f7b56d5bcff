"""The one separation path: waveform -> STFT -> model masks -> masked STFT -> iSTFT -> stems.

``separate``, ``eval`` (model mode) and validation in ``train`` all call :class:`Separator`.

Any length, flat memory: audio flows through a :class:`SeparationStream` block by block:

1. resample to the model's rate with a streaming resampler (soxr), so nothing is cut or padded;
2. cut into overlapping chunks of ``chunk_seconds`` (every chunk starts at a multiple of
   ``chunk - overlap`` samples), run them through the model ``batch_chunks`` at a time (the
   channels of a chunk share one set of masks: :meth:`Separator.separate_channels`), and
   cross-fade neighbours with linear ramps that sum to one;
3. resample the stems back to the input rate (streaming again);
4. project: give each stem its energy share of ``mixture - sum(stems)`` (see :func:`_project_np`),
   so the stems sum to the input to float precision whatever the masks, the chunking and the
   resampling left over, and content above the model's band follows the stems it belongs with
   (at the model's rate the residual is float rounding, split equally).

Where chunks fall depends only on the sample index, never on how the input is delivered, so the
whole-array :meth:`Separator.separate` (which feeds the same stream one block) and a file read
block by block give identical stems. Memory holds a few chunks, whatever the input's length.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np
import soxr
from scipy.ndimage import uniform_filter1d
import torch
import torch.nn as nn

from .checkpoint import MODEL_ENV, LoadedModel, default_model_path, load_checkpoint
from .classes import CLASSES
from .errors import AudioError, CheckpointError
from .precision import autocast, resolve
from .stft import STFTConfig

N_STEMS = len(CLASSES)
#: soxr quality for both directions (matches ``audio.resample``).
RESAMPLE_QUALITY = "HQ"


def project_to_mixture(stems: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """Add ``(mixture - sum(stems)) / C`` to each stem: stems ``(..., C, T)``, mixture ``(..., T)``."""
    residual = mixture - stems.sum(dim=-2)
    return stems + residual.unsqueeze(-2) / stems.shape[-2]


def _project_np(stems: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """Give each stem its share of ``mixture - sum(stems)``: stems ``(C, ch, T)``, mixture ``(ch, T)``.

    At the model's rate the residual is float rounding. At a higher input rate it also holds
    everything above the model's band (above 11 kHz for a 22.05 kHz model). Splitting that
    equally would put a fifth of every high-frequency sound into each stem, absent ones too, as
    audible hiss; instead each stem gets the share its own short-time energy has of the total
    (a ~23 ms moving average), so a silent stem stays silent. The shares sum to one, so the stems
    still sum to the input to float32 rounding; where all stems are silent the split is equal.
    """
    residual = (mixture - stems.sum(axis=0, dtype=np.float64)).astype(np.float32)
    energy = uniform_filter1d(np.square(stems, dtype=np.float32), size=_SHARE_WINDOW, axis=-1, mode="nearest")
    total = energy.sum(axis=0)
    silent = total <= 1e-12
    total[silent] = 1.0
    energy[:, silent] = 1.0 / stems.shape[0]  # all stems silent: an equal split
    energy *= residual / total  # in place: energy becomes each stem's share of the residual
    energy += stems
    return energy


#: Samples of the moving average behind the residual shares (about 23 ms at 44.1 kHz).
_SHARE_WINDOW = 1024


def _device_of(model: nn.Module) -> str:
    p = next(iter(model.parameters()), None)
    return str(p.device) if p is not None else "cpu"


def _fast_istft_ok(cfg: STFTConfig) -> bool:
    return cfg.center and cfg.n_fft % cfg.hop == 0


_ENVELOPES: dict[tuple, torch.Tensor] = {}


def _overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """``(N, T, n_fft)`` frames -> ``(N, (T - 1) * hop + n_fft)`` overlap-added signal."""
    n, t, n_fft = frames.shape
    r = n_fft // hop
    parts = frames.reshape(n, t, r, hop)
    out = frames.new_zeros(n, t + r - 1, hop)
    for j in range(r):
        out[:, j : j + t] += parts[:, :, j]
    return out.reshape(n, (t + r - 1) * hop)


def _envelope(cfg: STFTConfig, t: int, dtype: torch.dtype) -> torch.Tensor:
    """The summed squared synthesis window of ``t`` frames (what the iSTFT divides by)."""
    key = (cfg.n_fft, cfg.hop, cfg.window, t, dtype)
    env = _ENVELOPES.get(key)
    if env is None:
        window = cfg.window_tensor(dtype=dtype)
        env = _overlap_add(window.square().expand(1, t, cfg.n_fft).contiguous(), cfg.hop)[0]
        env = torch.where(env > 1e-11, env, torch.ones_like(env))
        if len(_ENVELOPES) > 16:
            _ENVELOPES.clear()
        _ENVELOPES[key] = env
    return env


def _masked_istft(
    cfg: STFTConfig, masks: torch.Tensor, spec: torch.Tensor, length: int, mixture: torch.Tensor | None = None
) -> torch.Tensor:
    """``istft(masks * spec)``: masks ``(B, C, F, T)`` real, spec ``(B, F, T)`` complex -> ``(B, C, length)``.

    The same computation as :meth:`STFTConfig.istft` (inverse FFT, synthesis window, overlap-add,
    division by the summed squared window), written for hops that divide ``n_fft`` and run one
    stem at a time in frame-major layout: temporaries stay small and contiguous, which on CPU is
    most of the speed.

    With ``mixture`` (``(B, length)``, the signal ``spec`` was taken from) the last stem is
    ``mixture`` minus the others: masks that sum to one give stems that sum to the mixture, up to
    the STFT's float rounding, so this is the same stem to within that rounding (about -140 dB),
    one inverse transform fewer, and the stems sum to ``mixture`` exactly.
    """
    b, c, f, t = masks.shape
    window = cfg.window_tensor(masks.device, masks.dtype)
    env = _envelope(cfg, t, masks.dtype)
    start = cfg.n_fft // 2
    stop = min(start + length, env.shape[0])
    inv_env = 1.0 / env[start:stop]
    ri = torch.view_as_real(spec).transpose(1, 2)  # (B, T, F, 2), a view
    masked = torch.empty(b, t, f, 2, dtype=masks.dtype, device=masks.device)
    out = masks.new_zeros(b, c, length)
    for i in range(c - 1 if mixture is not None else c):
        torch.mul(ri, masks[:, i].transpose(1, 2).unsqueeze(-1), out=masked)
        frames = torch.fft.irfft(torch.view_as_complex(masked), n=cfg.n_fft, dim=-1)  # (B, T, n_fft)
        frames *= window
        out[:, i, : stop - start] = _overlap_add(frames, cfg.hop)[:, start:stop] * inv_env
    if mixture is not None:
        torch.sub(mixture, out[:, : c - 1].sum(dim=1), out=out[:, c - 1])
    return out


def soften(masks: torch.Tensor, temperature: float) -> torch.Tensor:
    """Masks that sum to one over classes, raised to ``1 / temperature`` and renormalised.

    For softmax masks this is the softmax of logits / temperature. Why: trained networks are
    over-confident; on the 400 val mixtures the shipped model at temperature 1.4 scores 6.13 dB
    SI-SDRi against 6.02 at 1.0 (median leakage -24.7 instead of -27.5 dB). It is calibrated on
    validation data after training (``scripts/calibrate_temperature.py``) and stored in the
    checkpoint.
    """
    if temperature == 1.0:
        return masks
    tiny = torch.finfo(masks.dtype).tiny
    if torch.is_grad_enabled() and masks.requires_grad:
        powered = masks.clamp_min(0) ** (1.0 / temperature)
        return powered / powered.sum(dim=1, keepdim=True).clamp_min(tiny)
    powered = masks.clamp_min(0).pow_(1.0 / temperature)  # inference: in place, no temporaries
    return powered.div_(powered.sum(dim=1, keepdim=True).clamp_min_(tiny))


class Separator(nn.Module):
    """Wraps a mask network and its STFT into a waveform-in, stems-out separator."""

    def __init__(
        self,
        model: nn.Module,
        stft: STFTConfig,
        chunk_seconds: float = 20.0,
        overlap_seconds: float = 1.0,
        batch_chunks: int = 1,
        mask_temperature: float = 1.0,
        independent_channels: bool = False,
        precision: str = "fp32",
    ):
        super().__init__()
        self.model = model
        #: ``bf16`` or ``fp32`` (``auto`` is resolved here, for the model's device): the network
        #: alone runs in it; STFT, masks and everything after stay float32 (see precision.py).
        self.precision = resolve(precision, _device_of(model))
        self.mask_temperature = float(mask_temperature)
        #: Separate every channel on its own instead of with shared masks (see separate_channels).
        self.independent_channels = bool(independent_channels)
        self.stft = stft
        self.sample_rate = stft.sample_rate
        fixed = getattr(model, "segment_frames", None)
        if fixed:  # the paper's net takes exactly this many frames
            self.chunk = (fixed - 1) * stft.hop if stft.center else stft.n_fft + (fixed - 1) * stft.hop
        else:
            # at least a few windows per chunk, so the overlap and the STFT's padding fit
            self.chunk = max(int(round(chunk_seconds * stft.sample_rate)), 4 * stft.n_fft)
        self.fixed_length = bool(fixed)
        self.overlap = min(int(round(overlap_seconds * stft.sample_rate)), self.chunk // 4)
        if stft.center:
            # chunks start on the STFT's frame grid, so a chunk's frames are frames of the whole
            # input and per-frame activity (events) cross-fades like the stems
            if not fixed:
                self.chunk -= self.chunk % stft.hop
            self.overlap -= self.overlap % stft.hop
        self.batch_chunks = max(1, int(batch_chunks))
        self.min_samples = stft.n_fft

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, **kwargs) -> "Separator":
        """Load ``path``, or the default model (``checkpoint.default_model_path``) when None."""
        if path is None and os.environ.get(MODEL_ENV):  # set, so the problem is its value: say so
            value = os.environ[MODEL_ENV]
            try:
                loaded = load_checkpoint(value)
            except CheckpointError as err:
                raise CheckpointError(
                    f"{MODEL_ENV}={value}: {err.message} (the model used without --model; unset {MODEL_ENV} "
                    "for the shipped one)"
                ) from None
            return cls.from_loaded(loaded, **kwargs)
        if path is None:
            path = default_model_path()
            if not os.path.exists(path):
                raise CheckpointError(
                    "default model not found; pass --model PATH (or set COCKTAIL_MODEL) to use a checkpoint",
                    path,
                )
        return cls.from_loaded(load_checkpoint(path), **kwargs)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, **kwargs) -> "Separator":
        kwargs.setdefault("mask_temperature", loaded.inference.get("mask_temperature", 1.0))
        sep = cls(loaded.model, loaded.stft, **kwargs)
        sep.loaded = loaded
        return sep

    def min_input_samples(self, sample_rate: int) -> int:
        """The shortest input (at ``sample_rate``) that can be separated."""
        return int(np.ceil(self.min_samples * sample_rate / self.sample_rate))

    # -- one segment (differentiable; what training optimises) ---------------------------------
    def masks(self, mag: torch.Tensor) -> torch.Tensor:
        """The network's masks ``(B, C, F, T)`` (float32, summing to one) for magnitudes ``(B, F, T)``,
        softened by the separator's ``mask_temperature`` (:func:`soften`)."""
        return self.masks_and_activity(mag, activity=False)[0]

    def masks_and_activity(self, mag: torch.Tensor, activity: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Masks as :meth:`masks`, and the activity head's per-frame logits ``(B, C, T)`` when
        ``activity`` and the network has one (``has_activity``), else None.

        A network whose masks are a softmax and that takes ``temperature`` (``softmax_masks``)
        divides its logits by it (tcn: its decoder's weights): the same masks as :func:`soften`'s
        (to 1e-7), without its power
        of every mask value (2 min of audio on one thread: 1.30 -> 1.29 s on an idle machine,
        2.00 -> 1.87 s with training on the other core, where memory traffic costs more).
        """
        net = getattr(self.model, "module", self.model)  # through DDP's wrapper
        activity = activity and getattr(net, "has_activity", False)
        t = self.mask_temperature
        kwargs = {"activity": True} if activity else {}
        folded = t != 1.0 and getattr(net, "softmax_masks", False)
        if folded:
            kwargs["temperature"] = t
        with autocast(self.precision, _device_of(self.model)):
            out = self.model(mag, **kwargs)
        masks, logits = out if activity else (out, None)
        masks = masks.float()
        if not folded:
            masks = soften(masks, t)
        return masks, (logits.float() if logits is not None else None)

    @torch.inference_mode()
    def frame_activity(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-frame evidence of each class in ``wave`` (``(B, samples)`` or ``(B, channels,
        samples)`` at the model's rate): frame ``j`` is centred on sample ``j * hop``.

        - ``prob`` ``(B, C, T)``: the activity head's probability that the class is sounding, or,
          for a network without a head, the class's share of the frame's energy under its mask
          (the plain-threshold baseline);
        - ``level_db`` ``(B, C, T)``: each stem's frame level in dBFS (RMS; a full-scale sine
          reads 0), from its masked spectrogram, as the stem file would have it.
        Channels share one set of masks, as in :meth:`separate_channels`.
        """
        spec = self.stft.stft(wave)
        power = spec.real.square() + spec.imag.square()  # (B, [ch,] F, T)
        if power.dim() == 4:
            power = power.mean(dim=1)
        masks, logits = self.masks_and_activity(power.sqrt())
        return self._activity(power, masks, logits)

    def _activity(self, power: torch.Tensor, masks: torch.Tensor, logits: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """:meth:`frame_activity` from the (channel-mean) power ``(B, F, T)`` and softened masks."""
        weight = torch.full((power.shape[-2], 1), 2.0)
        weight[0] = weight[-1] = 1.0  # one-sided spectrum: DC and Nyquist count once
        stem_power = ((masks.square() * power.unsqueeze(1)) * weight).sum(dim=-2)  # (B, C, T)
        window = self.stft.window_tensor()
        # Parseval: mean square of the windowed frame's signal, then AES17 dBFS (x2: sine = 0 dB)
        mean_square = stem_power / (self.stft.n_fft * float(window.square().sum()))
        level_db = 10.0 * torch.log10(2.0 * mean_square + 1e-12)
        if logits is not None:
            prob = torch.sigmoid(logits)
        else:
            prob = stem_power / (power * weight).sum(dim=-2).unsqueeze(1).clamp_min(1e-20)
        return {"prob": prob, "level_db": level_db}

    @torch.inference_mode()
    def separate_with_activity(self, wave: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`separate_channels` and :meth:`frame_activity` of ``(n, channels, samples)`` from
        one run of the network (``separate --events``: stems and events from the same pass).

        Where the stems take another path (independent channels, an STFT the fast inverse cannot
        take) the two are computed apart.
        """
        n, ch, length = wave.shape
        if self.independent_channels or not _fast_istft_ok(self.stft):
            return self.separate_channels(wave), self.frame_activity(wave)
        spec = self.stft.stft(wave.reshape(n * ch, length)).reshape(n, ch, self.stft.n_bins, -1)
        power = spec.real.square() + spec.imag.square()
        if ch == 1:  # as forward() computes the magnitudes, so the stems are those of separate
            mag, power = spec[:, 0].abs(), power[:, 0]
        else:
            power = power.mean(dim=1)
            mag = power.sqrt()
        masks, logits = self.masks_and_activity(mag)  # the head's logits come with the masks
        stems = torch.stack(
            [_masked_istft(self.stft, masks, spec[:, c], length, mixture=wave[:, c]) for c in range(ch)], dim=1
        )
        return stems, self._activity(power, masks, logits)

    def forward(self, wave: torch.Tensor, activity: bool = False):
        """``(batch, samples)`` at the model's rate -> stems ``(batch, C, samples)``; with
        ``activity``, also the activity head's logits ``(batch, C, frames)`` (None without a head)."""
        spec = self.stft.stft(wave)  # (B, F, T)
        masks, logits = self.masks_and_activity(spec.abs(), activity)  # (B, C, F, T), softened
        if torch.is_grad_enabled() or not _fast_istft_ok(self.stft):
            stems = project_to_mixture(self.stft.istft(masks * spec.unsqueeze(1), length=wave.shape[-1]), wave)
        else:
            # inference: the same sums, without the complex broadcast and torch.istft's fold; the last
            # stem is the mixture minus the others, so the stems sum to it (no projection needed)
            stems = _masked_istft(self.stft, masks, spec, wave.shape[-1], mixture=wave)
        return (stems, logits) if activity else stems

    @torch.inference_mode()
    def separate_channels(self, wave: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, samples)`` at the model's rate -> stems ``(batch, channels, C, samples)``.

        One channel is :meth:`forward`. Several channels share one set of masks, computed from
        their mean power spectrogram (``sqrt(mean_c |X_c|^2)``) and applied to each channel's own
        spectrogram: the network runs once whatever the channel count, the stems of each channel
        sum to that channel, and panning is kept. Measured on stereo scenes made of the corpus's
        test clips (``bench/stereo.py``, two seeds), this scores as well as separating every
        channel on its own, or better, when the channels hold one scene (panned sources: +0.5 and
        +0.6 dB SI-SDRi; also 0-0.5 ms apart: +0.1 and +0.5 dB), and 0.6-0.8 dB worse when they
        hold unrelated scenes, for which ``independent_channels`` (``--independent-channels``)
        separates each channel alone.
        """
        n, ch, length = wave.shape
        if ch == 1 or self.independent_channels or not _fast_istft_ok(self.stft):
            return self(wave.reshape(n * ch, length)).view(n, ch, N_STEMS, length)
        spec = self.stft.stft(wave.reshape(n * ch, length)).reshape(n, ch, self.stft.n_bins, -1)
        power = spec.real.square() + spec.imag.square()
        masks = self.masks(power.mean(dim=1).sqrt_())  # (n, C, F, T)
        return torch.stack(
            [_masked_istft(self.stft, masks, spec[:, c], length, mixture=wave[:, c]) for c in range(ch)], dim=1
        )

    # -- any length ------------------------------------------------------------------------------
    def _weights(self, n: int, first: bool, last: bool) -> torch.Tensor:
        w = torch.ones(n)
        ramp = torch.linspace(0.0, 1.0, self.overlap + 2)[1:-1] if self.overlap else torch.empty(0)
        if not first and self.overlap:
            w[: self.overlap] = ramp
        if not last and self.overlap:
            w[n - self.overlap :] = 1.0 - ramp
        return w

    def stream(self, sample_rate: int, channels: int, name: str = "<input>", activity: bool = False) -> "SeparationStream":
        """A :class:`SeparationStream` for audio at ``sample_rate`` with ``channels`` channels
        (with ``activity``, it also gives per-frame activity: :meth:`SeparationStream.take_frames`)."""
        return SeparationStream(self, sample_rate, channels, name, activity)

    @property
    def frame_rate(self) -> float:
        """Activity frames per second (frame ``j`` centred on ``j / frame_rate`` s of input)."""
        return self.sample_rate / self.stft.hop

    def activity_blocks(self, blocks: Iterable[np.ndarray], sample_rate: int, name: str = "<input>") -> Iterator[np.ndarray]:
        """Float ``(channels, samples)`` blocks at any rate in, activity frames ``(2, C, n)``
        (prob, level_db) out, in order: :meth:`frame_activity` of the whole input on the chunk
        grid of :meth:`separate_blocks` (cross-faded alike), in flat memory."""
        stream = None
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if block.ndim == 1:
                block = block[None]
            if stream is None:
                stream = ActivityStream(self, sample_rate, block.shape[0], name)
            yield from stream.push(block)
        if stream is None:
            raise AudioError("contains no audio samples", name)
        yield from stream.finish()

    def activity(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Activity frames ``(2, C, T)`` of a whole float ``(channels, samples)`` array (see
        :meth:`activity_blocks`)."""
        audio = np.asarray(audio, dtype=np.float32)
        return np.concatenate(list(self.activity_blocks([audio if audio.ndim == 2 else audio[None]], sample_rate)), axis=-1)

    def separate_blocks(
        self, blocks: Iterable[np.ndarray], sample_rate: int, name: str = "<input>", on_frames=None,
    ) -> Iterator[np.ndarray]:
        """Float ``(channels, samples)`` blocks in, stems ``(C, channels, m)`` blocks out, in order.

        The concatenated output has exactly the input's length; memory stays flat. ``on_frames``:
        called with each block of activity frames ``(2, C, n)`` (prob, level_db) from the same run
        of the network, in order (``separate --events``).
        """
        stream = None
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if block.ndim == 1:
                block = block[None]
            if stream is None:
                stream = self.stream(sample_rate, block.shape[0], name, activity=on_frames is not None)
            stems = stream.push(block)
            if on_frames is not None:
                for f in stream.take_frames():
                    on_frames(f)
            yield from stems
        if stream is None:
            raise AudioError("contains no audio samples", name)
        stems = stream.finish()
        if on_frames is not None:
            for f in stream.take_frames():
                on_frames(f)
        yield from stems

    @torch.inference_mode()
    def separate_model_rate(self, wave: torch.Tensor) -> torch.Tensor:
        """``(channels, samples)`` at the model's rate -> ``(C, channels, samples)``, chunked."""
        chunker = _Chunker(self, wave.shape[0])
        parts = chunker.push(wave.float()) + chunker.finish()
        return torch.cat(parts, dim=-1)

    def separate(self, audio: np.ndarray, sample_rate: int, name: str = "<input>") -> np.ndarray:
        """Float ``(channels, samples)`` at any rate -> stems ``(C, channels, samples)`` at that rate.

        Each channel is separated on its own (mono stays mono, stereo stays stereo), and the
        stems sum to the input to float precision. Same code path (and same result) as a file
        separated block by block.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None]
        return np.concatenate(list(self.separate_blocks([audio], sample_rate, name)), axis=-1)


class _Chunker:
    """Model-rate chunking with cross-fade, fed incrementally.

    Chunk ``k`` covers ``[k * step, k * step + chunk)`` with ``step = chunk - overlap``; chunks
    run in groups of ``batch_chunks`` by index. A chunk runs once audio past its end has arrived
    (so it is known not to be the last) or at :meth:`finish`; the last chunk is the first whose
    end reaches the input's end, and a short last chunk runs at its own length (padded only for
    fixed-length nets). Output before the next chunk's start is final once a chunk has run.

    ``activity``: ``"none"`` (stems only), ``"with"`` (stems, and per-frame activity from the
    same run of the network) or ``"only"`` (activity, no stems: ``cocktail events``). Activity
    frames ``(2, C, frames)`` (prob, level_db; see :meth:`Separator.frame_activity`) collect in
    :attr:`frames`, cross-faded over the same overlaps as the stems: the step is a whole number
    of STFT hops, so chunk frames are frames of the whole input (frame ``j`` at sample ``j * hop``).
    """

    def __init__(self, sep: Separator, channels: int, activity: str = "none"):
        self.sep, self.channels = sep, channels
        self.step = sep.chunk - sep.overlap
        self.activity = activity
        if activity != "none":
            if not sep.stft.center or self.step % sep.stft.hop:
                raise ValueError("per-frame activity needs a centred STFT and chunks on its frame grid")
            self.hop = sep.stft.hop
            self.step_frames = self.step // self.hop
            self.overlap_frames = sep.overlap // self.hop + 1
        self.frames: list[torch.Tensor] = []  # final activity frames not yet taken
        self.frame_tail: torch.Tensor | None = None
        self.buffer = torch.zeros(channels, 0)  # model-rate audio from self.buffer_start on
        self.pending: list[torch.Tensor] = []  # pushed, not yet appended to the buffer
        self.buffer_start = 0
        self.received = 0
        self.next_chunk = 0
        self.tail: torch.Tensor | None = None  # weighted output of [next start, + overlap)

    def take_frames(self) -> list[torch.Tensor]:
        out, self.frames = self.frames, []
        return out

    def push(self, wave: torch.Tensor) -> list[torch.Tensor]:
        if wave.shape[-1]:
            self.pending.append(wave)
            self.received += wave.shape[-1]
        out = []
        b = self.sep.batch_chunks
        while True:
            first = self.next_chunk
            group = range(first, (first // b + 1) * b)  # the rest of this index group
            if self.received <= group[-1] * self.step + self.sep.chunk:
                break
            out.extend(self._run(list(group), self.received))
        return out

    def finish(self) -> list[torch.Tensor]:
        n = self.received
        if n == 0:
            return []
        starts_end = max(n - self.sep.overlap, 1)
        out = []
        b = self.sep.batch_chunks
        k = self.next_chunk
        last = k
        while (last + 1) * self.step < starts_end:
            last += 1
        while k <= last:
            group_end = min((k // b + 1) * b - 1, last)
            out.extend(self._run(list(range(k, group_end + 1)), n, final=True))
            k = group_end + 1
        return out

    def _process(self, segs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(n, ch, L)`` -> stems ``(n, ch, C, L)`` and activity ``(n, 2, C, frames)``, as asked."""
        sep = self.sep
        if self.activity == "none":
            return sep.separate_channels(segs), None
        if self.activity == "only":
            stems, act = None, sep.frame_activity(segs)
        else:
            stems, act = sep.separate_with_activity(segs)
        return stems, torch.stack([act["prob"], act["level_db"]], dim=1)

    def _frame_weights(self, n: int, first: bool, last: bool) -> torch.Tensor:
        w = torch.ones(n)
        m = self.overlap_frames
        ramp = torch.linspace(0.0, 1.0, m + 2)[1:-1]
        if not first:
            w[:m] = ramp[: min(m, n)]
        if not last:
            w[n - m :] = 1.0 - ramp
        return w

    @torch.inference_mode()
    def _run(self, ks: list[int], n: int, final: bool = False) -> list[torch.Tensor]:
        sep, chunk = self.sep, self.sep.chunk
        if self.pending:
            self.buffer = torch.cat([self.buffer, *self.pending], dim=-1)
            self.pending = []
        starts = [k * self.step for k in ks]
        lengths = [min(chunk, n - s) for s in starts]
        # full-length chunks run together; a short last chunk on its own
        full = [i for i, L in enumerate(lengths) if L == chunk]
        short = [i for i, L in enumerate(lengths) if L < chunk]
        stems: dict[int, torch.Tensor] = {}
        acts: dict[int, torch.Tensor] = {}
        if full:
            segs = torch.stack([self._segment(starts[i], chunk) for i in full], dim=0)
            res, act = self._process(segs)  # (len(full), ch, C, chunk), (len(full), 2, C, frames)
            for j, i in enumerate(full):
                if res is not None:
                    stems[i] = res[j].transpose(0, 1)
                if act is not None:
                    acts[i] = act[j]
        for i in short:
            length = lengths[i]
            seg = self._segment(starts[i], length)
            run_len = chunk if sep.fixed_length else max(length, sep.min_samples)
            if run_len > length:
                seg = torch.nn.functional.pad(seg, (0, run_len - length))
            res, act = self._process(seg[None])
            if res is not None:
                stems[i] = res[0, :, :, :length].transpose(0, 1)
            if act is not None:
                acts[i] = act[0, ..., : 1 + length // self.hop]
        out = []
        for i, (s, length) in enumerate(zip(starts, lengths)):
            is_last = final and s + chunk >= n
            if self.activity != "none":
                self._add_frames(acts[i], first=s == 0, last=is_last)
            if self.activity != "only":
                weighted = stems[i] * sep._weights(length, first=s == 0, last=is_last)
                if self.tail is not None:
                    weighted[..., : self.tail.shape[-1]] += self.tail
                if is_last:
                    out.append(weighted)
                    self.tail = None
                else:
                    out.append(weighted[..., : self.step])
                    self.tail = weighted[..., self.step :].clone()
            self.next_chunk = ks[i] + 1
        # drop audio no later chunk needs
        keep_from = self.next_chunk * self.step
        if keep_from > self.buffer_start:
            self.buffer = self.buffer[:, keep_from - self.buffer_start :].clone()
            self.buffer_start = keep_from
        return out

    def _add_frames(self, act: torch.Tensor, first: bool, last: bool) -> None:
        weighted = act * self._frame_weights(act.shape[-1], first, last)
        if self.frame_tail is not None:
            weighted[..., : self.frame_tail.shape[-1]] += self.frame_tail
        if last:
            self.frames.append(weighted)
            self.frame_tail = None
        else:
            self.frames.append(weighted[..., : self.step_frames])
            self.frame_tail = weighted[..., self.step_frames :].clone()

    def _segment(self, start: int, length: int) -> torch.Tensor:
        a = start - self.buffer_start
        return self.buffer[:, a : a + length]


def _checked_block(block: np.ndarray, channels: int, name: str) -> np.ndarray:
    """A streamed block as contiguous float32 ``(channels, samples)``; NaN or infinity refused."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    if block.ndim != 2 or block.shape[0] != channels:
        raise ValueError(f"expected ({channels}, samples) audio, got shape {block.shape}")
    if not np.isfinite(block).all():
        raise AudioError("contains NaN or infinite samples", name)
    return block


def _check_length(sep: Separator, n_in: int, sample_rate: int, name: str, verb: str) -> None:
    """At the end of a stream: refuse one with no samples, or too few for the STFT."""
    if n_in == 0:
        raise AudioError("contains no audio samples", name)
    need = sep.min_input_samples(sample_rate)
    if n_in < need:
        raise AudioError(
            f"too short to {verb} ({n_in} sample{'s' if n_in != 1 else ''}; need at least {need} at {sample_rate} Hz)",
            name,
        )


class SeparationStream:
    """Input-rate audio in, projected input-rate stems out, block by block (see module doc).

    ``push(block (channels, b))`` and ``finish()`` return lists of stems ``(C, channels, m)``;
    concatenated they have exactly as many samples as were pushed.
    """

    def __init__(self, sep: Separator, sample_rate: int, channels: int, name: str = "<input>", activity: bool = False):
        if sample_rate <= 0:
            raise AudioError(f"invalid sample rate {sample_rate}", name)
        self.sep, self.sample_rate, self.channels, self.name = sep, int(sample_rate), channels, name
        resampled = self.sample_rate != sep.sample_rate
        self.down = (
            soxr.ResampleStream(self.sample_rate, sep.sample_rate, channels, dtype="float32", quality=RESAMPLE_QUALITY)
            if resampled else None
        )
        self.up = (
            soxr.ResampleStream(sep.sample_rate, self.sample_rate, N_STEMS * channels, dtype="float32", quality=RESAMPLE_QUALITY)
            if resampled else None
        )
        #: with ``activity``, per-frame activity from the same run of the network (:meth:`take_frames`)
        self.chunker = _Chunker(sep, channels, "with" if activity else "none")
        self.mix: deque[np.ndarray] = deque()  # input not yet matched by stems
        self.n_in = 0
        self.n_out = 0

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        block = _checked_block(block, self.channels, self.name)
        if block.shape[1] == 0:
            return []
        self.mix.append(block)
        self.n_in += block.shape[1]
        if self.down is not None:
            model_block = self.down.resample_chunk(block.T).T
        else:
            model_block = block
        stems = self.chunker.push(torch.from_numpy(np.ascontiguousarray(model_block)))
        return self._emit(stems, last=False)

    def finish(self) -> list[np.ndarray]:
        _check_length(self.sep, self.n_in, self.sample_rate, self.name, "separate")
        stems = []
        if self.down is not None:
            rest = self.down.resample_chunk(np.zeros((0, self.channels), np.float32), last=True).T
            stems += self.chunker.push(torch.from_numpy(np.ascontiguousarray(rest)))
        stems += self.chunker.finish()
        out = self._emit(stems, last=True)
        missing = self.n_in - self.n_out
        if missing > 0:  # the resamplers' rounding: a few samples, filled by the projection
            out += self._match(np.zeros((N_STEMS, self.channels, missing), np.float32))
        return out

    def take_frames(self) -> list[np.ndarray]:
        """Activity frames ``(2, C, n)`` (prob, level_db) made final since the last call."""
        return [f.numpy() for f in self.chunker.take_frames()]

    def _emit(self, stems: list[torch.Tensor], last: bool) -> list[np.ndarray]:
        out = []
        for s in stems:
            s = s.numpy()
            if self.up is not None:
                flat = s.reshape(N_STEMS * self.channels, -1).T
                s = np.ascontiguousarray(self.up.resample_chunk(flat).T).reshape(N_STEMS, self.channels, -1)
            out += self._match(s)
        if last and self.up is not None:
            rest = self.up.resample_chunk(np.zeros((0, N_STEMS * self.channels), np.float32), last=True)
            out += self._match(np.ascontiguousarray(rest.T).reshape(N_STEMS, self.channels, -1))
        return out

    def _match(self, stems: np.ndarray) -> list[np.ndarray]:
        """Pair stems with the same stretch of input and project; never past the input's end."""
        m = min(stems.shape[-1], self.n_in - self.n_out)
        if m <= 0:
            return []
        parts, need = [], m
        while need:
            head = self.mix[0]
            take = min(need, head.shape[1])
            parts.append(head[:, :take])
            if take == head.shape[1]:
                self.mix.popleft()
            else:
                self.mix[0] = head[:, take:]
            need -= take
        mix = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        self.n_out += m
        if self.up is None:  # at the model's rate the residual is float rounding: split it equally
            stems = stems[..., :m] + (mix - stems[..., :m].sum(axis=0)) / np.float32(N_STEMS)
            return [stems]
        return [_project_np(stems[..., :m], mix)]


class ActivityStream:
    """Input-rate audio in, activity frames ``(2, C, n)`` out, block by block: the analysis half of
    :class:`SeparationStream` (the same resampler and chunker; no stems are made)."""

    def __init__(self, sep: Separator, sample_rate: int, channels: int, name: str = "<input>"):
        if sample_rate <= 0:
            raise AudioError(f"invalid sample rate {sample_rate}", name)
        self.sep, self.sample_rate, self.channels, self.name = sep, int(sample_rate), channels, name
        self.down = (
            soxr.ResampleStream(self.sample_rate, sep.sample_rate, channels, dtype="float32", quality=RESAMPLE_QUALITY)
            if self.sample_rate != sep.sample_rate else None
        )
        self.chunker = _Chunker(sep, channels, "only")
        self.n_in = 0

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        block = _checked_block(block, self.channels, self.name)
        if block.shape[1] == 0:
            return []
        self.n_in += block.shape[1]
        model_block = self.down.resample_chunk(block.T).T if self.down is not None else block
        self.chunker.push(torch.from_numpy(np.ascontiguousarray(model_block)))
        return [f.numpy() for f in self.chunker.take_frames()]

    def finish(self) -> list[np.ndarray]:
        _check_length(self.sep, self.n_in, self.sample_rate, self.name, "analyse")
        if self.down is not None:
            rest = self.down.resample_chunk(np.zeros((0, self.channels), np.float32), last=True).T
            self.chunker.push(torch.from_numpy(np.ascontiguousarray(rest)))
        self.chunker.finish()
        return [f.numpy() for f in self.chunker.take_frames()]


class LiveActivity:
    """Activity frames of a live stream with little delay: ``cocktail watch``.

    :class:`ActivityStream` waits for whole chunks (20 s by default) and cross-fades them, which
    suits files; a live alert cannot wait that long. Here the network runs every ``hop_seconds``
    on a short window: ``left_seconds`` of past audio (context for the network, whose receptive
    field spans about 0.7 s each way), the ``hop_seconds`` of new frames that are kept, and
    ``right_seconds`` of audio after them (so the newest kept frame has some future to judge by).
    A frame is thus final ``right_seconds`` after its time (plus up to a hop); each run costs
    ``(left + hop + right) / hop`` times its share of real time (13x: about 15% of one core for
    the shipped model, which runs 100x real time on one core). Memory holds one window, whatever the stream's length.
    Frames are those of the whole stream (frame ``j`` centred on sample ``j * hop``), computed by
    :meth:`Separator.frame_activity` like every other path.
    """

    def __init__(self, sep: Separator, sample_rate: int, channels: int = 1, hop_seconds: float = 0.1,
                 left_seconds: float = 1.0, right_seconds: float = 0.2, name: str = "<stream>"):
        if sample_rate <= 0:
            raise AudioError(f"invalid sample rate {sample_rate}", name)
        if not sep.stft.center:
            raise ValueError("live activity needs a centred STFT")
        self.sep, self.name, self.channels = sep, name, channels
        h = sep.stft.hop

        def frames(seconds: float) -> int:
            return max(1, int(round(seconds * sep.sample_rate / h)))

        self.hop, self.left, self.right = frames(hop_seconds) * h, frames(left_seconds) * h, frames(right_seconds) * h
        self.down = (
            soxr.ResampleStream(int(sample_rate), sep.sample_rate, channels, dtype="float32", quality=RESAMPLE_QUALITY)
            if int(sample_rate) != sep.sample_rate else None
        )
        self.window = np.zeros((channels, 0), np.float32)  # model-rate audio from self.window_start on
        self.window_start = 0
        self.received = 0  # model-rate samples so far
        self.next_frame = 0  # first frame not yet returned

    @property
    def frame_rate(self) -> float:
        return self.sep.frame_rate

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Input-rate ``(channels, n)`` audio; returns the activity frames ``(2, C, m)`` made final."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 1:
            block = block[None]
        if not np.isfinite(block).all():
            block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)  # a live stream goes on
        model_block = self.down.resample_chunk(np.ascontiguousarray(block.T)).T if self.down is not None else block
        return self._add(model_block)

    def finish(self) -> list[np.ndarray]:
        """The end of the stream: the frames still held, judged by what audio there is."""
        out = []
        if self.down is not None:
            out += self._add(self.down.resample_chunk(np.zeros((0, self.channels), np.float32), last=True).T)
        last = 1 + self.received // self.sep.stft.hop if self.received >= self.sep.min_samples else 0
        if last > self.next_frame:
            out.append(self._run(self.received, last))
        return out

    def _add(self, model_block: np.ndarray) -> list[np.ndarray]:
        if model_block.shape[-1]:
            self.window = np.concatenate([self.window, model_block], axis=-1)
            self.received += model_block.shape[-1]
        out = []
        h = self.sep.stft.hop
        while True:
            stop = (self.next_frame * h + self.hop) // h * h  # end of the next hop of frames (samples)
            if self.received < stop + self.right or stop + self.right < self.sep.min_samples:
                break
            out.append(self._run(stop + self.right, stop // h))
        return out

    def _run(self, end: int, last_frame: int) -> np.ndarray:
        """Frames ``[next_frame, last_frame)`` from the window ending at sample ``end``."""
        h = self.sep.stft.hop
        start = max(0, (self.next_frame * h - self.left) // h * h)
        a = start - self.window_start
        segment = torch.from_numpy(np.ascontiguousarray(self.window[:, a : end - self.window_start]))
        act = self.sep.frame_activity(segment[None])
        first = self.next_frame - start // h
        frames = torch.stack([act["prob"][0], act["level_db"][0]])[..., first : first + last_frame - self.next_frame]
        self.next_frame = last_frame
        keep = max(0, (self.next_frame * h - self.left) // h * h)  # what the next window needs
        if keep > self.window_start:
            self.window = self.window[:, keep - self.window_start :]
            self.window_start = keep
        return frames.numpy()
