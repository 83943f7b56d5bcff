"""Issue 27's checks of a model, as numbers: context invariance, hard negatives, barks under speech.

    python scripts/scene_checks.py [--model PATH] [--json]

- context: synthetic sirens and cries (seeds no training run draws) and corpus test clips of every
  class, alone and in other contexts (shares.context_variants): the largest change of the sound's
  share in its own stem;
- hard negatives: corpus and corpus-extra test clips of "other" categories that resemble a class
  (horns, birds, other animals, bells, phones, alarms): the median share left in ``other``;
- overlaps: test dog clips under test speech clips (the bark 0-6 dB under the speech): the median
  share of the bark in ``dog``;
- absent stems: the median level of the four target stems that hold nothing of a hard-negative clip.
The tests in tests/test_shipped_model.py assert the same figures for the shipped model.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cocktail_cli.classes import CLASSES  # noqa: E402
from cocktail_cli.cries import draw_cry, render_cry  # noqa: E402
from cocktail_cli.separator import Separator  # noqa: E402
from cocktail_cli.shares import context_variants, part_shares, stem_shares  # noqa: E402
from cocktail_cli.sirens import draw_siren, render_siren  # noqa: E402

CORPUS = Path(os.environ.get("CORPUS", ROOT.parent / "shared" / "corpus"))
EXTRA = Path(os.environ.get("COCKTAIL_CORPUS_EXTRA", ROOT / "data" / "corpus-extra"))
#: "other" categories that resemble a class: horns, birds, other animals, bells, phones, alarms
HARD_NEGATIVE = ("car_horn", "bird", "animal", "horse", "cattle", "elephant", "goat", "chicken", "sheep", "pig",
                 "lion", "camel", "flamingo", "peacock", "bell", "phone", "alarm", "horn")
#: Seeds for synthetic test sounds: training draws its own from (seed, step, example) streams of
#: numpy's generator, never from these plain integer seeds.
HELD_OUT = (90001, 90002, 90003)


def synthetic_sounds(sr: int, seconds: float = 3.0) -> list[tuple[str, str, np.ndarray]]:
    n = int(seconds * sr)
    out = []
    for seed in HELD_OUT:
        out.append(("siren", f"synthetic siren {seed}", render_siren(draw_siren(np.random.default_rng(seed)), n, sr) * 0.5))
        out.append(("baby_cry", f"synthetic cry {seed}", render_cry(draw_cry(np.random.default_rng(seed)), n, sr) * 0.5))
    return out


def manifest_rows(root: Path, split: str = "test") -> list[dict]:
    path = root / "manifest.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [dict(r, root=str(root)) for r in csv.DictReader(fh) if r["split"] == split]


def read_mono(row: dict, sr: int, seconds: float | None = None) -> np.ndarray:
    from cocktail_cli.audio import resample

    x, rate = sf.read(os.path.join(row["root"], row["path"]), dtype="float32", always_2d=True)
    x = x.mean(1)
    if rate != sr:
        x = resample(x, rate, sr)
    if seconds is not None:
        x = x[: int(seconds * sr)]
    return x.astype(np.float32)


def corpus_sounds(sr: int, per_class: int = 2, seconds: float = 3.0) -> list[tuple[str, str, np.ndarray]]:
    rows = manifest_rows(CORPUS)
    out = []
    for cls in CLASSES:
        picked = sorted((r for r in rows if r["class"] == cls), key=lambda r: r["path"])[:: max(1, len(rows) // 97)][:per_class]
        for r in picked:
            out.append((cls, r["path"], read_mono(r, sr, seconds)))
    return out


def context_check(sep: Separator, sounds, sr: int) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for cls, name, x in sounds:
        c = CLASSES.index(cls)
        base = stem_shares(sep, x, sr)[c]
        changes = {k: float(stem_shares(sep, v, sr)[c] - base) for k, v in context_variants(x, sr, rng).items()}
        worst = max(changes, key=lambda k: abs(changes[k]))
        out.append({"class": cls, "sound": name, "alone": float(base), "worst": worst, "change": changes[worst]})
    return out


def hard_negatives(sep: Separator, sr: int, limit: int = 60) -> list[dict]:
    rows = [r for root in (CORPUS, EXTRA) for r in manifest_rows(root)
            if r["class"] == "other" and any(h in r["category"] for h in HARD_NEGATIVE)]
    rows = sorted(rows, key=lambda r: r["path"])[:: max(1, len(rows) // limit)][:limit]
    out = []
    for r in rows:
        shares = stem_shares(sep, read_mono(r, sr, 6.0), sr)
        out.append({"category": r["category"], "clip": r["path"], "other": float(shares[-1]),
                    "absent_db": float(10 * np.log10(max(np.median(shares[:4]), 1e-12)))})
    return out


def barks_under_speech(sep: Separator, sr: int, count: int = 16, seconds: float = 4.0) -> list[float]:
    rows = manifest_rows(CORPUS)
    dogs = sorted((r for r in rows if r["class"] == "dog"), key=lambda r: r["path"])
    speech = sorted((r for r in rows if r["class"] == "speech"), key=lambda r: r["path"])
    rng = np.random.default_rng(27)
    n = int(seconds * sr)
    out = []
    for k in range(min(count, len(dogs))):
        bark = read_mono(dogs[k], sr, seconds)
        talk = read_mono(speech[int(rng.integers(len(speech)))], sr, seconds)
        bark, talk = np.pad(bark, (0, n - len(bark))), np.pad(talk, (0, n - len(talk)))
        rms = lambda v: float(np.sqrt(np.mean(v**2))) or 1.0  # noqa: E731
        bark *= rms(talk) / rms(bark) * 10 ** (-rng.uniform(0, 6) / 20)  # under the speech
        out.append(float(part_shares(sep, bark + talk, bark)[CLASSES.index("dog")]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint (default: the shipped model)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sep = Separator.from_checkpoint(args.model)
    sr = sep.sample_rate
    report = {"context": context_check(sep, synthetic_sounds(sr) + corpus_sounds(sr), sr)}
    if CORPUS.exists():
        report["hard_negatives"] = hard_negatives(sep, sr)
        report["barks_under_speech"] = barks_under_speech(sep, sr)
    if args.json:
        print(json.dumps(report))
        return 0
    print("context: largest change of a sound's share in its own stem")
    for r in report["context"]:
        print(f"  {r['class']:9s} alone {r['alone']:.2f}  change {r['change']:+.2f} ({r['worst']})  {r['sound'][:50]}")
    print(f"  worst |change|: {max(abs(r['change']) for r in report['context']):.2f}")
    if "hard_negatives" in report:
        hn = report["hard_negatives"]
        print(f"hard negatives ({len(hn)} clips): median share in other {np.median([r['other'] for r in hn]):.2f}, "
              f"median absent-stem level {np.median([r['absent_db'] for r in hn]):.1f} dB")
        worst = sorted(hn, key=lambda r: r["other"])[:5]
        for r in worst:
            print(f"  {r['other']:.2f} {r['category']:20s} {r['clip'][:60]}")
        b = report["barks_under_speech"]
        print(f"barks under speech ({len(b)}): median share in dog {np.median(b):.2f} (min {min(b):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
