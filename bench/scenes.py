"""Scenes with known events for the events bench: 30 s, 44.1 kHz, 16-bit WAV, and a DCASE TSV.

    python bench/scenes.py -o scenes/test --split test --count 40 --seed 0
    python bench/scenes.py -o scenes/val --split val --count 40 --seed 0     # for tuning

Each scene is built from clips of one split of the corpus (``../shared/corpus``, and
``data/corpus-extra`` when its ``manifest.csv`` exists; ``--corpus`` for others):

- a background of the ``other`` class that runs on for the whole scene: clips of one everyday
  continuous category (:data:`BACKGROUND_CATEGORIES`: music, fire, drilling, birds, ...) chained
  with cross-fades, each at the same loudness;
- 0-3 events of each of baby_cry, siren, dog and speech (uniformly), at uniform random onsets
  (events of one class never overlap; events of different classes may), each at an
  event-to-background ratio drawn from :data:`SNR_DB` (the RMS of the clip's sounding windows
  against the background's RMS).

An event's extent comes from the clip itself (:func:`clip_events`): 50 ms windows are sounding
where within 20 dB of the clip's loudest window, gaps under 0.5 s are merged and pieces under
0.1 s dropped (the definition the training labels use, ``losses.activity_labels``). A clip can
give several events (barks with long pauses between them). The ground truth of every scene is
written to ``reference.tsv`` in the DCASE layout (``filename onset offset event_label``) that
sed_eval and psds_eval read; ``scenes.json`` records each scene's recipe (clips, onsets, gains).

Same seed, same scenes: clips are drawn from the sorted manifest with a generator seeded by
``(seed, scene index)``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cocktail_cli.classes import CLASSES, TARGET_CLASSES  # noqa: E402

CORPORA = (ROOT.parent / "shared" / "corpus", ROOT / "data" / "corpus-extra")
SR = 44100
SECONDS = 30.0
MAX_EVENTS = 3  # per class: 0..3, uniformly
MAX_CLIP_S = 10.0  # longer clips (some sirens) are cut to their first 10 s
SNR_DB = (-5.0, 10.0)  # event against background, uniform
BACKGROUND_DBFS = -30.0  # the background's RMS
CROSSFADE_S = 0.5
#: ``other`` categories that make a plausible background running on for 30 s (not single
#: transients like a car horn, a gun shot or a stone gate).
BACKGROUND_CATEGORIES = frozenset({
    "air_conditioner", "crackling_fire", "drilling", "engine_idling", "jackhammer", "music",
    "nature_birds_insects", "rain", "river_waterfall", "road_traffic", "rustling_leaves", "sea_waves",
    "street_music", "street_noise", "wind", "harvesting_grain", "ship_wood_water", "ambience", "city_sfx",
})
#: Ground-truth rule (see the module doc).
WINDOW_S = 0.05
RANGE_DB = 20.0
MERGE_GAP_S = 0.5
MIN_EVENT_S = 0.1
REFERENCE = "reference.tsv"
RECIPE = "scenes.json"


# -- ground truth of one clip ------------------------------------------------------------------------
def clip_events(x: np.ndarray, sr: int, window_s: float = WINDOW_S, range_db: float = RANGE_DB,
                gap_s: float = MERGE_GAP_S, min_s: float = MIN_EVENT_S) -> list[tuple[float, float]]:
    """``(start, end)`` seconds where the mono clip ``x`` sounds (see the module doc)."""
    hop = max(1, int(round(window_s * sr)))
    n = len(x) // hop
    if n == 0:
        return []
    energy = (np.asarray(x[: n * hop], np.float64).reshape(n, hop) ** 2).mean(1)
    db = 10 * np.log10(energy + 1e-20)
    on = db >= db.max() - range_db
    return runs_to_events(on, window_s, gap_s, min_s)


def runs_to_events(on: np.ndarray, window_s: float, gap_s: float = MERGE_GAP_S,
                   min_s: float = MIN_EVENT_S) -> list[tuple[float, float]]:
    """Runs of True in a per-window mask as ``(start, end)`` seconds: gaps shorter than ``gap_s``
    merged, then pieces shorter than ``min_s`` dropped."""
    edges = np.diff(np.concatenate([[0], np.asarray(on, np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    merged: list[list[int]] = []
    for s, e in zip(starts, ends):
        if merged and (s - merged[-1][1]) * window_s < gap_s:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s * window_s, e * window_s) for s, e in merged if (e - s) * window_s >= min_s - 1e-9]


# -- corpus ---------------------------------------------------------------------------------------------
@dataclass
class Clip:
    path: str  # absolute
    cls: str
    category: str


def corpus_clips(split: str, corpora=CORPORA) -> dict[str, list[Clip]]:
    """class -> clips of ``split`` in every corpus whose manifest exists (sorted by path)."""
    pools: dict[str, list[Clip]] = {c: [] for c in CLASSES}
    for root in corpora:
        manifest = Path(root) / "manifest.csv"
        if not manifest.is_file():
            continue
        with open(manifest, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("split") != split or row.get("class") not in pools:
                    continue
                category = row.get("category", "")
                # the donateacry categories 'burping' and 'tired' are often no cry at all
                if row["class"] == "baby_cry" and category.startswith("infant_cry/") and "hungry" not in category:
                    continue
                if row["class"] == "other" and category not in BACKGROUND_CATEGORIES:
                    continue
                pools[row["class"]].append(Clip(str(Path(root) / row["path"]), row["class"], category))
    for c in pools:
        pools[c].sort(key=lambda clip: clip.path)
    return pools


def load_clip(clip: Clip, sr: int = SR) -> np.ndarray:
    import soundfile as sf

    from cocktail_cli.audio import resample

    x, rate = sf.read(clip.path, dtype="float32", always_2d=True)
    x = x.mean(1)
    return resample(x[None], rate, sr)[0] if rate != sr else x


# -- one scene --------------------------------------------------------------------------------------------
@dataclass
class Scene:
    mixture: np.ndarray  # (samples,)
    stems: np.ndarray  # (C, samples) in class order, summing to the mixture
    events: list[tuple[str, float, float]]  # (class, onset, offset) seconds, sorted by onset
    recipe: list[dict] = field(default_factory=list)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-12)


def _sounding_rms(x: np.ndarray, sr: int) -> float:
    """RMS over the clip's sounding windows (its ground-truth extent), not its silences."""
    parts = [x[int(s * sr):int(e * sr)] for s, e in clip_events(x, sr)]
    return _rms(np.concatenate(parts)) if parts else _rms(x)


def background(clips: list[np.ndarray], n: int, sr: int = SR, crossfade_s: float = CROSSFADE_S) -> np.ndarray:
    """Clips (each brought to the same RMS) chained with cross-fades, cycling, to ``n`` samples."""
    fade = int(crossfade_s * sr)
    out = np.zeros(n, np.float64)
    pos, k = 0, 0
    while pos < n:
        x = clips[k % len(clips)].astype(np.float64)
        x = x / _rms(x)
        if len(x) > 2 * fade:
            ramp = np.linspace(0, 1, fade)
            x[:fade] *= ramp if pos > 0 else 1
            x[-fade:] *= ramp[::-1]
        m = min(len(x), n - pos)
        out[pos:pos + m] += x[:m]
        pos += max(len(x) - fade, 1) if len(x) > 2 * fade else len(x)
        k += 1
    return out * 10 ** (BACKGROUND_DBFS / 20)


def place_events(rng: np.random.Generator, pools: dict[str, list], load, sr: int = SR, seconds: float = SECONDS,
                 n_samples: int | None = None) -> tuple[np.ndarray, list[tuple[str, float, float]], list[dict]]:
    """0..MAX_EVENTS clips of each target class at random onsets, scaled against the background.

    ``pools``: class -> clips; ``load(clip)``: the clip as mono float at ``sr``. Returns the stems
    of the four classes ``(4, samples)`` at unit background RMS (scaled by the caller), the events
    and the recipe."""
    n = n_samples or int(round(seconds * sr))
    stems = np.zeros((len(TARGET_CLASSES), n), np.float64)
    events, recipe = [], []
    for ci, cls in enumerate(TARGET_CLASSES):
        count = int(rng.integers(0, MAX_EVENTS + 1)) if pools.get(cls) else 0
        taken: list[tuple[float, float]] = []
        for _ in range(count):
            clip = pools[cls][int(rng.integers(len(pools[cls])))]
            x = np.asarray(load(clip), np.float64)[: int(MAX_CLIP_S * sr)]
            x = x[: n]
            extent = clip_events(x, sr)
            if not extent:
                continue
            snr = float(rng.uniform(*SNR_DB))
            for _try in range(50):  # an onset where this class is not already sounding
                onset = float(rng.uniform(0, max((n - len(x)) / sr, 0)))
                spans = [(onset + s, onset + e) for s, e in extent]
                if all(e + MERGE_GAP_S <= ts or s >= te + MERGE_GAP_S for s, e in spans for ts, te in taken):
                    break
            else:
                continue
            start = int(round(onset * sr))
            m = min(len(x), n - start)
            stems[ci, start:start + m] += x[:m] * (10 ** (snr / 20) / _sounding_rms(x, sr))
            taken += spans
            events += [(cls, s, min(e, n / sr)) for s, e in spans if s < n / sr]
            recipe.append({"class": cls, "clip": getattr(clip, "path", str(clip)), "onset": round(onset, 4),
                           "snr_db": round(snr, 2)})
    return stems, sorted(events, key=lambda e: (e[1], e[0])), recipe


def build_scene(rng: np.random.Generator, pools: dict[str, list], load, sr: int = SR, seconds: float = SECONDS) -> Scene:
    """One scene from ``pools`` (class -> clips; ``load(clip)`` gives a clip's mono samples at ``sr``)."""
    n = int(round(seconds * sr))
    others = pools.get("other") or []
    bg = np.zeros(n)
    recipe: list[dict] = []
    if others:
        categories = sorted({getattr(c, "category", "") for c in others})
        category = categories[int(rng.integers(len(categories)))]
        chosen = [c for c in others if getattr(c, "category", "") == category]
        order = rng.permutation(len(chosen))
        bg = background([np.asarray(load(chosen[i])) for i in order], n, sr)
        recipe.append({"class": "other", "category": category, "clips": [getattr(chosen[i], "path", str(chosen[i])) for i in order]})
    target, events, placed = place_events(rng, pools, load, sr, seconds, n)
    level = 10 ** (BACKGROUND_DBFS / 20)  # events are relative to the background's RMS
    stems = np.concatenate([target * level, bg[None]]).astype(np.float64)
    mixture = stems.sum(0)
    peak = float(np.max(np.abs(mixture)))
    if peak > 0.89:  # -1 dBFS: one gain for everything, so 16-bit output does not clip
        stems *= 0.89 / peak
        mixture *= 0.89 / peak
    return Scene(mixture.astype(np.float32), stems.astype(np.float32), events, recipe + placed)


# -- files ------------------------------------------------------------------------------------------------
def scene_name(i: int) -> str:
    return f"scene_{i:03d}.wav"


def write_reference(path: str | os.PathLike, events_by_file: dict[str, list[tuple[str, float, float]]]) -> None:
    """DCASE TSV: a header, then ``filename onset offset event_label`` per event."""
    from cocktail_cli.atomic import atomic_open

    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write("filename\tonset\toffset\tevent_label\n")
        for name, events in events_by_file.items():
            for cls, onset, offset in events:
                fh.write(f"{name}\t{onset:.3f}\t{offset:.3f}\t{cls}\n")


def read_reference(path: str | os.PathLike) -> dict[str, list[tuple[str, float, float]]]:
    out: dict[str, list[tuple[str, float, float]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            out.setdefault(row["filename"], []).append((row["event_label"], float(row["onset"]), float(row["offset"])))
    return out


def iter_scenes(pools: dict[str, list[Clip]], count: int, seed: int = 0, sr: int = SR, seconds: float = SECONDS):
    """Scene ``i`` of ``count`` from ``pools`` (:func:`corpus_clips`), drawn with the seed
    ``[seed, i]``, each clip read once."""
    cache: dict[str, np.ndarray] = {}

    def load(clip: Clip) -> np.ndarray:
        if clip.path not in cache:
            cache[clip.path] = load_clip(clip, sr)
        return cache[clip.path]

    for i in range(count):
        yield build_scene(np.random.default_rng([seed, i]), pools, load, sr, seconds)


def build_scenes(out: str | os.PathLike, split: str = "test", count: int = 40, seed: int = 0, corpora=CORPORA,
                 log=print) -> Path:
    """Write ``count`` scenes, ``reference.tsv`` and ``scenes.json`` into ``out``; returns it.

    A folder already holding the same recipe (split, count, seed and corpora) is reused as is."""
    import soundfile as sf

    from cocktail_cli.atomic import atomic_write_text

    out = Path(out)
    pools = corpus_clips(split, corpora)
    missing = [c for c in CLASSES if not pools[c]]
    if missing:
        raise SystemExit(f"no {split} clips of {', '.join(missing)} in {', '.join(map(str, corpora))}")
    settings = {"split": split, "count": count, "seed": seed, "sample_rate": SR, "seconds": SECONDS,
                "corpora": [str(c) for c in corpora if (Path(c) / "manifest.csv").is_file()],
                "snr_db": list(SNR_DB), "ground_truth": {"window_s": WINDOW_S, "range_db": RANGE_DB,
                                                         "merge_gap_s": MERGE_GAP_S, "min_event_s": MIN_EVENT_S}}
    recipe_path = out / RECIPE
    if recipe_path.is_file() and (out / REFERENCE).is_file():
        try:
            if json.loads(recipe_path.read_text())["settings"] == settings:
                log(f"{out}: {count} scenes already built with these settings")
                return out
        except (ValueError, KeyError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    events_by_file, recipes = {}, {}
    for i, scene in enumerate(iter_scenes(pools, count, seed)):
        name = scene_name(i)
        from cocktail_cli.atomic import atomic_open

        with atomic_open(out / name, "wb") as fh:
            sf.write(fh, scene.mixture, SR, subtype="PCM_16", format="WAV")
        events_by_file[name] = scene.events
        recipes[name] = scene.recipe
    write_reference(out / REFERENCE, events_by_file)
    atomic_write_text(recipe_path, json.dumps({"settings": settings, "scenes": recipes}, indent=1) + "\n")
    n_events = sum(len(v) for v in events_by_file.values())
    log(f"{out}: {count} scenes of {SECONDS:g} s, {n_events} reference events ({split} split)")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", required=True, help="folder for the scenes, reference.tsv and scenes.json")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", action="append", help="corpus folder(s) with manifest.csv (default: the corpus and corpus-extra)")
    args = ap.parse_args(argv)
    build_scenes(args.out, args.split, args.count, args.seed, tuple(args.corpus) if args.corpus else CORPORA)


if __name__ == "__main__":
    main()
