"""``cocktail train``: a store from ``cocktail prep`` -> a self-describing model checkpoint.

Everything random in a run is a function of ``(seed, step)``: the data order of epoch ``e`` is a
permutation drawn from ``(seed, e)``, the augmentation of step ``s`` (per-stem gain, crop offset)
from ``(seed, s)``. So ``--resume`` needs only the step, the weights and the optimizer state to
continue exactly as an uninterrupted run would, and a run under ``torchrun`` sees the same global
batches as a single process (each rank takes its slice of every global batch).

Losses: the paper's arch trains on magnitudes (summed per-class MSE of f_i*|X| against |S_i|);
the others on the waveform that :class:`~cocktail_cli.separator.Separator` reconstructs (see
:mod:`cocktail_cli.losses`). Validation always separates through ``Separator.forward``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from . import __version__
from .checkpoint import LoadedModel, load_checkpoint, read_raw, save_checkpoint
from .classes import CLASSES, N_CLASSES
from .errors import CheckpointError, CocktailError
from .losses import active_stems, activity_labels, activity_loss, magnitude_mse, waveform_loss
from .mixing import FixedMixtures, MixConfig, MixedBatches, load_bank
from .metrics import si_sdr
from .nets import ARCHS, DEFAULT_ARCH, build, n_parameters
from .nets.norm import DEFAULT_FLOOR_DB
from .precision import resolve as resolve_precision
from .prep import StoreSplit, read_manifest
from .separator import Separator
from .stft import STFTConfig

OPTIMIZERS = ("adam", "adamw", "adadelta")
SCHEDULES = ("cosine", "constant")
#: Per-architecture training defaults (the paper's recipe for ``paper``, ours for the rest).
ARCH_DEFAULTS = {
    # The paper's features: a 23 ms window (n_fft 512 at 22050 Hz), hop = window / 4.
    "paper": dict(optimizer="adam", lr=1e-3, schedule="constant", clip=0.0, loss="magnitude", weight_decay=0.0, n_fft=512, hop=128),
    "tcn": dict(optimizer="adamw", lr=2e-3, schedule="cosine", clip=5.0, loss="waveform", weight_decay=1e-2, absent_weight=0.1),
    "blstm": dict(optimizer="adamw", lr=2e-3, schedule="cosine", clip=5.0, loss="waveform", weight_decay=1e-2, absent_weight=0.1),
    "bandsplit": dict(optimizer="adamw", lr=2e-3, schedule="cosine", clip=5.0, loss="waveform", weight_decay=1e-2, absent_weight=0.1),
    "unet": dict(optimizer="adamw", lr=2e-3, schedule="cosine", clip=5.0, loss="waveform", weight_decay=1e-2, absent_weight=0.1),
}
#: Settings that may differ on ``--resume`` (everything else comes from the checkpoint).
RESUMABLE_OVERRIDES = ("steps", "epochs", "device", "threads", "checkpoint_minutes", "checkpoint_steps", "cpu_minutes")


@dataclass
class TrainConfig:
    store: str | None
    output: str
    # Source folders (corpus, corpus-extra, ...): train on mixtures drawn afresh at every step
    # (:mod:`cocktail_cli.mixing`) instead of a store's fixed mixtures; validation on mixtures
    # drawn once from their val split. ``mix`` overrides :class:`~cocktail_cli.mixing.MixConfig`
    # (None: its defaults, or on --resume the run's own; given on --resume, it replaces them from
    # that step on, e.g. to switch an augmentation on mid-run).
    sources: list[str] | None = None
    mix: dict | None = None
    # Feature floor, dB under the input's loudest bin (tcn, blstm; see nets.norm.log_magnitude).
    # None: no floor, as in runs made before it existed (they resume as they were).
    floor_db: float | None = DEFAULT_FLOOR_DB
    arch: str = DEFAULT_ARCH
    arch_args: dict = field(default_factory=dict)
    norm: str | None = None  # None: the store's
    optimizer: str | None = None  # None: the arch's default (ARCH_DEFAULTS)
    lr: float | None = None
    rho: float = 0.9
    weight_decay: float | None = None
    schedule: str | None = None
    warmup: int | None = None  # steps; None: 5% of the run, at most 500
    clip: float | None = None
    batch_size: int = 16
    steps: int | None = None
    epochs: float | None = None
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    segment: float | None = None  # seconds; None: the store's example length
    n_fft: int | None = None  # None: the arch's default (paper: 512), else the store's suggestion
    hop: int | None = None  # None: the arch's default, else n_fft / 4 or the store's suggestion
    gain_db: float = 6.0
    # Dynamic mixing: build each training example from stems of independently drawn examples
    # (class c of item k from a random example), so no two steps see the same combination of
    # sources. The synth recipe draws every class independently, so remixing keeps its
    # statistics (activity per class, levels) while the number of distinct mixtures becomes
    # effectively unbounded. Off for checkpoints made before it existed, so they resume exactly.
    remix: bool = False
    # Weight of the absent-stem (silence) term against -SI-SDR of present stems. At 1.0 the first
    # 4,000 examples of a corpus run bought -38 dB leakage but only 0.65 dB SI-SDRi; an on-the-fly
    # side run with 0.1 (and batch 8) reached ~2.5 dB at the same point with leakage still falling.
    absent_weight: float | None = None  # None: the arch's default
    train_split: str | None = None
    val_store: str | None = None
    val_split: str | None = None
    val_examples: int = 256
    eval_every: int | None = None
    norm_examples: int = 128
    checkpoint_minutes: float = 10.0
    checkpoint_steps: int | None = None
    # Stop once the run (all sessions of it, validation included) has used this much CPU time: the
    # way to give two architectures the same compute. A cosine schedule then decays over whichever
    # comes first, the steps or the budget, so a budget-stopped run still ends annealed.
    cpu_minutes: float | None = None
    # Fine-tuning: start from this checkpoint's weights (its architecture, arguments, input
    # normalisation and STFT) with a fresh optimizer and schedule, e.g. on a new training set.
    init_from: str | None = None
    # The network's arithmetic (precision.py): auto = bf16 autocast where the hardware does it fast.
    # None: float32, as runs made before it existed (they resume as they were).
    precision: str | None = "auto"
    # Weight of the activity head's cross-entropy (per frame and class) against the waveform loss,
    # for networks with a head (arch arg activity=true).
    activity_weight: float = 1.0

    def resolved(self) -> "TrainConfig":
        if self.arch not in ARCHS:
            raise CocktailError(f"unknown --arch '{self.arch}' (choose {', '.join(ARCHS)})")
        d = ARCH_DEFAULTS.get(self.arch, ARCH_DEFAULTS[DEFAULT_ARCH])
        out = TrainConfig(**asdict(self))
        for key in ("optimizer", "lr", "schedule", "clip", "weight_decay", "absent_weight"):
            if getattr(out, key) is None:
                setattr(out, key, d.get(key, 1.0))
        if out.optimizer not in OPTIMIZERS:
            raise CocktailError(f"unknown --optimizer '{out.optimizer}' (choose {', '.join(OPTIMIZERS)})")
        if out.schedule not in SCHEDULES:
            raise CocktailError(f"unknown --schedule '{out.schedule}' (choose {', '.join(SCHEDULES)})")
        if out.batch_size < 1:
            raise CocktailError("--batch-size must be at least 1")
        if out.lr <= 0:
            raise CocktailError("--lr must be positive")
        try:
            resolve_precision(out.precision or "fp32")
        except ValueError as err:
            raise CocktailError(f"--precision: {err}") from None
        if out.cpu_minutes is not None and out.cpu_minutes <= 0:
            raise CocktailError("--cpu-minutes must be positive")
        return out

    @property
    def loss(self) -> str:
        return ARCH_DEFAULTS.get(self.arch, ARCH_DEFAULTS[DEFAULT_ARCH])["loss"]


# -- process group -----------------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the ``torchrun`` process group when launched by it; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


# -- data --------------------------------------------------------------------------------------


def _pick_split(manifest: dict, wanted: str | None, candidates: tuple[str, ...], store: str, role: str) -> str | None:
    splits = list(manifest["splits"])
    if wanted:
        if wanted not in splits:
            raise CocktailError(f"store has no split '{wanted}' for {role} (has {', '.join(splits)})", store)
        return wanted
    for name in candidates:
        if name in splits:
            return name
    return splits[0] if len(splits) == 1 else None


class Batches:
    """Global batches as a pure function of the step: order from ``(seed, epoch)``, augmentation
    from ``(seed, step)``. ``batch(step, rank, world)`` is this rank's slice."""

    def __init__(self, data: StoreSplit, batch_size: int, seed: int, segment: int, gain_db: float, remix: bool = False):
        if len(data) < batch_size:
            raise CocktailError(f"store split '{data.split}' has {len(data)} examples, fewer than --batch-size {batch_size}", data.root)
        self.data, self.batch_size, self.seed, self.segment = data, batch_size, seed, segment
        self.gain_db, self.remix = gain_db, remix
        self.steps_per_epoch = len(data) // batch_size
        self._perm_epoch, self._perm = -1, None

    def indices(self, step: int) -> np.ndarray:
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, 1, epoch]).permutation(len(self.data))
            self._perm_epoch = epoch
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]

    def batch(self, step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        """Stems ``(batch/world, C, segment)`` float32 for this rank."""
        idx = self.indices(step)
        n = len(idx)
        rng = np.random.default_rng([self.seed, 2, step])
        gains = 10 ** (rng.uniform(-self.gain_db, self.gain_db, size=(n, N_CLASSES)) / 20) if self.gain_db else np.ones((n, N_CLASSES))
        room = self.data.samples - self.segment
        starts = rng.integers(0, room + 1, size=n) if room > 0 else np.zeros(n, dtype=int)
        # Which example, and which crop of it, each stem of each item comes from: item k's own
        # example and crop for every class, unless remixing.
        donors = np.repeat(idx[:, None], N_CLASSES, axis=1)
        crops = np.repeat(starts[:, None], N_CLASSES, axis=1)
        if self.remix:
            # Class 0 stays with the epoch's order (so every example is still visited); each other
            # class, with its own crop, comes from an example drawn at random. Drawn after the
            # gains and starts, so a run without remixing sees the same numbers as before.
            donors[:, 1:] = rng.integers(0, len(self.data), size=(n, N_CLASSES - 1))
            crops = rng.integers(0, room + 1, size=(n, N_CLASSES)) if room > 0 else np.zeros((n, N_CLASSES), dtype=int)
        per = n // world
        out = np.empty((per, N_CLASSES, self.segment), dtype=np.float32)
        for j, k in enumerate(range(rank * per, (rank + 1) * per)):
            for c in range(N_CLASSES):
                stem = self.data.stem(int(donors[k, c]), c)
                out[j, c] = stem[crops[k, c] : crops[k, c] + self.segment] * np.float32(gains[k, c])
        return torch.from_numpy(out)


def _store_data(cfg: TrainConfig, init: LoadedModel | None) -> tuple:
    """Training from a ``cocktail prep`` store: its train split, its (or ``--val``'s) val split."""
    if not cfg.store:
        raise CocktailError("give a training store (from `cocktail prep`) or --sources folders")
    manifest = read_manifest(cfg.store)
    train_split = _pick_split(manifest, cfg.train_split, ("train",), cfg.store, "training")
    if train_split is None:
        raise CocktailError("store has several splits and none is named 'train'; pick one with --train-split", cfg.store)
    data = StoreSplit(cfg.store, train_split)
    stft = _train_stft(cfg, data.stft)
    if init is not None and stft != init.stft:
        raise CocktailError(
            f"--init-from model's STFT ({init.stft.sample_rate} Hz, n_fft {init.stft.n_fft}, hop {init.stft.hop}) "
            f"does not fit the store ({data.stft.sample_rate} Hz)", cfg.init_from,
        )
    if cfg.norm is None:
        cfg.norm = manifest.get("norm", "cmvn")
    segment = data.samples if cfg.segment is None else int(round(cfg.segment * stft.sample_rate))
    if not stft.n_fft <= segment <= data.samples:
        raise CocktailError(f"--segment must be between {stft.n_fft / stft.sample_rate:.3f} s and the store's {data.samples / stft.sample_rate:g} s")
    val_data = None
    val_root = cfg.val_store or cfg.store
    val_manifest = read_manifest(val_root) if cfg.val_store else manifest
    val_split = _pick_split(val_manifest, cfg.val_split, ("val", "dev", "valid", "validation"), val_root, "validation")
    if cfg.val_store is None and val_split == train_split:
        val_split = None
    if val_split is not None:
        val_data = StoreSplit(val_root, val_split)
        if val_data.stft.sample_rate != stft.sample_rate or val_data.samples < segment:
            raise CocktailError("validation store has another sample rate or shorter examples than the training store", val_root)
    batches = Batches(data, cfg.batch_size, cfg.seed, segment, cfg.gain_db, cfg.remix)
    return stft, segment, manifest, train_split, data, val_data, batches, len(data)


def _mixed_data(cfg: TrainConfig, init: LoadedModel | None) -> tuple:
    """Training on mixtures drawn at every step from the source folders' train clips; validation
    on ``val_examples`` mixtures drawn once (seeded) from their val clips, or on ``--val``'s store."""
    mix = MixConfig.from_dict(cfg.mix)
    if cfg.segment is not None:
        mix.seconds = float(cfg.segment)
    stft = _train_stft(cfg, init.stft if init is not None else STFTConfig())
    if init is not None and stft != init.stft:
        raise CocktailError("--n-fft/--hop differ from the --init-from model's", cfg.init_from)
    if cfg.norm is None:
        cfg.norm = "cmvn"
    bank = load_bank(cfg.sources, "train", stft.sample_rate)
    segment = int(round(mix.seconds * stft.sample_rate))
    if segment < stft.n_fft:
        raise CocktailError(f"--segment must be at least {stft.n_fft / stft.sample_rate:.3f} s")
    if cfg.val_store:
        val_data = StoreSplit(cfg.val_store, _pick_split(read_manifest(cfg.val_store), cfg.val_split, ("val", "dev"), cfg.val_store, "validation") or "val")
    else:
        # Validation mixtures leave out the study's vocoder processing (a training augmentation for
        # synth's test sets): they stay the mixtures a user's recordings make, and the same
        # mixtures when a run switches the vocoder on mid-way.
        val_mix = dataclasses.replace(mix, vocoder_prob=0.0)
        val_data = FixedMixtures(load_bank(cfg.sources, "val", stft.sample_rate), val_mix, cfg.val_examples, cfg.seed)
    norm_data = FixedMixtures(bank, mix, cfg.norm_examples, cfg.seed + 1)
    manifest = {"listing": bank.listing}
    return stft, segment, manifest, "train", norm_data, val_data, MixedBatches(bank, mix, cfg.batch_size, cfg.seed), len(bank)


# -- model -------------------------------------------------------------------------------------


def _train_stft(cfg: TrainConfig, store_stft: STFTConfig) -> STFTConfig:
    """The store suggests STFT settings; ``--n-fft/--hop`` or the architecture's own recipe win."""
    arch_default = ARCH_DEFAULTS.get(cfg.arch, {})
    n_fft = cfg.n_fft or arch_default.get("n_fft") or store_stft.n_fft
    hop = cfg.hop or (arch_default.get("hop") if n_fft == arch_default.get("n_fft") else None)
    if hop is None:
        hop = store_stft.hop if n_fft == store_stft.n_fft else n_fft // 4
    try:
        return dataclasses.replace(store_stft, n_fft=n_fft, hop=hop)
    except ValueError as err:
        raise CocktailError(f"invalid STFT settings: {err}") from None


def make_model(cfg: TrainConfig, stft: STFTConfig, segment: int) -> nn.Module:
    args = {"n_bins": stft.n_bins, "norm": cfg.norm}
    if cfg.arch == "paper":
        args["frames"] = stft.n_frames(segment)
    args.update(cfg.arch_args)
    if "floor_db" in inspect.signature(ARCHS[cfg.arch]).parameters:
        args["floor_db"] = cfg.floor_db  # also over an --init-from model's own (it may have none)
    try:
        return build(cfg.arch, **args)
    except (TypeError, ValueError) as err:
        raise CocktailError(f"cannot build --arch {cfg.arch} with {args}: {err}") from None


@torch.no_grad()
def fit_norm(model: nn.Module, stft: STFTConfig, data: StoreSplit, n: int, seed: int, segment: int) -> None:
    """Fit the input normalisation on ``n`` training mixtures (a fixed, seeded choice)."""
    idx = np.random.default_rng([seed, 3]).permutation(len(data))[: max(1, min(n, len(data)))]
    feats = []
    for i in idx:
        mix = torch.from_numpy(data[int(i)][:, :segment].sum(0))
        feats.append(model.features(stft.stft(mix).abs()))
    model.input_norm.fit(torch.stack(feats))


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, rho=cfg.rho, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Linear warmup, then cosine decay to 2% of the peak (``cosine``), or flat (``constant``)."""
    if cfg.schedule == "constant":
        return cfg.lr
    warmup = cfg.warmup if cfg.warmup is not None else min(500, max(1, total // 20))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def compute_loss(cfg: TrainConfig, net: nn.Module, stft: STFTConfig, stems: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """Per-example, per-class loss ``(batch, C)`` for a batch of stems ``(batch, C, samples)``.

    A network with an activity head adds ``activity_weight`` times its per-frame cross-entropy
    against the labels the stems carry (:func:`~cocktail_cli.losses.activity_labels`)."""
    mix = stems.sum(1)
    if cfg.loss == "magnitude":
        spec = stft.stft(mix)
        mag = spec.abs()
        masks = net(mag)
        return magnitude_mse(masks, mag, stft.stft(stems).abs())
    estimate, logits = Separator(net, stft, precision=precision)(mix, activity=True)
    loss = waveform_loss(estimate, stems, mix, absent_weight=cfg.absent_weight)
    if logits is not None:
        labels = activity_labels(stems, stft.n_fft, stft.hop, logits.shape[-1])
        loss = loss + cfg.activity_weight * activity_loss(logits, labels)
    return loss


# -- validation --------------------------------------------------------------------------------


@torch.no_grad()
def validate(cfg: TrainConfig, model: nn.Module, stft: STFTConfig, data: StoreSplit, n: int, segment: int, device: str, batch: int = 8) -> dict:
    """Per class: validation loss, SI-SDRi (dB, mean over examples where the stem is present) and
    leakage (dB of an absent stem's estimate relative to the mixture, median)."""
    was_training = model.training
    model.eval()
    sep = Separator(model, stft, precision=resolve_precision(cfg.precision or "fp32", device))
    losses, improvements, leaks = [], [[] for _ in CLASSES], [[] for _ in CLASSES]
    hits = np.zeros((3, N_CLASSES))  # activity head: true positives, false positives, false negatives (frames)
    count = min(n, len(data))
    for start in range(0, count, batch):
        stems = torch.from_numpy(np.stack([data[i][:, :segment] for i in range(start, min(count, start + batch))])).to(device)
        mix = stems.sum(1)
        est_t, logits = sep(mix, activity=True)
        if cfg.loss == "magnitude":
            losses.append(compute_loss(cfg, model, stft, stems).cpu())
        else:  # the same separation scores the loss too (one forward pass, not two)
            losses.append(waveform_loss(est_t, stems, mix, absent_weight=cfg.absent_weight).cpu())
        if logits is not None:
            truth = activity_labels(stems, stft.n_fft, stft.hop, logits.shape[-1]).bool()
            said = logits > 0
            hits += torch.stack([(said & truth).sum((0, 2)), (said & ~truth).sum((0, 2)), (~said & truth).sum((0, 2))]).cpu().numpy()
        est = est_t.cpu().numpy().astype(np.float64)
        ref = stems.cpu().numpy().astype(np.float64)
        mixn = mix.cpu().numpy().astype(np.float64)
        active = active_stems(stems, mix).cpu().numpy()
        gain = si_sdr(est, ref) - si_sdr(np.broadcast_to(mixn[:, None], ref.shape), ref)
        leak = 10 * np.log10(((est**2).sum(-1) + 1e-12) / ((mixn**2).sum(-1)[:, None] + 1e-12))
        for b in range(len(ref)):
            for c in range(N_CLASSES):
                (improvements if active[b, c] else leaks)[c].append(float(gain[b, c] if active[b, c] else leak[b, c]))
    model.train(was_training)
    loss = torch.cat(losses).mean(0) if losses else torch.zeros(N_CLASSES)
    per_class = {}
    for c, name in enumerate(CLASSES):
        per_class[name] = {
            "loss": float(loss[c]),
            "si_sdri": float(np.mean(improvements[c])) if improvements[c] else None,
            "leakage_db": float(np.median(leaks[c])) if leaks[c] else None,
            "active": len(improvements[c]),
        }
        if hits.any():  # frame-level F1 of the activity head at probability 0.5
            tp, fp, fn = hits[:, c]
            per_class[name]["frame_f1"] = float(2 * tp / max(2 * tp + fp + fn, 1))
    flat = [x for c in improvements for x in c]
    return {"classes": per_class, "loss": float(loss.sum()) if cfg.loss == "magnitude" else float(loss.mean()),
            "si_sdri": float(np.mean(flat)) if flat else None, "examples": count}


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Hooks:
    """Callbacks for the command layer (progress, tables); all optional."""

    on_start: Callable[[dict], None] | None = None
    on_step: Callable[[int, int, float], None] | None = None
    on_eval: Callable[[dict], None] | None = None
    on_checkpoint: Callable[[str, int], None] | None = None


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def _check_resume(ckpt: dict, path: str) -> dict:
    resume = ckpt.get("resume")
    if not isinstance(resume, dict) or "step" not in resume or "config" not in resume or "optimizer" not in resume:
        raise CheckpointError("cannot resume: checkpoint has no resume state (exported model?)", path)
    stored = resume["config"]
    if ckpt["arch"] != stored.get("arch"):
        raise CheckpointError("damaged checkpoint (architecture does not match its resume state)", path)
    return resume


def _start_from(cfg: TrainConfig) -> tuple[LoadedModel, dict]:
    """Load ``cfg.init_from`` and make ``cfg`` describe its network; returns it and its lineage
    (recorded in the new run's checkpoint, so a card can add up the compute of both runs)."""
    init = load_checkpoint(cfg.init_from)
    # --arch-arg on top of the model's own arguments: e.g. block_norm=frame or activity=true, a
    # change of layers whose weights still fit (new modules start from their initialisation)
    cfg.arch, cfg.arch_args = init.arch, {**init.model.config, **(cfg.arch_args or {})}
    cfg.norm = init.model.config.get("norm", cfg.norm)
    cfg.n_fft, cfg.hop = init.stft.n_fft, init.stft.hop
    done = init.training or {}
    parent = {
        "path": os.path.abspath(cfg.init_from), "steps": done.get("steps"), "cpu_seconds": done.get("cpu_seconds"),
        "store": done.get("store"), "init_from": done.get("init_from"),
    }
    return init, parent


def train(cfg: TrainConfig, resume: bool = False, hooks: Hooks | None = None, stop_after: int | None = None) -> dict:
    """Train (or continue) and write ``cfg.output``; returns the training summary.

    ``stop_after``: write a checkpoint after this step and stop, as a kill right after a
    checkpoint would (tests use it to check that ``resume`` continues exactly).
    """
    hooks = hooks or Hooks()
    run = _Run(cfg, resume)
    if run.dist.main and hooks.on_start:
        hooks.on_start(run.info())
    if run.out_of_budget():
        run.total = run.step  # resumed with its budget already spent: nothing left to do
    with _Prefetch(run) as batches:
        try:
            while run.step < run.total:
                loss = run.train_step(batches.take(run.step))
                if run.dist.main and hooks.on_step:
                    hooks.on_step(run.step, run.total, loss)
                if run.out_of_budget():
                    run.total = run.step  # the budget is spent: finish here as if this were the last step
                if run.step % run.eval_every == 0 or run.step == run.total:
                    run.evaluate(hooks)
                if run.checkpoint_due() and run.step < run.total:
                    run.save(hooks)
                if stop_after is not None and stop_after <= run.step < run.total:
                    run.save(hooks)
                    return run.summary()
        except KeyboardInterrupt:
            if run.step > 0:
                run.save(hooks)
            raise
    run.save(hooks)
    result = run.summary()
    _barrier(run.dist)
    return result


class _Prefetch:
    """Draws the next batch in a thread while the current step runs. Batches are a pure function
    of the step, so this changes nothing but time: mixtures drawn on the fly cost about 0.2 s a
    batch in numpy/soxr, which release the GIL."""

    def __init__(self, run: "_Run"):
        self.run = run

    def __enter__(self) -> "_Prefetch":
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.upcoming = self._submit(self.run.step)
        return self

    def _submit(self, step: int):
        return self.pool.submit(self.run.batches.batch, step, self.run.dist.rank, self.run.dist.world)

    def take(self, step: int) -> torch.Tensor:
        stems = self.upcoming.result()
        self.upcoming = self._submit(step + 1)
        return stems

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Run:
    """One training run: set-up (config, data, model, optimizer, resume state) in ``__init__``,
    then the loop's named steps: :meth:`train_step`, :meth:`evaluate`, :meth:`save`."""

    def __init__(self, cfg: TrainConfig, resume: bool):
        self.state = None
        ckpt: dict = {}
        if resume and os.path.exists(cfg.output):
            ckpt = read_raw(cfg.output)
            self.state = _check_resume(ckpt, cfg.output)
            cfg = _resumed_config(cfg, self.state)
        elif os.path.exists(cfg.output) and not resume and os.path.isdir(cfg.output):
            raise CocktailError("output is a folder; give a file name such as model.pt", cfg.output)
        init = None
        self.parent = ckpt.get("training", {}).get("init_from") if self.state is not None else None
        if self.state is None and cfg.init_from:
            init, self.parent = _start_from(cfg)
        self.cfg = cfg = cfg.resolved()

        self.device = cfg.device or best_device()
        self.dist = init_distributed(self.device)
        if self.device == "cuda" and self.dist.world > 1:
            self.device = f"cuda:{self.dist.local_rank}"
        self.threads = cfg.threads or max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world)))
        torch.set_num_threads(self.threads)
        self.precision = resolve_precision(cfg.precision or "fp32", self.device)

        if cfg.batch_size % self.dist.world:
            raise CocktailError(f"--batch-size {cfg.batch_size} must be a multiple of the number of processes ({self.dist.world})")
        data_of = _mixed_data if cfg.sources else _store_data
        (self.stft, self.segment, self.manifest, self.train_split, data, self.val_data,
         self.batches, self.n_train) = data_of(cfg, init)
        if self.state is not None and self.state.get("store_listing") not in (None, self.manifest.get("listing")):
            what = "set of source clips" if cfg.sources else "store"
            raise CheckpointError(f"cannot resume: checkpoint was trained on a different {what}", cfg.output)
        total = cfg.steps if cfg.steps is not None else int(round((cfg.epochs or 1) * self.batches.steps_per_epoch))
        self.total = max(1, total)
        self.eval_every = cfg.eval_every or min(self.batches.steps_per_epoch, 500)

        torch.manual_seed(cfg.seed)
        self.model = model = make_model(cfg, self.stft, self.segment)
        if self.state is not None:
            model.load_state_dict(ckpt["state_dict"], strict=True)
        elif init is not None:
            _load_init_weights(model, init, cfg.init_from)  # normalisation statistics included
            if init.model.config.get("floor_db") != getattr(model, "floor_db", None):
                fit_norm(model, self.stft, data, cfg.norm_examples, cfg.seed, self.segment)  # new features, new statistics
        else:
            fit_norm(model, self.stft, data, cfg.norm_examples, cfg.seed, self.segment)
        model.to(self.device)
        self.net: nn.Module = model
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(model, device_ids=[self.dist.local_rank] if self.device.startswith("cuda") else None)
        self.optimizer = make_optimizer(cfg, model.parameters())
        self.step = 0
        self.history: list = []
        self.spent = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "examples": 0}
        if self.state is not None:
            try:
                self.optimizer.load_state_dict(self.state["optimizer"])
            except (ValueError, KeyError) as err:
                raise CheckpointError(f"cannot resume: optimizer state does not match ({err})", cfg.output) from None
            self.step = int(self.state["step"])
            self.history = list(self.state.get("history", []))
            self.spent.update(self.state.get("spent", {}))
            torch.set_rng_state(self.state["rng"]["torch"])
        self.last_val: dict | None = self.history[-1]["val"] if self.history else None
        self.window: list[torch.Tensor] = []  # per-class training losses since the last evaluation
        self.budget_seconds = cfg.cpu_minutes * 60 if cfg.cpu_minutes is not None else None
        self.t_wall, self.t_cpu = time.perf_counter(), time.process_time()
        self.last_ckpt = time.monotonic()
        self.net.train()

    def info(self) -> dict:
        cfg, val = self.cfg, self.val_data
        return {
            "arch": cfg.arch, "arch_args": dict(self.model.config), "parameters": n_parameters(self.model), "device": self.device,
            "threads": self.threads, "world": self.dist.world, "steps": self.total, "start_step": self.step,
            "steps_per_epoch": self.batches.steps_per_epoch, "train_examples": self.n_train,
            "val_examples": min(cfg.val_examples, len(val)) if val is not None else 0,
            "segment_seconds": self.segment / self.stft.sample_rate, "optimizer": cfg.optimizer, "lr": cfg.lr, "schedule": cfg.schedule,
            "precision": self.precision,
            "mix": (cfg.mix or {}) if cfg.sources else None,  # the mixing settings given (the rest: MixConfig's defaults)
        }

    # -- the step ----------------------------------------------------------------------------------
    def train_step(self, stems: torch.Tensor) -> float:
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(cfg, self.schedule_step(), self.total)
        per = compute_loss(cfg, self.net, self.stft, stems.to(self.device), self.precision)
        loss = per.sum(1).mean() if cfg.loss == "magnitude" else per.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
        self.optimizer.step()
        if not torch.isfinite(loss):
            raise CocktailError(f"training diverged at step {self.step} (loss {float(loss)}); lower --lr or --clip")
        self.window.append(per.detach().mean(0).cpu())
        self.step += 1
        self.spent["examples"] += cfg.batch_size
        return float(loss.detach())

    # -- validation --------------------------------------------------------------------------------
    def evaluate(self, hooks: Hooks) -> None:
        train_loss = torch.stack(self.window).mean(0) if self.window else None
        self.window.clear()
        if self.dist.main:
            val = None
            if self.val_data is not None:
                val = validate(self.cfg, self.model, self.stft, self.val_data, self.cfg.val_examples, self.segment, self.device)
            s = self.summary()
            record = {
                "step": self.step, "epoch": self.step / self.batches.steps_per_epoch, "wall_seconds": s["wall_seconds"],
                "cpu_seconds": s["cpu_seconds"], "lr": self.optimizer.param_groups[0]["lr"],
                "train_loss": {c: float(train_loss[i]) for i, c in enumerate(CLASSES)} if train_loss is not None else None,
                "val": val,
            }
            self.history.append(dict(record))
            self.last_val = val
            if hooks.on_eval:
                hooks.on_eval(record)
        _barrier(self.dist)

    # -- checkpointing -----------------------------------------------------------------------------
    def checkpoint_due(self) -> bool:
        cfg = self.cfg
        return bool(cfg.checkpoint_steps and self.step % cfg.checkpoint_steps == 0) or (
            time.monotonic() - self.last_ckpt >= cfg.checkpoint_minutes * 60)

    def save(self, hooks: Hooks) -> None:
        if self.dist.main:
            s = self.summary()
            per_epoch = self.batches.steps_per_epoch
            resume_state = {
                "step": self.step, "epoch": self.step // per_epoch, "position": self.step % per_epoch,
                "optimizer": self.optimizer.state_dict(), "rng": _rng_state(), "config": asdict(self.cfg),
                "store_listing": self.manifest.get("listing"), "history": self.history,
                "spent": {"wall_seconds": s["wall_seconds"], "cpu_seconds": s["cpu_seconds"], "examples": s["examples"]},
            }
            save_checkpoint(self.cfg.output, self.model, self.cfg.arch, self.stft, training=s, resume=resume_state)
            if hooks.on_checkpoint:
                hooks.on_checkpoint(self.cfg.output, self.step)
        self.last_ckpt = time.monotonic()

    def summary(self) -> dict:
        cfg = self.cfg
        return {
            "arch": cfg.arch, "parameters": n_parameters(self.model), "steps": self.step, "total_steps": self.total,
            "epochs": self.step / self.batches.steps_per_epoch, "examples": self.spent["examples"] + 0,
            "wall_seconds": self.spent["wall_seconds"] + time.perf_counter() - self.t_wall, "cpu_seconds": self.cpu_used(),
            "device": self.device, "world": self.dist.world, "rank": self.dist.rank, "threads": self.threads,
            "store": os.path.abspath(cfg.store) if cfg.store else None,
            "sources": [os.path.abspath(s) for s in cfg.sources] if cfg.sources else None,
            "store_listing": self.manifest.get("listing"), "train_split": self.train_split,
            "train_examples": self.n_train, "val": self.last_val, "history": self.history, "config": asdict(cfg),
            "init_from": self.parent,
            "package_version": __version__,
        }

    # -- the CPU budget ----------------------------------------------------------------------------
    def cpu_used(self) -> float:
        return self.spent["cpu_seconds"] + time.process_time() - self.t_cpu

    def out_of_budget(self) -> bool:
        if self.budget_seconds is None:  # the same on every rank: no need to agree
            return False
        over = self.cpu_used() >= self.budget_seconds
        if self.dist.world > 1:  # every rank must stop at the same step: rank 0's clock decides
            import torch.distributed as dist

            flag = torch.tensor([float(over)])
            dist.broadcast(flag, 0)
            over = bool(flag.item())
        return over

    def schedule_step(self) -> int:
        """The step the learning-rate schedule is at: with a budget, the share of it spent."""
        if self.budget_seconds is None:
            return self.step
        return max(self.step, int(self.total * min(1.0, self.cpu_used() / self.budget_seconds)))


def _load_init_weights(model: nn.Module, init: LoadedModel, path: str) -> None:
    """The ``--init-from`` model's weights into ``model``: every one of them must fit, and only
    modules the init model lacks (added by ``--arch-arg``, e.g. an activity head) may be missing."""
    result = model.load_state_dict(init.model.state_dict(), strict=False)
    fresh = {k.split(".")[0] for k in result.missing_keys}
    if result.unexpected_keys or any(getattr(init.model, name, None) is not None for name in fresh):
        raise CheckpointError(
            f"--init-from weights do not fit the network (missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})", path)


def _resumed_config(cfg: TrainConfig, state: dict) -> TrainConfig:
    """The stored run's settings, with what may change on ``--resume`` taken from ``cfg``."""
    known = {f.name for f in fields(TrainConfig)}
    stored = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    if "floor_db" not in state["config"]:
        stored.floor_db = None  # a run from before the feature floor: resume it as it was
    if "precision" not in state["config"]:
        stored.precision = None  # a run from before --precision: float32, as it was
    for key in RESUMABLE_OVERRIDES:
        if getattr(cfg, key) is not None and key not in ("steps", "epochs"):
            setattr(stored, key, getattr(cfg, key))
    if cfg.steps is not None or cfg.epochs is not None:
        stored.steps, stored.epochs = cfg.steps, cfg.epochs
    stored.store, stored.output = cfg.store, cfg.output
    stored.sources = cfg.sources or stored.sources  # the same folders, maybe elsewhere now
    if cfg.mix is not None:
        stored.mix = cfg.mix  # new mixing settings from this step on (recorded in the checkpoint)
    return stored


def _barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()
