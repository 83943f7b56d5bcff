"""``cocktail train``'s settings: :class:`TrainConfig`, the per-architecture defaults, and which
settings a ``--resume`` may change (everything else comes from the checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .errors import CocktailError
from .nets import ARCHS, DEFAULT_ARCH
from .nets.norm import DEFAULT_FLOOR_DB
from .precision import resolve as resolve_precision

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
    "stcn": dict(optimizer="adamw", lr=1e-3, schedule="cosine", clip=5.0, loss="waveform", weight_decay=1e-2, absent_weight=0.1),
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
    # The activity labels (losses.activity_labels): a frame within this many dB of the stem's
    # loudest, gaps shorter than this closed. Runs made before these existed used 30 dB, no closing.
    activity_range_db: float = 20.0
    activity_gap_s: float = 0.5
    # Train only the activity head (``--init-from`` a model, ``--arch-arg activity=true``): every
    # other weight stays the init model's, so its separation is unchanged bit for bit, and the
    # step costs a forward pass of the network and the head's backward (issue 25's detector).
    head_only: bool = False

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


def resumed_config(cfg: TrainConfig, state: dict) -> TrainConfig:
    """The stored run's settings, with what may change on ``--resume`` taken from ``cfg``."""
    known = {f.name for f in fields(TrainConfig)}
    stored = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    if "floor_db" not in state["config"]:
        stored.floor_db = None  # a run from before the feature floor: resume it as it was
    if "activity_range_db" not in state["config"]:
        stored.activity_range_db, stored.activity_gap_s = 30.0, 0.0  # the first activity labels
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
