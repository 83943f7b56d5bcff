"""Listen-style check for the model card: real recordings of one class, alone, through a model.

    python scripts/clean_clips.py [--model PATH] [--corpus ../shared/corpus] [--split test] [--per-class 40]
                                  [--rate 44100] [--bits 16]

For up to ``--per-class`` clips of each class in the split (at least 2 s long), a 3 s excerpt at
-26 dBFS RMS is played as a file at ``--rate`` (resampled; 16-bit, or float with ``--bits 0``),
separated, and the share of the output energy in each stem is measured. A class with no clip in
the split (corpus-extra has no test baby cries) is left out. Prints,
per class, the median share that lands in the clip's own stem and where the rest goes (medians
over clips), as a markdown table. Clips cut from one recording (the manifest's ``group``) are
not independent: the corpus's 26 test sirens are three recordings, 16 clips of one. So the table
also gives how many recordings the clips come from and, for the own stem, the median over
recordings of each recording's median. ``tests/test_shipped_model.py`` asserts a floor on the same
measure for 8 clips a class.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from cocktail_cli.audio import audio_info, resample
from cocktail_cli.classes import CLASSES
from cocktail_cli.errors import CocktailError
from cocktail_cli.separator import Separator
from cocktail_cli.sources import scan_sources

def excerpt(path: str, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A random ``seconds`` of the clip (mono, native rate, zero-padded if short) at -26 dBFS RMS."""
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    x, n = data.mean(1), int(seconds * sr)
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    start = rng.integers(0, len(x) - n + 1)
    x = x[start : start + n]
    return x / (np.sqrt(np.mean(x**2)) + 1e-9) * 0.05, sr


def recording_groups(corpus: Path) -> dict[Path, str]:
    """Clip path -> the recording it was cut from (the manifest's ``group``); empty without one,
    and then every clip counts as a recording of its own."""
    manifest = corpus / "manifest.csv"
    if not manifest.exists():
        return {}
    with manifest.open(newline="") as fh:
        return {(corpus / row["path"]).resolve(): row["group"] for row in csv.DictReader(fh) if row.get("group")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "corpus"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=int, default=44100, help="play the clips as a file at this rate (default 44100)")
    ap.add_argument("--bits", type=int, default=16, choices=(0, 16, 24), help="16 or 24-bit PCM, or 0 for float")
    args = ap.parse_args()
    sep = Separator.from_checkpoint(args.model)
    rng = np.random.default_rng(args.seed)
    clips = {}
    for c in CLASSES:  # the split as synth sees it (manifest or folders)
        try:
            found = scan_sources(args.corpus, args.split, [c]).clips[c]
        except CocktailError:
            continue
        clips[c] = [clip.path for clip in found if audio_info(clip.path).duration >= 2.0]
    groups = recording_groups(Path(args.corpus))
    print("| clip class | clips | recordings | " + " | ".join(f"share in {c}" for c in CLASSES) + " | own stem, median of recordings |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in CLASSES) + " | --- |")
    for cls in clips:
        chosen = rng.permutation(len(clips[cls]))[: args.per_class]
        shares, recording = [], []
        for i in chosen:
            recording.append(groups.get(Path(clips[cls][i]).resolve(), clips[cls][i]))
            x, sr = excerpt(clips[cls][i], 3.0, rng)
            x = resample(x, sr, args.rate) if sr != args.rate else x
            if args.bits:
                x = np.round(x * 2 ** (args.bits - 1)) / 2 ** (args.bits - 1)
            stems = sep.separate(x[None].astype(np.float32), args.rate)[:, 0].astype(np.float64)
            energy = (stems**2).sum(-1)
            shares.append(energy / energy.sum())
        med = np.median(np.array(shares), axis=0)
        own = np.array(shares)[:, CLASSES.index(cls)]
        by_recording = [np.median(own[[r == g for r in recording]]) for g in sorted(set(recording))]
        cells = [f"**{m:.2f}**" if c == cls else f"{m:.2f}" for c, m in zip(CLASSES, med)]
        print(f"| {cls} | {len(chosen)} | {len(by_recording)} | " + " | ".join(cells) + f" | {np.median(by_recording):.2f} |")


if __name__ == "__main__":
    main()
