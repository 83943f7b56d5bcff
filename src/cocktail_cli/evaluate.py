"""Score separations: the library behind ``cocktail eval``.

Three sources of estimates, always scored against the same references:

- **file mode**: a folder of estimated stems (``<class>.wav``) against a folder of reference
  stems, or folders of such folders matched by name;
- **model mode**: every mixture of a ``synth`` output separated by a :class:`Separator`;
- **oracle mode**: ideal masks (``irm1``, ``irm2``, ``ibm``) computed from the references, the
  ceiling of a mask-based separator with this STFT.

The mixture itself, used as the estimate of every stem, is always scored as the floor.

Per stem: SDR, SIR, SAR (BSS Eval v3, :func:`cocktail_cli.metrics.bss_eval`), SI-SDR and SI-SDRi
(SI-SDR of the estimate minus SI-SDR of the mixture). A stem is

- ``active`` when its reference is present (not all zero, and within
  :data:`~cocktail_cli.metrics.ABSENT_THRESHOLD_DB` of the mixture's energy);
- ``absent`` otherwise: the SDR family is undefined, so it reports ``leakage_db``, the estimate's
  energy relative to the mixture (0 dB: the whole mixture leaked into a stem that should be
  silent; -120 dB floor: nothing);
- ``solo`` when it is the only active stem: the mixture then equals it, the floor's SI-SDR is
  (numerically) infinite and SI-SDRi meaningless, so its SI-SDR is aggregated apart
  (``solo_si_sdr_*``) and it is left out of the SDR/SIR/SAR/SI-SDR/SI-SDRi averages.

Input rules (each file is named in the message):

- every file of one mixture (references, ``mix.wav``, estimates) must have the same sample rate,
  else :class:`AudioError`;
- lengths may differ: everything is trimmed to the shortest, with a warning;
- references and estimates must have the same channel count, else :class:`AudioError`;
  multi-channel stems are mixed down to mono (mean of channels) with a warning, because BSS
  Eval "sources" scores single-channel signals;
- NaN or infinite samples, missing, empty or undecodable files: :class:`AudioError`.

In a batch, a mixture that fails is reported and the others are still scored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import atomic_open
from .audio import AUDIO_EXTENSIONS, read_audio
from .classes import CLASSES
from .errors import AudioError, CocktailError
from .metrics import ABSENT_THRESHOLD_DB, active_references, bss_eval, leakage_db, si_sdr

if TYPE_CHECKING:
    from .stft import STFTConfig  # torch: imported only where an oracle or the model needs it

MIX_NAME = "mix"
ORACLES = ("irm1", "irm2", "ibm")
#: Metrics per stem, in report order.
METRICS = ("sdr", "sir", "sar", "si_sdr", "si_sdri")
#: System names in report order (``oracle_<kind>`` in place of ``oracle``).
SYSTEM_ORDER = ("mixture", "oracle", "estimate", "model")

Warn = Callable[[str], None]


def _no_warn(message: str) -> None:
    pass


# -- reading ----------------------------------------------------------------------------------


def stem_path(folder: Path, name: str) -> Path | None:
    """``folder/<name>.wav``, or the same name with another audio extension; None if absent."""
    wav = folder / f"{name}.wav"
    if wav.is_file():
        return wav
    for ext in sorted(AUDIO_EXTENSIONS):
        candidate = folder / f"{name}{ext}"
        if candidate.is_file():
            return candidate
    return None


def is_stem_folder(folder: Path) -> bool:
    """A folder holding at least one stem named by class."""
    return folder.is_dir() and any(stem_path(folder, c) is not None for c in CLASSES)


def _read(path: Path, warn: Warn) -> tuple[np.ndarray, int]:
    audio, sr = read_audio(path)
    return audio.astype(np.float64), sr


@dataclass
class MixtureData:
    """One mixture's signals, checked and aligned: mono float64, same rate, same length."""

    id: str
    sample_rate: int
    references: np.ndarray  # (C, T)
    mixture: np.ndarray  # (T,)
    estimates: np.ndarray | None = None  # (C, T)
    mixture_file: str | None = None  # the mix.wav used, if any (model mode separates it)
    mixture_audio: np.ndarray | None = None  # (channels, T) as read, for the separator


def load_mixture(
    reference_dir: Path,
    estimate_dir: Path | None = None,
    id: str | None = None,
    require_mix: bool = False,
    warn: Warn = _no_warn,
) -> MixtureData:
    """Read the references (and ``mix.wav``, and the estimates if given) of one mixture."""
    reference_dir, mixture_id = Path(reference_dir), id or Path(reference_dir).name
    named: list[tuple[str, Path, np.ndarray, int]] = []  # (role, path, audio, sr)
    for cls in CLASSES:
        path = stem_path(reference_dir, cls)
        if path is None:
            raise AudioError(f"reference stem '{cls}' is missing", reference_dir / f"{cls}.wav")
        named.append(("reference", path, *_read(path, warn)))
    mix_path = stem_path(reference_dir, MIX_NAME)
    if mix_path is None and require_mix:
        raise AudioError("mixture is missing", reference_dir / f"{MIX_NAME}.wav")
    if mix_path is not None:
        named.append(("mix", mix_path, *_read(mix_path, warn)))
    if estimate_dir is not None:
        estimate_dir = Path(estimate_dir)
        if not estimate_dir.is_dir():
            raise AudioError("estimate folder not found", estimate_dir)
        for cls in CLASSES:
            path = stem_path(estimate_dir, cls)
            if path is None:
                raise AudioError(f"estimated stem '{cls}' is missing", estimate_dir / f"{cls}.wav")
            named.append(("estimate", path, *_read(path, warn)))

    first_role, first_path, first_audio, rate = named[0]
    for role, path, audio, sr in named[1:]:
        if sr != rate:
            raise AudioError(f"sample rate {sr} Hz differs from {rate} Hz of {first_path.name}", path)
    ref_channels = first_audio.shape[0]
    for role, path, audio, sr in named[1:]:
        if audio.shape[0] != ref_channels:
            raise AudioError(
                f"has {audio.shape[0]} channel(s) but {first_path.name} has {ref_channels}", path
            )
    lengths = [a.shape[-1] for _, _, a, _ in named]
    n = min(lengths)
    if max(lengths) != n:
        longest = named[int(np.argmax(lengths))][1]
        warn(f"{mixture_id}: stems differ in length ({n} to {max(lengths)} samples, e.g. {longest}); trimmed to {n}")
    if ref_channels > 1:
        warn(f"{mixture_id}: {ref_channels}-channel stems mixed down to mono for scoring")

    def mono(audio: np.ndarray) -> np.ndarray:
        return audio[:, :n].mean(axis=0)

    references = np.stack([mono(a) for role, _, a, _ in named if role == "reference"])
    mix_entry = next((e for e in named if e[0] == "mix"), None)
    mixture = mono(mix_entry[2]) if mix_entry else references.sum(axis=0)
    estimates = None
    if estimate_dir is not None:
        estimates = np.stack([mono(a) for role, _, a, _ in named if role == "estimate"])
    return MixtureData(
        id=mixture_id,
        sample_rate=rate,
        references=references,
        mixture=mixture,
        estimates=estimates,
        mixture_file=str(mix_entry[1]) if mix_entry else None,
        mixture_audio=mix_entry[2][:, :n] if mix_entry else None,
    )


# -- finding mixtures ---------------------------------------------------------------------------


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def pair_folders(reference: Path, estimate: Path) -> list[tuple[str, Path, Path]]:
    """File mode: ``(id, reference_dir, estimate_dir)`` for one stem folder or folders of them."""
    reference, estimate = Path(reference), Path(estimate)
    for folder, what in ((reference, "reference"), (estimate, "estimate")):
        if not folder.exists():
            raise CocktailError(f"{what} folder not found", folder)
        if not folder.is_dir():
            raise CocktailError(f"{what} must be a folder of stems (<class>.wav)", folder)
    if is_stem_folder(reference):
        return [(reference.name, reference, estimate)]
    pairs = [(d.name, d, estimate / d.name) for d in _subfolders(reference) if is_stem_folder(d)]
    if not pairs:
        raise CocktailError(
            f"no reference stems found (expected {CLASSES[0]}.wav ... {CLASSES[-1]}.wav, or folders of them)",
            reference,
        )
    return pairs


def find_mixtures(data_dir: Path, split: str | None = None) -> list[tuple[str, Path]]:
    """Model mode: ``(id, folder)`` of every mixture folder (``mix.wav`` + stems) under ``data_dir``.

    ``data_dir`` is a mixture folder, a folder of mixture folders (a ``synth`` split), or a
    ``synth`` root whose subfolders are splits (all of them, or only ``split``).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CocktailError("data folder not found", data_dir)

    def is_mixture(folder: Path) -> bool:
        return stem_path(folder, MIX_NAME) is not None and is_stem_folder(folder)

    if is_mixture(data_dir):
        return [(data_dir.name, data_dir)]
    direct = [(d.name, d) for d in _subfolders(data_dir) if is_mixture(d)]
    if direct:
        if split is not None:
            raise CocktailError(f"--split {split} given, but this is already a folder of mixtures", data_dir)
        return direct
    splits = _subfolders(data_dir)
    if split is not None:
        splits = [d for d in splits if d.name == split]
        if not splits:
            raise CocktailError(f"no split '{split}' here", data_dir)
    found = [(f"{s.name}/{d.name}", d) for s in splits for d in _subfolders(s) if is_mixture(d)]
    if not found:
        raise CocktailError("no mixtures found (folders holding mix.wav and <class>.wav stems)", data_dir)
    return found


# -- estimates ----------------------------------------------------------------------------------


def oracle_estimates(references: np.ndarray, mixture: np.ndarray, kind: str, stft: "STFTConfig") -> np.ndarray:
    """Stems from ideal masks applied to the mixture's STFT: ``(C, T)`` from ``(C, T)`` references.

    ``irm1``: |S_i| / sum_j |S_j|; ``irm2``: |S_i|^2 / sum_j |S_j|^2; ``ibm``: 1 for the loudest
    source of each bin. The STFT is taken at the files' own rate with ``stft``'s n_fft and hop.
    """
    import torch

    if kind not in ORACLES:
        raise CocktailError(f"unknown oracle '{kind}' (choose {', '.join(ORACLES)})")
    n = references.shape[-1]
    if n < stft.n_fft // 2 + 1:
        raise CocktailError(f"signals too short for the oracle STFT ({n} samples, n_fft {stft.n_fft})")
    ref_spec = stft.stft(torch.from_numpy(np.ascontiguousarray(references, dtype=np.float64)))
    mix_spec = stft.stft(torch.from_numpy(np.ascontiguousarray(mixture, dtype=np.float64)))
    return stft.istft(oracle_masks(ref_spec, kind) * mix_spec, length=n).numpy()


def oracle_masks(ref_spec, kind: str):
    """``(C, bins, frames)`` ideal masks (see :func:`oracle_estimates`) from the references' STFTs."""
    import torch

    mag = ref_spec.abs()
    if kind == "irm1":
        return mag / mag.sum(0).clamp_min(1e-12)
    if kind == "irm2":
        power = mag**2
        return power / power.sum(0).clamp_min(1e-24)
    return torch.nn.functional.one_hot(mag.argmax(0), ref_spec.shape[0]).permute(2, 0, 1).to(mag.dtype)


# -- scoring ------------------------------------------------------------------------------------


def stem_status(references: np.ndarray, mixture: np.ndarray, threshold_db: float = ABSENT_THRESHOLD_DB) -> list[str]:
    """``active``, ``absent`` or ``solo`` per stem (see the module docstring)."""
    active = active_references(references, mixture, threshold_db)
    solo = int(active.sum()) == 1
    return ["absent" if not a else ("solo" if solo else "active") for a in active]


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def score_stems(
    references: np.ndarray,
    estimates: np.ndarray,
    mixture: np.ndarray,
    status: list[str],
    bss: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, dict]:
    """Per-stem metrics ``{class: {status, sdr, sir, sar, si_sdr, si_sdri, leakage_db}}``.

    ``bss``: these estimates' SDR, SIR and SAR if already computed (computed here otherwise).
    Values that are undefined for the stem's status, or infinite, are None.
    """
    if bss is None:
        bss = bss_eval(references, estimates, active=np.array([s != "absent" for s in status]))
    sdr, sir, sar = bss
    est_si_sdr = si_sdr(estimates, references)
    mix_si_sdr = si_sdr(np.broadcast_to(mixture, references.shape), references)
    out = {}
    for i, cls in enumerate(CLASSES):
        row: dict = {"status": status[i]}
        if status[i] == "absent":
            row.update(dict.fromkeys(METRICS))
            row["leakage_db"] = leakage_db(estimates[i], mixture)
        else:
            row["sdr"] = _finite_or_none(sdr[i])
            row["sir"] = _finite_or_none(sir[i])
            row["sar"] = _finite_or_none(sar[i])
            row["si_sdr"] = _finite_or_none(est_si_sdr[i])
            row["si_sdri"] = None if status[i] == "solo" else _finite_or_none(est_si_sdr[i] - mix_si_sdr[i])
            row["leakage_db"] = None
        out[cls] = row
    return out


def score_mixture(
    data: MixtureData,
    systems: dict[str, np.ndarray],
    threshold_db: float = ABSENT_THRESHOLD_DB,
) -> dict:
    """Score every system's estimates ``(C, T)`` of one mixture (the mixture floor is added)."""
    status = stem_status(data.references, data.mixture, threshold_db)
    all_systems = {"mixture": np.broadcast_to(data.mixture, data.references.shape), **systems}
    # all systems in one call: they share the references' correlations and factorisations
    sdr, sir, sar = bss_eval(
        data.references, np.stack(list(all_systems.values())), active=np.array([s != "absent" for s in status])
    )
    return {
        "type": "mixture",
        "id": data.id,
        "sample_rate": data.sample_rate,
        "samples": int(data.references.shape[-1]),
        "status": dict(zip(CLASSES, status)),
        "systems": {
            name: score_stems(data.references, est, data.mixture, status, (sdr[k], sir[k], sar[k]))
            for k, (name, est) in enumerate(all_systems.items())
        },
    }


def _stats(values: list[float], prefix: str) -> dict:
    vals = [v for v in values if v is not None]
    return {
        f"{prefix}_mean": float(np.mean(vals)) if vals else None,
        f"{prefix}_median": float(np.median(vals)) if vals else None,
    }


def _summarise(rows: list[dict]) -> dict:
    active = [r for r in rows if r["status"] == "active"]
    solo = [r for r in rows if r["status"] == "solo"]
    absent = [r for r in rows if r["status"] == "absent"]
    out = {"active": len(active), "absent": len(absent), "solo": len(solo)}
    for metric in METRICS:
        out.update(_stats([r[metric] for r in active], metric))
    out.update(_stats([r["si_sdr"] for r in solo], "solo_si_sdr"))
    out.update(_stats([r["leakage_db"] for r in absent], "leakage_db"))
    return out


def aggregate(results: list[dict], failed: int = 0) -> dict:
    """Per system: per class and overall counts, means and medians (stable key names)."""
    systems: dict[str, dict] = {}
    names = order_systems({name for r in results for name in r["systems"]})
    for name in names:
        per_class = {cls: [r["systems"][name][cls] for r in results if name in r["systems"]] for cls in CLASSES}
        systems[name] = {
            "classes": {cls: _summarise(rows) for cls, rows in per_class.items()},
            "overall": _summarise([row for rows in per_class.values() for row in rows]),
        }
    return {"type": "aggregate", "mixtures": len(results), "failed": failed, "systems": systems}


def order_systems(names) -> list[str]:
    def key(name: str) -> tuple[int, str]:
        base = "oracle" if name.startswith("oracle") else name
        return (SYSTEM_ORDER.index(base) if base in SYSTEM_ORDER else len(SYSTEM_ORDER), name)

    return sorted(names, key=key)


# -- the two modes --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One mixture's result, or the error that stopped it (the batch goes on), with its warnings."""

    id: str
    result: dict | None = None
    error: CocktailError | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class EvalJob:
    """What to score. File mode: ``reference`` + ``estimate`` (or ``reference`` + ``oracle``);
    model mode: ``data_dir`` (+ ``model``, None for the default model)."""

    reference: Path | None = None
    estimate: Path | None = None
    data_dir: Path | None = None
    model: str | None = None
    use_model: bool = True
    precision: str = "auto"  # the model's arithmetic (precision.py)
    split: str | None = None
    oracle: str | None = None
    threshold_db: float = ABSENT_THRESHOLD_DB
    limit: int | None = None
    items: list = field(default_factory=list)


def plan(job: EvalJob) -> list[tuple[str, Path, Path | None]]:
    """The mixtures to score: ``(id, reference_dir, estimate_dir or None)``."""
    if job.oracle is not None and job.oracle not in ORACLES:
        raise CocktailError(f"unknown oracle '{job.oracle}' (choose {', '.join(ORACLES)})")
    if job.data_dir is not None:
        if job.reference is not None or job.estimate is not None:
            raise CocktailError("give either DATA_DIR (model mode) or --reference/--estimate (file mode), not both")
        items = [(i, d, None) for i, d in find_mixtures(job.data_dir, job.split)]
    elif job.reference is not None:
        if job.estimate is None and job.oracle is None:
            raise CocktailError("--reference needs --estimate (or --oracle to score ideal masks)")
        if job.estimate is not None:
            items = pair_folders(job.reference, job.estimate)
        else:
            ref = Path(job.reference)
            if not ref.is_dir():
                raise CocktailError("reference folder not found", ref)
            items = [(ref.name, ref, None)] if is_stem_folder(ref) else [
                (d.name, d, None) for d in _subfolders(ref) if is_stem_folder(d)
            ]
            if not items:
                raise CocktailError("no reference stems found", ref)
    else:
        raise CocktailError("nothing to evaluate: give DATA_DIR, or --reference with --estimate or --oracle")
    if job.limit is not None:
        items = items[: max(job.limit, 0)]
    return items


class MixtureScorer:
    """Scores one planned mixture at a time for ``job`` (loads the model once)."""

    def __init__(self, job: EvalJob):
        self.job = job
        self.model_mode = job.data_dir is not None and job.use_model
        self.separator = None
        self.stft = None  # the oracle's STFT: the model's, or the default (torch, so only if needed)
        if self.model_mode:
            from .separator import Separator

            self.separator = Separator.from_checkpoint(job.model, precision=job.precision)
            self.stft = self.separator.stft
        elif job.oracle:
            from .stft import STFTConfig

            self.stft = STFTConfig()

    def __call__(self, item: tuple[str, Path, Path | None]) -> Outcome:
        mixture_id, ref_dir, est_dir = item
        outcome = Outcome(mixture_id)
        try:
            data = load_mixture(ref_dir, est_dir, id=mixture_id, require_mix=self.model_mode, warn=outcome.warnings.append)
            systems: dict[str, np.ndarray] = {}
            if self.job.oracle:
                systems[f"oracle_{self.job.oracle}"] = oracle_estimates(data.references, data.mixture, self.job.oracle, self.stft)
            if data.estimates is not None:
                systems["estimate"] = data.estimates
            if self.separator is not None:
                stems = self.separator.separate(data.mixture_audio, data.sample_rate, name=data.mixture_file)
                systems["model"] = stems.astype(np.float64).mean(axis=1)  # (C, channels, T) -> mono
            outcome.result = score_mixture(data, systems, self.job.threshold_db)
        except CocktailError as err:
            outcome.error = err
        return outcome


#: The worker process's scorer (``jobs`` > 1).
_worker_scorer: MixtureScorer | None = None


def _start_worker(job: EvalJob) -> None:
    import signal

    global _worker_scorer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    if (job.data_dir is not None and job.use_model) or job.oracle:  # torch only where it is used
        import torch

        torch.set_num_threads(1)  # one process per core
    _worker_scorer = MixtureScorer(job)


def _score_in_worker(item: tuple[str, Path, Path | None]) -> Outcome:
    return _worker_scorer(item)


def run(
    job: EvalJob, warn: Warn = _no_warn, on_step: Callable[[], None] | None = None, jobs: int = 1
) -> Iterator[Outcome]:
    """Score every planned mixture, yielding one :class:`Outcome` each, in plan order (errors do
    not stop the batch). ``jobs`` > 1 scores that many mixtures at once, in worker processes that
    each load the model once and run on one thread."""
    items = job.items or plan(job)
    scorer = MixtureScorer(job)  # here too when jobs > 1: a bad --model is reported before any work
    pool = None
    if jobs > 1 and len(items) > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        pool = ProcessPoolExecutor(
            min(jobs, len(items)), mp_context=get_context("spawn"), initializer=_start_worker, initargs=(job,)
        )
        outcomes = pool.map(_score_in_worker, items)  # in plan order; workers run ahead
    else:
        outcomes = map(scorer, items)
    try:
        for outcome in outcomes:
            for message in outcome.warnings:
                warn(message)
            yield outcome
            if on_step is not None:
                on_step()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# -- outputs --------------------------------------------------------------------------------------

CSV_COLUMNS = ("mixture", "system", "stem", "status", "sdr", "sir", "sar", "si_sdr", "si_sdri", "leakage_db")


def csv_rows(results: list[dict]) -> Iterator[dict]:
    """One row per mixture, system and stem (the columns of :data:`CSV_COLUMNS`)."""
    for r in results:
        for system in order_systems(r["systems"]):
            for cls in CLASSES:
                stem = r["systems"][system][cls]
                yield {"mixture": r["id"], "system": system, "stem": cls, **stem}


def write_csv(path: str | os.PathLike, results: list[dict]) -> None:
    """Write atomically (temporary name, then rename): no partial file on failure."""
    import csv
    
    name = os.fspath(path)
    try:
        with atomic_open(name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for row in csv_rows(results):
                writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})
    except OSError as err:
        raise CocktailError(f"cannot write ({err.strerror or err})", name) from None

