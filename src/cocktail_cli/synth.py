"""``cocktail synth``: build training mixtures from single-class clips, the paper's recipe at scale.

Output (read by ``prep`` and ``eval``)::

    OUT_DIR/<split>/<id>/mix.wav          the mixture (16-bit PCM WAV, mono)
    OUT_DIR/<split>/<id>/<class>.wav      one stem per class, silence when inactive
    OUT_DIR/<split>/<id>/recipe.json      the mixture's complete recipe
    OUT_DIR/<split>/metadata.jsonl        every recipe, one JSON line each, sorted by id
    OUT_DIR/<split>/synth.json            the settings the split was made with
    OUT_DIR/.cache/variants/              precomputed pitch/stretch variants (safe to delete)

Design:
- A mixture's recipe is drawn from its own random generator, seeded by (seed, split, index), so it
  does not depend on worker count or order; rendering a recipe is a pure function of it and the
  source files, which is also how :func:`rebuild` reproduces any mixture from its metadata row.
- Pitch shift and stretch are precomputed once per clip and shape (``augment.VariantStore``); a
  mixture only slices, band-limits, gains and sums.
- The stems are quantised to 16 bits first and the mix is their integer sum, so the stems sum to
  the mix exactly; mix and stems are scaled together when the mix would pass 0.99 full scale.
- A mixture is written in a hidden temporary folder renamed to its id last: a folder named by an id
  is complete. A rerun skips those, deletes leftovers, and regenerates metadata.jsonl.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text
from .audio import check_writable_dir, write_audio
from .augment import VariantStore, band_limit, from_stored
from .classes import CLASSES, TARGET_CLASSES
from .sirens import draw_siren, render_siren
from .console import warn
from .errors import AudioError, CocktailError
from .sources import SPLITS, SourceSet, clip_path, needed_classes, probe, scan_folders

#: 16-bit PCM as soundfile reads it back: sample / 32768.
PCM_SCALE = 32768
#: Mix and stems are scaled together so that neither passes this fraction of full scale.
PEAK_LIMIT = 0.99
#: RMS floor when levelling an excerpt, so a near-silent one is not blown up into loud noise.
RMS_FLOOR = 1e-4
#: Settings that define a split's recipes; a rerun into the same folder must match them.
RECIPE_VERSION = 1
#: Mixtures drawn and rendered per round: bounds memory and lets bad clips be found early.
ROUND = 2000
#: Mixtures per worker task: large enough to amortise inter-process overhead.
TASK_SIZE = 8

_SPLIT_CODE = {name: k for k, name in enumerate(SPLITS)}
_ID_RE = re.compile(r"^\d{6,}$")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SynthConfig:
    """The recipe's knobs. Defaults are the paper's (see DEVELOPERS.md)."""

    seconds: float = 5.0
    sample_rate: int = 44100
    #: Chance that each of the four target classes is present; otherwise its stem is silent.
    active_prob: float = 0.7
    #: Clips overlaid to form the "other" stem (always present when > 0).
    others: int = 2
    #: Pitch shift magnitudes in semitones, each drawn with either sign; (0,) = no shift.
    pitch: tuple[float, ...] = (2.0, 4.0)
    #: Time-stretch duration factors (1.2 = 20% longer); (1.0,) = no stretch.
    stretch: tuple[float, ...] = (1.2,)
    #: Each source's level is drawn uniformly in +-gain_db around ``level_dbfs``.
    gain_db: float = 5.0
    #: The common reference level: RMS of a source's excerpt before its random gain, in dBFS.
    level_dbfs: float = -25.0
    #: Chance that a source is low-passed at a cutoff drawn in ``lowpass_hz`` (0 = paper recipe).
    lowpass_prob: float = 0.0
    lowpass_hz: tuple[float, float] = (3000.0, 8000.0)
    #: Chance that a drawn siren is a synthetic one (``sirens.py``) instead of a corpus clip.
    synthetic_sirens: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "pitch", tuple(float(p) for p in self.pitch))
        object.__setattr__(self, "stretch", tuple(float(s) for s in self.stretch))
        object.__setattr__(self, "lowpass_hz", tuple(float(f) for f in self.lowpass_hz))
        problems = []
        if not 0 < self.seconds <= 600:
            problems.append(f"seconds must be in (0, 600], got {self.seconds}")
        if not 8000 <= self.sample_rate <= 192000:
            problems.append(f"sample rate must be 8000..192000 Hz, got {self.sample_rate}")
        if not 0 <= self.active_prob <= 1:
            problems.append(f"active probability must be in [0, 1], got {self.active_prob}")
        if not 0 <= self.others <= 16:
            problems.append(f"others must be 0..16, got {self.others}")
        if not self.pitch or any(not 0 <= p <= 12 for p in self.pitch):
            problems.append(f"pitch steps must be 0..12 semitones, got {self.pitch}")
        if not self.stretch or any(not 0.5 <= s <= 2 for s in self.stretch):
            problems.append(f"stretch factors must be 0.5..2, got {self.stretch}")
        if not 0 <= self.gain_db <= 40:
            problems.append(f"gain range must be 0..40 dB, got {self.gain_db}")
        if not 0 <= self.lowpass_prob <= 1:
            problems.append(f"low-pass probability must be in [0, 1], got {self.lowpass_prob}")
        lo, hi = self.lowpass_hz
        if not 0 < lo <= hi:
            problems.append(f"low-pass cutoff range must be 0 < low <= high, got {self.lowpass_hz}")
        if not 0 <= self.synthetic_sirens <= 1:
            problems.append(f"synthetic siren probability must be in [0, 1], got {self.synthetic_sirens}")
        if self.seed < 0:
            problems.append(f"seed must be >= 0, got {self.seed}")
        if problems:
            raise CocktailError("; ".join(problems))

    @property
    def n_samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    @property
    def pitch_steps(self) -> tuple[float, ...]:
        """Signed semitone values to draw from: (2, 4) -> (-4, -2, 2, 4)."""
        return tuple(sorted({s * p for p in self.pitch for s in (-1.0, 1.0)} | ({0.0} if 0 in self.pitch else set())))

    def shapes(self) -> list[tuple[float, float]]:
        """Every (semitones, stretch) variant a clip may need."""
        return [(p, s) for p in self.pitch_steps for s in self.stretch]

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass
class SynthSummary:
    """What a run did. ``active`` counts mixtures with each class present, over the whole split."""

    split: str
    out_dir: str
    requested: int
    written: int = 0
    already_done: int = 0
    total: int = 0
    active: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CLASSES})
    skipped: dict[str, str] = field(default_factory=dict)
    variants_built: int = 0
    #: Wall time spent computing pitch/stretch variants (a one-off cost per clip and shape).
    variant_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def mixtures_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped_files"] = len(self.skipped)
        d["mixtures_per_s"] = round(self.mixtures_per_s, 3)
        d["seconds"] = round(self.seconds, 3)
        d["variant_seconds"] = round(self.variant_seconds, 3)
        return d


def mixture_id(index: int) -> str:
    return f"{index:06d}"


def mixture_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Each mixture's own generator: the same draws whatever runs it, and in which order."""
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODE[split], index]))


# --- drawing: recipe from (seed, split, index) -----------------------------------------------


def draw_recipe(index: int, sources: SourceSet, config: SynthConfig) -> dict:
    """The recipe of mixture ``index``: which clips, shapes, gains, positions and filters.

    Unusable clips (``sources.bad``) are redrawn from the same generator, so the outcome depends
    only on which files are unusable, never on when that was found out.
    """
    rng = mixture_rng(config.seed, sources.split, index)
    chosen = []
    for cls in TARGET_CLASSES:
        # One coin per class whatever active_prob is, so the draw sequence has one fixed shape.
        if rng.random() < config.active_prob:
            chosen.append(_draw_source(rng, cls, sources, config))
    for _ in range(config.others):
        chosen.append(_draw_source(rng, "other", sources, config))
    if config.synthetic_sirens > 0:
        # A generator of its own: the setting changes which sirens are synthetic and nothing else.
        siren_rng = np.random.default_rng(np.random.SeedSequence([config.seed, _SPLIT_CODE[sources.split], index, 1]))
        for src in chosen:
            if src["class"] == "siren" and siren_rng.random() < config.synthetic_sirens:
                src.update(file=None, pitch=0.0, stretch=1.0, synthetic=draw_siren(siren_rng))
    active = [c for c in CLASSES if any(s["class"] == c for s in chosen)]
    return {
        "id": mixture_id(index),
        "index": index,
        "split": sources.split,
        "seed": config.seed,
        "sample_rate": config.sample_rate,
        "samples": config.n_samples,
        "active": active,
        "sources": chosen,
    }


def _draw_source(rng: np.random.Generator, cls: str, sources: SourceSet, config: SynthConfig) -> dict:
    clips = sources.clips[cls]
    for _ in range(100 * len(clips)):
        clip = clips[int(rng.integers(len(clips)))]
        if clip.rel not in sources.bad:
            break
    else:  # pragma: no cover - guarded by _check_usable before drawing
        raise CocktailError(f"no usable clip of class '{cls}'")
    steps = config.pitch_steps
    pitch = steps[int(rng.integers(len(steps)))]
    stretch = config.stretch[int(rng.integers(len(config.stretch)))]
    gain_db = float(rng.uniform(-config.gain_db, config.gain_db))
    position = float(rng.random())
    # Both drawn always, so --lowpass-prob changes which sources are filtered and nothing else.
    lowpass = float(rng.uniform(*config.lowpass_hz))
    lowpass_on = bool(rng.random() < config.lowpass_prob)
    return {
        "class": cls,
        "file": clip.rel,
        "pitch": pitch,
        "stretch": stretch,
        "gain_db": gain_db,
        "position": position,
        "lowpass_hz": lowpass if lowpass_on else None,
    }


# --- rendering: recipe -> stems ----------------------------------------------------------------


def _is_synthetic(src: dict) -> bool:
    """A source generated from parameters in its recipe (``sirens.py``), not read from a clip."""
    return bool(src.get("synthetic"))


def render(recipe: dict, root: str | list[str], store: VariantStore, config: SynthConfig) -> tuple[np.ndarray, dict]:
    """The quantised stems ``(5, samples)`` int16 of ``recipe``, and the recipe completed with
    what rendering decided (offsets, lengths, level factors, the common scale).

    ``position`` in [0, 1) places the excerpt: a clip longer than the mixture is cut at that
    fraction of its spare length; a shorter one is placed at that fraction of the mixture's.
    """
    n = config.n_samples
    sr = config.sample_rate
    sums: dict[int, np.ndarray] = {}  # class index -> its stem; inactive classes stay unallocated
    done_sources = []
    for src in recipe["sources"]:
        synthetic = _is_synthetic(src)
        if synthetic:
            variant = render_siren(src["synthetic"], n, sr)
        else:
            variant = store.load(clip_path(root, src["file"]), src["pitch"], src["stretch"])
        length = len(variant)
        if length >= n:
            src_offset, dst_offset, count = int(src["position"] * (length - n + 1)), 0, n
        else:
            src_offset, dst_offset, count = 0, int(src["position"] * (n - length + 1)), length
        x = variant[src_offset : src_offset + count]
        if not synthetic:  # stored variants are int16: convert only the excerpt
            x = from_stored(x)
        if src["lowpass_hz"] is not None:
            x = band_limit(x, src["lowpass_hz"], sr)
        # A float64 pairwise sum, not a BLAS dot: its result must not depend on threads.
        rms = math.sqrt(float(np.square(x).sum(dtype=np.float64)) / count) if count else 0.0
        level = 10 ** ((config.level_dbfs + src["gain_db"]) / 20) / max(rms, RMS_FLOOR)
        x *= np.float32(level)
        index = CLASSES.index(src["class"])
        if index not in sums:
            sums[index] = np.zeros(n, dtype=np.float32)
        sums[index][dst_offset : dst_offset + count] += x
        done_sources.append(
            {**src, "src_offset": src_offset, "dst_offset": dst_offset, "length": count, "level": level}
        )
    rows = sorted(sums)
    active = np.stack([sums[k] for k in rows]) if rows else np.zeros((0, n), dtype=np.float32)
    peak = 0.0
    if rows:
        peak = max(float(np.max(np.abs(active.sum(axis=0)))), float(np.max(np.abs(active))))
    scale = 1.0 if peak <= PEAK_LIMIT else PEAK_LIMIT / peak
    # Each stem within 0.99 of full scale and rounding moves the sum by at most 2.5 steps, so the
    # integer mix below stays well inside int16.
    quantised = np.zeros((len(CLASSES), n), dtype=np.int16)
    if rows:
        active *= np.float32(scale * PCM_SCALE)
        quantised[rows] = np.rint(active, out=active)
    return quantised, {**recipe, "sources": done_sources, "scale": scale, "peak": peak * scale}


def mix_of(stems: np.ndarray) -> np.ndarray:
    """The mixture as the exact sum of the quantised stems."""
    return stems.astype(np.int32).sum(axis=0).astype(np.int16)


def rebuild(row: dict, source_dir, cache_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild one mixture from its metadata row: ``(mix, stems)`` as int16 samples.

    Needs the row's settings (stored in it) and the source files (``source_dir``: the folder, or
    the list of folders the split was made from, in the same order); variants missing from
    ``cache_dir`` are recomputed.
    """
    config = SynthConfig(**_config_kwargs(row["config"]))
    store = VariantStore(cache_dir, config.sample_rate)
    dirs = source_dir if isinstance(source_dir, (list, tuple)) else [source_dir]
    root = [str(Path(d).resolve()) for d in dirs]
    for src in row["sources"]:
        if _is_synthetic(src):  # rendered from its parameters
            continue
        store.build(clip_path(root, src["file"]), [(src["pitch"], src["stretch"])])
    stems, _ = render(row, root, store, config)
    return mix_of(stems), stems


def _config_kwargs(d: dict) -> dict:
    fields = SynthConfig.__dataclass_fields__
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in fields}


# --- workers ---------------------------------------------------------------------------------

# One store per worker process, so its memory maps are reused across tasks.
_WORKER_STORES: dict[tuple[str, int], VariantStore] = {}


def _store(cache_dir: str, sample_rate: int) -> VariantStore:
    key = (cache_dir, sample_rate)
    if key not in _WORKER_STORES:
        _WORKER_STORES[key] = VariantStore(cache_dir, sample_rate)
    return _WORKER_STORES[key]


def _build_task(cache_dir: str, sample_rate: int, clip_path: str, rel: str, shapes: list) -> tuple[str, str | None, int]:
    """Worker: build one clip's missing variants. Returns (rel, error or None, variants built)."""
    store = _store(cache_dir, sample_rate)
    missing = [s for s in shapes if not store.has(clip_path, *s)]
    try:
        store.build(clip_path, missing)
    except AudioError as err:
        return rel, err.message, 0
    except (OSError, ValueError) as err:
        return rel, f"cannot use ({err})", 0
    return rel, None, len(missing)


def _render_task(job: dict, recipes: list[dict]) -> list[dict]:
    """Worker: render and write mixtures; returns their completed recipes."""
    config = SynthConfig(**_config_kwargs(job["config"]))
    store = _store(job["cache_dir"], config.sample_rate)
    rows = []
    for recipe in recipes:
        stems, row = render(recipe, job["root"], store, config)
        row["config"] = job["config"]
        _write_mixture(Path(job["split_dir"]), row, stems, config.sample_rate)
        rows.append(row)
    return rows


def _write_mixture(split_dir: Path, row: dict, stems: np.ndarray, sample_rate: int) -> None:
    final = split_dir / row["id"]
    tmp = split_dir / f".tmp-{row['id']}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    write_audio(tmp / "mix.wav", mix_of(stems)[None], sample_rate, bits=16)
    for cls, stem in zip(CLASSES, stems):
        write_audio(tmp / f"{cls}.wav", stem[None], sample_rate, bits=16)
    (tmp / "recipe.json").write_text(json.dumps(row) + "\n", encoding="utf-8")
    try:
        os.rename(tmp, final)  # the folder appears complete, under its id, or not at all
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp)  # another run finished it first; its copy is identical


class _Runner:
    """Runs tasks in this process (jobs=1) or in a spawn-safe process pool, yielding results."""

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self.pool = None
        if self.jobs > 1:
            self.pool = ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"))

    def run(self, fn: Callable, tasks: Iterable[tuple]) -> Iterator:
        if self.pool is None:
            for args in tasks:
                yield fn(*args)
            return
        pending = set()
        tasks = iter(tasks)
        limit = 4 * self.jobs  # keep workers busy without queueing everything at once
        while True:
            while len(pending) < limit:
                args = next(tasks, None)
                if args is None:
                    break
                pending.add(self.pool.submit(fn, *args))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()

    def close(self, cancel: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)


# --- the job -----------------------------------------------------------------------------------


def synthesize(
    source_dir,
    out_dir: str | os.PathLike,
    config: SynthConfig | None = None,
    count: int = 1000,
    jobs: int = 1,
    split: str = "train",
    progress: Progress | None = None,
) -> SynthSummary:
    """Make mixtures ``0 .. count-1`` of ``split`` under ``out_dir/split``; resume what exists.

    ``source_dir``: a folder, or a list of folders whose clips are drawn from as one set.

    ``progress(phase, done, total)`` is called as work completes (phase "variants" or "mixtures").
    Raises :class:`CocktailError` for unusable input (missing/empty class folder, bad settings).
    """
    started = time.perf_counter()
    config = config or SynthConfig()
    if count < 0:
        raise CocktailError(f"count must be >= 0, got {count}")
    dirs = list(source_dir) if isinstance(source_dir, (list, tuple)) else [source_dir]
    sources = scan_folders(dirs, split, needed_classes(config.active_prob, config.others))
    out = Path(out_dir)
    split_dir = out / split
    check_writable_dir(split_dir)
    cache_dir = out / ".cache" / "variants"
    summary = SynthSummary(split=split, out_dir=str(split_dir), requested=count)
    report = progress or (lambda phase, done, total: None)

    with _locked(split_dir):
        _check_settings(split_dir, config, sources)
        _remove_leftovers(split_dir)
        existing = _complete_ids(split_dir)
        todo = [i for i in range(count) if mixture_id(i) not in existing]
        summary.already_done = count - len(todo)
        _probe_all(sources)
        job = {
            "config": config.to_dict(),
            "root": sources.roots,
            "cache_dir": str(cache_dir),
            "split_dir": str(split_dir),
        }
        rows: list[dict] = []
        runner = _Runner(jobs)
        try:
            done = 0
            for start in range(0, len(todo), ROUND):
                batch = todo[start : start + ROUND]
                recipes = _draw_usable(batch, sources, config, runner, cache_dir, summary, report)
                tasks = [(job, recipes[k : k + TASK_SIZE]) for k in range(0, len(recipes), TASK_SIZE)]
                for written in runner.run(_render_task, tasks):
                    rows.extend(written)
                    done += len(written)
                    report("mixtures", done, len(todo))
        except BaseException:
            runner.close(cancel=True)
            raise
        runner.close()
        summary.written = len(rows)
        summary.skipped = dict(sorted(sources.bad.items()))
        all_rows = _write_metadata(split_dir, rows)
    summary.total = len(all_rows)
    for row in all_rows:
        for cls in row["active"]:
            summary.active[cls] = summary.active.get(cls, 0) + 1
    summary.seconds = time.perf_counter() - started
    return summary


def _draw_usable(
    batch: list[int],
    sources: SourceSet,
    config: SynthConfig,
    runner: _Runner,
    cache_dir: Path,
    summary: SynthSummary,
    report: Progress,
) -> list[dict]:
    """Draw the batch's recipes and build the variants they use; a clip that fails to decode is
    marked bad and the batch redrawn (only mixtures that drew it change)."""
    store = VariantStore(cache_dir, config.sample_rate)
    by_rel = {c.rel: c for clips in sources.clips.values() for c in clips}
    while True:
        _check_usable(sources)
        recipes = [draw_recipe(i, sources, config) for i in batch]
        needed: dict[str, set] = {}
        for recipe in recipes:
            for src in recipe["sources"]:
                if _is_synthetic(src):  # nothing to precompute
                    continue
                shape = (src["pitch"], src["stretch"])
                clip = by_rel[src["file"]]
                if not store.has(clip.path, *shape):
                    needed.setdefault(clip.rel, set()).add(shape)
        if not needed:
            return recipes
        tasks = [(str(cache_dir), config.sample_rate, by_rel[rel].path, rel, sorted(shapes)) for rel, shapes in needed.items()]
        found_bad = False
        started = time.perf_counter()
        for k, (rel, problem, built) in enumerate(runner.run(_build_task, tasks), 1):
            summary.variants_built += built
            report("variants", k, len(tasks))
            if problem is not None:
                sources.bad[rel] = problem
                warn(f"skipping {clip_path(sources.roots, rel)}: {problem}")
                found_bad = True
        summary.variant_seconds += time.perf_counter() - started
        if not found_bad:
            return recipes


def _probe_all(sources: SourceSet) -> None:
    """Header-check every candidate once, so most unusable files are known before any draw."""
    for clips in sources.clips.values():
        for clip in clips:
            problem = probe(clip)
            if problem is not None and clip.rel not in sources.bad:
                sources.bad[clip.rel] = problem
                warn(f"skipping {clip.path}: {problem}")
    _check_usable(sources)


def _check_usable(sources: SourceSet) -> None:
    for cls, clips in sources.clips.items():
        if all(c.rel in sources.bad for c in clips):
            where = os.path.join(sources.root, cls) if not sources.from_manifest else sources.root
            raise CocktailError(f"no readable clip of class '{cls}' in split '{sources.split}'", where)


def _check_settings(split_dir: Path, config: SynthConfig, sources: SourceSet) -> None:
    """A split folder holds one recipe: refuse to resume it with different settings or sources."""
    settings = {
        "version": RECIPE_VERSION,
        "split": sources.split,
        "config": config.to_dict(),
        "sources": sources.root if len(sources.roots) == 1 else sources.roots,
        "sources_fingerprint": sources.fingerprint(),
    }
    path = split_dir / "synth.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old is not None:
            mine = {**settings["config"], "version": settings["version"], "sources_fingerprint": settings["sources_fingerprint"]}
            # Settings added later (absent from an older synth.json) had their default then.
            theirs = {**SynthConfig().to_dict(), **old.get("config", {}), "version": old.get("version"), "sources_fingerprint": old.get("sources_fingerprint")}
            diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            if diff:
                raise CocktailError(
                    f"was made with different settings ({', '.join(diff)}); use another output folder "
                    "or the same settings to resume",
                    split_dir,
                )
            return
    atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def _remove_leftovers(split_dir: Path) -> None:
    """Half-written mixtures of a killed run: hidden temporary folders and files."""
    for entry in split_dir.iterdir():
        if entry.name.startswith(".tmp-") and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            entry.unlink(missing_ok=True)


def _complete_ids(split_dir: Path) -> set[str]:
    return {e.name for e in os.scandir(split_dir) if e.is_dir() and _ID_RE.match(e.name)}


def _write_metadata(split_dir: Path, new_rows: list[dict]) -> list[dict]:
    """Regenerate metadata.jsonl from every complete mixture: new rows from memory, earlier ones
    from their recipe.json. Sorted by id, written atomically; nothing duplicated or lost."""
    rows = {row["id"]: row for row in new_rows}
    for name in sorted(_complete_ids(split_dir) - rows.keys()):
        try:
            rows[name] = json.loads((split_dir / name / "recipe.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            warn(f"mixture {split_dir / name} has no readable recipe.json ({err}); left out of metadata")
    ordered = [rows[k] for k in sorted(rows, key=int)]
    path = split_dir / "metadata.jsonl"
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in ordered))
    return ordered


class _locked:
    """One synth at a time per split folder (a second would race on the same ids)."""

    def __init__(self, split_dir: Path):
        self.path = split_dir / ".lock"
        self.fh = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            raise CocktailError("another cocktail synth is writing here", self.path.parent) from None
        return self

    def __exit__(self, *exc):
        if self.fh is not None:
            self.fh.close()
        return False


def parse_list(spec: str, name: str) -> tuple[float, ...]:
    """``"2,4"`` -> (2.0, 4.0), for the command's list options."""
    try:
        values = tuple(float(v) for v in spec.split(",") if v.strip())
    except ValueError:
        raise CocktailError(f"{name} must be a comma-separated list of numbers, got '{spec}'") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise CocktailError(f"{name} must be a comma-separated list of numbers, got '{spec}'")
    return values
