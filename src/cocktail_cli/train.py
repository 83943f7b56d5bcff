"""``cocktail train``: a store from ``cocktail prep`` (or source folders) -> a self-describing model checkpoint.

Everything random in a run is a function of ``(seed, step)`` (:mod:`cocktail_cli.train_data`), so
``--resume`` needs only the step, the weights and the optimizer state to continue exactly as an
uninterrupted run would, and a run under ``torchrun`` sees the same global batches as a single
process (each rank takes its slice of every global batch).

Losses: the paper's arch trains on magnitudes (summed per-class MSE of f_i*|X| against |S_i|);
the others on the waveform that :class:`~cocktail_cli.separator.Separator` reconstructs (see
:mod:`cocktail_cli.losses`), plus the activity head's cross-entropy where the network has one.
Validation always separates through ``Separator.forward``.

The loop (:func:`train`) reads on one screen: :func:`setup`, then :func:`train_step`,
:func:`evaluate` and :func:`save` until the steps or the CPU budget (:class:`Clock`) run out.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from . import __version__
from .checkpoint import PACKED_RESUME, LoadedModel, load_checkpoint, read_raw, save_checkpoint
from .classes import CLASSES, N_CLASSES
from .errors import CheckpointError, CocktailError
from .losses import active_stems, activity_labels, activity_loss, magnitude_mse, waveform_loss
from .metrics import si_sdr
from .nets import ARCHS, build, n_parameters
from .nets.grow import widen_tcn, widens
from .precision import resolve as resolve_precision
from .prep import StoreSplit
from .separator import Separator
from .stft import STFTConfig
from .train_config import ARCH_DEFAULTS, OPTIMIZERS, RESUMABLE_OVERRIDES, SCHEDULES, TrainConfig, resumed_config
from .train_data import Batches, TrainData, load_data

__all__ = [
    "ARCH_DEFAULTS", "OPTIMIZERS", "RESUMABLE_OVERRIDES", "SCHEDULES", "Batches", "Hooks", "TrainConfig",
    "compute_loss", "setup", "train", "validate",
]
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


# -- model, optimizer, loss --------------------------------------------------------------------


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
    if cfg.head_only:  # the separation is frozen: the head's loss alone, no waveforms to make
        _, logits = Separator(net, stft, precision=precision).masks_and_activity(stft.stft(mix).abs())
        return _activity_term(cfg, stft, stems, logits)
    if cfg.loss == "magnitude":
        spec = stft.stft(mix)
        mag = spec.abs()
        masks = net(mag)
        return magnitude_mse(masks, mag, stft.stft(stems).abs())
    estimate, logits = Separator(net, stft, precision=precision)(mix, activity=True)
    loss = waveform_loss(estimate, stems, mix, absent_weight=cfg.absent_weight)
    if logits is not None:
        loss = loss + _activity_term(cfg, stft, stems, logits)
    return loss


def _activity_term(cfg: TrainConfig, stft: STFTConfig, stems: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``activity_weight`` times the head's per-frame cross-entropy against the stems' labels, ``(batch, C)``."""
    labels = activity_labels(stems, stft.n_fft, stft.hop, logits.shape[-1], stft.sample_rate, cfg.activity_range_db, cfg.activity_gap_s)
    return cfg.activity_weight * activity_loss(logits, labels)


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
            truth = activity_labels(stems, stft.n_fft, stft.hop, logits.shape[-1], stft.sample_rate, cfg.activity_range_db, cfg.activity_gap_s).bool()
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


class Clock:
    """Wall and CPU time a run has used (all its sessions, all its processes), and its CPU budget.

    With a budget, the learning-rate schedule follows the share of it spent, so a budget-stopped
    run still ends annealed. In a distributed run the CPU time is the sum over the ranks, agreed at
    every step's budget check (:meth:`out_of_budget`, called by every rank), so every rank stops
    at the same step and steps with the same learning rate. Why: rank by rank, a run on two
    processes counted half its CPU against ``--cpu-minutes``, and each rank scheduled its learning
    rate from its own clock, so the replicas' optimizers could step with different rates."""

    def __init__(self, spent: dict, cpu_minutes: float | None):
        self.spent = {"wall_seconds": 0.0, "cpu_seconds": 0.0, "examples": 0, **spent}
        self.budget_seconds = cpu_minutes * 60 if cpu_minutes is not None else None
        self.t_wall, self.t_cpu = time.perf_counter(), time.process_time()
        # distributed: every rank's CPU seconds this session, summed at the last budget check,
        # and this rank's own at that moment (what it has used since is added by cpu_used)
        self.agreed: float | None = None
        self.local_at_agreement = 0.0

    def wall_used(self) -> float:
        return self.spent["wall_seconds"] + time.perf_counter() - self.t_wall

    def _local(self) -> float:
        return time.process_time() - self.t_cpu

    def _agreed_used(self) -> float:
        """The same on every rank: what the budget and the schedule go by."""
        return self.spent["cpu_seconds"] + (self._local() if self.agreed is None else self.agreed)

    def cpu_used(self) -> float:
        """This rank's view: the agreed total and what the rank has used since (rank 0's last validation)."""
        return self._agreed_used() + (0.0 if self.agreed is None else self._local() - self.local_at_agreement)

    def out_of_budget(self, dist: Dist) -> bool:
        if dist.world > 1:
            import torch.distributed as tdist

            self.local_at_agreement = self._local()
            total = torch.tensor([self.local_at_agreement], dtype=torch.float64)
            tdist.all_reduce(total)
            self.agreed = float(total.item())
        if self.budget_seconds is None:
            return False
        return self._agreed_used() >= self.budget_seconds

    def schedule_step(self, step: int, total: int) -> int:
        """The step the learning-rate schedule is at: with a budget, the share of it spent."""
        if self.budget_seconds is None:
            return step
        return max(step, int(total * min(1.0, self._agreed_used() / self.budget_seconds)))


@dataclass
class Run:
    """What a run holds between steps (built by :func:`setup`)."""

    cfg: TrainConfig
    dist: Dist
    device: str
    threads: int
    precision: str  # "bf16" or "fp32": the network's arithmetic on this device
    data: TrainData
    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    parent: dict | None  # the --init-from model's lineage
    total: int
    eval_every: int
    clock: Clock
    step: int = 0
    history: list = field(default_factory=list)
    last_val: dict | None = None
    window: list = field(default_factory=list)  # per-class training losses since the last evaluation
    last_ckpt: float = field(default_factory=time.monotonic)


def train(cfg: TrainConfig, resume: bool = False, hooks: Hooks | None = None, stop_after: int | None = None) -> dict:
    """Train (or continue) and write ``cfg.output``; returns the training summary.

    ``stop_after``: write a checkpoint after this step and stop, as a kill right after a
    checkpoint would (tests use it to check that ``resume`` continues exactly).
    """
    hooks = hooks or Hooks()
    run = setup(cfg, resume)
    if run.dist.main and hooks.on_start:
        hooks.on_start(run_info(run))
    if run.clock.out_of_budget(run.dist):
        run.total = run.step  # resumed with its budget already spent: nothing left to do
    with _Prefetch(run) as batches:
        try:
            while run.step < run.total:
                loss = train_step(run, batches.take(run.step))
                if run.dist.main and hooks.on_step:
                    hooks.on_step(run.step, run.total, loss)
                if run.clock.out_of_budget(run.dist):
                    run.total = run.step  # the budget is spent: finish here as if this were the last step
                if run.step % run.eval_every == 0 or run.step == run.total:
                    evaluate(run, hooks)
                if checkpoint_due(run) and run.step < run.total:
                    save(run, hooks)
                if stop_after is not None and stop_after <= run.step < run.total:
                    save(run, hooks)
                    return summary(run)
        except KeyboardInterrupt:
            if run.step > 0:
                save(run, hooks)
            raise
    save(run, hooks)
    result = summary(run)
    _barrier(run.dist)
    return result


# -- set-up ------------------------------------------------------------------------------------


def setup(cfg: TrainConfig, resume: bool) -> Run:
    """Settings, process group, data, model, optimizer and, with ``resume``, the run's own state."""
    cfg, ckpt, state, init, parent = _starting_point(cfg, resume)
    cfg = cfg.resolved()
    device = cfg.device or best_device()
    dist = init_distributed(device)
    if device == "cuda" and dist.world > 1:
        device = f"cuda:{dist.local_rank}"
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", dist.world)))
    torch.set_num_threads(threads)
    if cfg.batch_size % dist.world:
        raise CocktailError(f"--batch-size {cfg.batch_size} must be a multiple of the number of processes ({dist.world})")
    data = load_data(cfg, init)
    if state is not None and state.get("store_listing") not in (None, data.listing):
        what = "set of source clips" if cfg.sources else "store"
        raise CheckpointError(f"cannot resume: checkpoint was trained on a different {what}", cfg.output)
    total = cfg.steps if cfg.steps is not None else int(round((cfg.epochs or 1) * data.batches.steps_per_epoch))
    model = _initial_model(cfg, data, ckpt.get("state_dict") if state is not None else None, init).to(device)
    params = trainable_parameters(cfg, model)  # before DDP, which registers what needs gradients
    net = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dist.local_rank] if device.startswith("cuda") else None)
    run = Run(
        cfg=cfg, dist=dist, device=device, threads=threads, precision=resolve_precision(cfg.precision or "fp32", device),
        data=data, model=model, net=net, optimizer=make_optimizer(cfg, params), parent=parent,
        total=max(1, total), eval_every=cfg.eval_every or min(data.batches.steps_per_epoch, 500),
        clock=Clock(state.get("spent", {}) if state is not None else {}, cfg.cpu_minutes),
    )
    if state is not None:
        _restore(run, state)
    run.net.train()
    return run


def trainable_parameters(cfg: TrainConfig, model: nn.Module) -> list[nn.Parameter]:
    """The weights the optimizer steps: all, or with ``head_only`` the activity head's (the rest
    frozen)."""
    if not cfg.head_only:
        return list(model.parameters())
    if not getattr(model, "has_activity", False):
        raise CocktailError("--head-only needs a network with an activity head (--arch-arg activity=true)")
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("activity_head."))
    return [p for p in model.parameters() if p.requires_grad]


def _starting_point(cfg: TrainConfig, resume: bool) -> tuple:
    """``(cfg, checkpoint, resume state, init model, lineage)``: a run's own checkpoint on
    ``resume`` (its settings, with what may change taken from ``cfg``), else ``--init-from``'s
    model, else nothing."""
    ckpt, state, init, parent = {}, None, None, None
    if resume and os.path.exists(cfg.output):
        ckpt = read_raw(cfg.output)
        state = _check_resume(ckpt, cfg.output)
        cfg = resumed_config(cfg, state)
        parent = ckpt.get("training", {}).get("init_from")
    elif os.path.exists(cfg.output) and os.path.isdir(cfg.output):
        raise CocktailError("output is a folder; give a file name such as model.pt", cfg.output)
    elif cfg.init_from:
        init, parent = _start_from(cfg)
    return cfg, ckpt, state, init, parent


def _initial_model(cfg: TrainConfig, data: TrainData, state_dict: dict | None, init: LoadedModel | None) -> nn.Module:
    """The network with its starting weights: the run's own (resume), the init model's, or fresh
    ones with the input normalisation fitted on training mixtures."""
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, data.stft, data.segment)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    elif init is not None:
        _load_init_weights(model, init, cfg.init_from)  # normalisation statistics included
        if init.model.config.get("floor_db") != getattr(model, "floor_db", None):
            fit_norm(model, data.stft, data.norm_data, cfg.norm_examples, cfg.seed, data.segment)  # new features, new statistics
    else:
        fit_norm(model, data.stft, data.norm_data, cfg.norm_examples, cfg.seed, data.segment)
    return model


def _restore(run: Run, state: dict) -> None:
    """Optimizer, step, history and RNG of a resumed run."""
    try:
        run.optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"cannot resume: optimizer state does not match ({err})", run.cfg.output) from None
    run.step = int(state["step"])
    run.history = list(state.get("history", []))
    run.last_val = run.history[-1]["val"] if run.history else None
    torch.set_rng_state(state["rng"]["torch"])


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def _check_resume(ckpt: dict, path: str) -> dict:
    resume = ckpt.get("resume")
    if not isinstance(resume, dict) or "step" not in resume or "config" not in resume or "optimizer" not in resume:
        raise CheckpointError("cannot resume: checkpoint has no resume state (exported model?)", path)
    if PACKED_RESUME in resume:  # scripts/compact_resume.py --pack: a handover, not a run's own file
        raise CheckpointError("cannot resume a packed handover: unpack it into the run folder first "
                              "(python scripts/compact_resume.py --unpack SRC DST)", path)
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


def _load_init_weights(model: nn.Module, init: LoadedModel, path: str) -> None:
    """The ``--init-from`` model's weights into ``model``: every one of them must fit, and only
    modules the init model lacks (added by ``--arch-arg``, e.g. an activity head) may be missing.
    A tcn given whole multiples of its ``channels``/``hidden`` is widened first, as the same function."""
    state = init.model.state_dict()
    if init.arch == "tcn" and widens(init.model.config, model.config):  # --arch-arg channels=/hidden= a whole factor up
        state = widen_tcn(state, init.model.config, model.config)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes that differ (e.g. --arch-arg hidden=...)
        first = str(err).split("\n\t")[1] if "\n\t" in str(err) else str(err)
        raise CheckpointError(f"--init-from weights do not fit the network ({first.strip().rstrip('.')})", path) from None
    # the module each missing weight belongs to ("blocks.12.expand" for "blocks.12.expand.weight"):
    # new only if the init model has no such module (a head, or blocks appended after its own)
    fresh = {k.rpartition(".")[0] for k in result.missing_keys}

    def has_module(name: str) -> bool:
        try:
            init.model.get_submodule(name)
            return True
        except AttributeError:
            return False

    if result.unexpected_keys or any(has_module(name) for name in fresh):
        raise CheckpointError(
            f"--init-from weights do not fit the network (missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})", path)


def run_info(run: Run) -> dict:
    """What the run is, for the start event of the log."""
    cfg, val = run.cfg, run.data.val_data
    return {
        "arch": cfg.arch, "arch_args": dict(run.model.config), "parameters": n_parameters(run.model), "device": run.device,
        "threads": run.threads, "world": run.dist.world, "steps": run.total, "start_step": run.step,
        "steps_per_epoch": run.data.batches.steps_per_epoch, "train_examples": run.data.n_train,
        "val_examples": min(cfg.val_examples, len(val)) if val is not None else 0,
        "segment_seconds": run.data.segment / run.data.stft.sample_rate, "optimizer": cfg.optimizer, "lr": cfg.lr,
        "schedule": cfg.schedule, "precision": run.precision,
        "mix": (cfg.mix or {}) if cfg.sources else None,  # the mixing settings given (the rest: MixConfig's defaults)
    }


# -- the step, validation, checkpoints ------------------------------------------------------------


def train_step(run: Run, stems: torch.Tensor) -> float:
    cfg = run.cfg
    for group in run.optimizer.param_groups:
        group["lr"] = lr_at(cfg, run.clock.schedule_step(run.step, run.total), run.total)
    per = compute_loss(cfg, run.net, run.data.stft, stems.to(run.device), run.precision)
    loss = per.sum(1).mean() if cfg.loss == "magnitude" else per.mean()
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip)
    run.optimizer.step()
    if not torch.isfinite(loss):
        raise CocktailError(f"training diverged at step {run.step} (loss {float(loss)}); lower --lr or --clip")
    run.window.append(per.detach().mean(0).cpu())
    run.step += 1
    run.clock.spent["examples"] += cfg.batch_size
    return float(loss.detach())


def evaluate(run: Run, hooks: Hooks) -> None:
    """Validate (rank 0), append the record to the history and tell the hooks."""
    train_loss = torch.stack(run.window).mean(0) if run.window else None
    run.window.clear()
    if run.dist.main:
        val = None
        if run.data.val_data is not None:
            val = validate(run.cfg, run.model, run.data.stft, run.data.val_data, run.cfg.val_examples, run.data.segment, run.device)
        record = {
            "step": run.step, "epoch": run.step / run.data.batches.steps_per_epoch, "wall_seconds": run.clock.wall_used(),
            "cpu_seconds": run.clock.cpu_used(), "lr": run.optimizer.param_groups[0]["lr"],
            "train_loss": {c: float(train_loss[i]) for i, c in enumerate(CLASSES)} if train_loss is not None else None,
            "val": val,
        }
        run.history.append(dict(record))
        run.last_val = val
        if hooks.on_eval:
            hooks.on_eval(record)
    _barrier(run.dist)


def checkpoint_due(run: Run) -> bool:
    cfg = run.cfg
    return bool(cfg.checkpoint_steps and run.step % cfg.checkpoint_steps == 0) or (
        time.monotonic() - run.last_ckpt >= cfg.checkpoint_minutes * 60)


def save(run: Run, hooks: Hooks) -> None:
    """Write the checkpoint (rank 0), with everything ``--resume`` needs."""
    if run.dist.main:
        s = summary(run)
        per_epoch = run.data.batches.steps_per_epoch
        resume_state = {
            "step": run.step, "epoch": run.step // per_epoch, "position": run.step % per_epoch,
            "optimizer": run.optimizer.state_dict(), "rng": _rng_state(), "config": asdict(run.cfg),
            "store_listing": run.data.listing, "history": run.history,
            "spent": {"wall_seconds": s["wall_seconds"], "cpu_seconds": s["cpu_seconds"], "examples": s["examples"]},
        }
        save_checkpoint(run.cfg.output, run.model, run.cfg.arch, run.data.stft, training=s, resume=resume_state)
        if hooks.on_checkpoint:
            hooks.on_checkpoint(run.cfg.output, run.step)
    run.last_ckpt = time.monotonic()


def summary(run: Run) -> dict:
    cfg = run.cfg
    return {
        "arch": cfg.arch, "parameters": n_parameters(run.model), "steps": run.step, "total_steps": run.total,
        "epochs": run.step / run.data.batches.steps_per_epoch, "examples": run.clock.spent["examples"] + 0,
        "wall_seconds": run.clock.wall_used(), "cpu_seconds": run.clock.cpu_used(),
        "device": run.device, "world": run.dist.world, "rank": run.dist.rank, "threads": run.threads,
        "store": os.path.abspath(cfg.store) if cfg.store else None,
        "sources": [os.path.abspath(s) for s in cfg.sources] if cfg.sources else None,
        "store_listing": run.data.listing, "train_split": run.data.train_split,
        "train_examples": run.data.n_train, "val": run.last_val, "history": run.history, "config": asdict(cfg),
        "init_from": run.parent,
        "package_version": __version__,
    }


class _Prefetch:
    """Draws the next batch in a thread while the current step runs. Batches are a pure function
    of the step, so this changes nothing but time: mixtures drawn on the fly cost about 0.2 s a
    batch in numpy/soxr, which release the GIL."""

    def __init__(self, run: "Run"):
        self.run = run

    def __enter__(self) -> "_Prefetch":
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.upcoming = self._submit(self.run.step)
        return self

    def _submit(self, step: int):
        return self.pool.submit(self.run.data.batches.batch, step, self.run.dist.rank, self.run.dist.world)

    def take(self, step: int) -> torch.Tensor:
        stems = self.upcoming.result()
        self.upcoming = self._submit(step + 1)
        return stems

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()
