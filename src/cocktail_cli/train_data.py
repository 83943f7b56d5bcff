"""What ``cocktail train`` learns from: a ``cocktail prep`` store's fixed examples (:class:`Batches`)
or mixtures drawn afresh at every step from source folders (:class:`~cocktail_cli.mixing.MixedBatches`),
with the validation set and the examples the input normalisation is fitted on.

Batches are a pure function of the step (order from ``(seed, epoch)``, augmentation from
``(seed, step)``), so ``--resume`` continues exactly and each process of a distributed run takes
its slice of the same global batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .checkpoint import LoadedModel
from .classes import N_CLASSES
from .errors import CocktailError
from .mixing import FixedMixtures, MixConfig, MixedBatches, load_bank
from .prep import StoreSplit, read_manifest
from .stft import STFTConfig

from .train_config import ARCH_DEFAULTS, TrainConfig


@dataclass
class TrainData:
    stft: STFTConfig
    segment: int  # samples per training example
    listing: str | None  # identifies the store or the set of source clips (a resume must match)
    train_split: str
    norm_data: object  # indexable examples the input normalisation is fitted on
    val_data: object | None  # indexable validation examples (stems), or None
    batches: object  # .batch(step, rank, world) and .steps_per_epoch
    n_train: int


def load_data(cfg: TrainConfig, init: LoadedModel | None) -> TrainData:
    """The run's data: from source folders when ``cfg.sources``, else from ``cfg.store``."""
    return (mixed_data if cfg.sources else store_data)(cfg, init)


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



def store_data(cfg: TrainConfig, init: LoadedModel | None) -> TrainData:
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
    return TrainData(stft, segment, manifest.get("listing"), train_split, data, val_data, batches, len(data))



def mixed_data(cfg: TrainConfig, init: LoadedModel | None) -> TrainData:
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
    return TrainData(stft, segment, bank.listing, "train", norm_data, val_data, MixedBatches(bank, mix, cfg.batch_size, cfg.seed), len(bank))


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

