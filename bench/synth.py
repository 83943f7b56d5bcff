"""Speed of ``cocktail synth`` on the real corpus, against the goal of 28 mixtures/s.

The goal: 100,000 mixtures (5 s, 44.1 kHz, full augmentation) in one hour on 2 cores, i.e.
>= 28 mixtures/s with --jobs 2. Three measurements in one run:

1. baseline: the naive design, pitch shift and stretch (librosa) recomputed on every draw,
   timed on a few mixtures in this process and scaled to --jobs ideally;
2. cold: synth with an empty variant cache (pays for the variants its mixtures use);
3. warm: the same mixtures again with the cache filled: the steady rate of a long run.

It prints the warm rate and, as the headline, the projected rate of a full 100,000-mixture run:
every variant of every train clip once (the per-variant cost measured in 2.) plus 100,000
mixtures at the warm rate.

    python bench/synth.py [CORPUS] [--count 400] [--jobs 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cocktail_cli.audio import read_audio, resample
from cocktail_cli.sources import scan_sources
from cocktail_cli.synth import SynthConfig, draw_recipe, synthesize

GOAL = 28.0
FULL_RUN = 100_000
ROOT = Path(__file__).resolve().parents[1]


def naive_rate(corpus: Path, config: SynthConfig, mixtures: int) -> float:
    """Mixtures/s of one process that reads, resamples, pitch-shifts and stretches per draw."""
    import librosa

    sources = scan_sources(corpus, "train")
    n = config.n_samples
    started = time.perf_counter()
    for index in range(mixtures):
        stems = np.zeros((5, n), dtype=np.float32)
        for k, src in enumerate(draw_recipe(index, sources, config)["sources"]):
            audio, sr = read_audio(Path(sources.root) / src["file"], mono=True)
            x = resample(audio[0], sr, config.sample_rate)
            x = librosa.effects.pitch_shift(x, sr=config.sample_rate, n_steps=src["pitch"])
            x = librosa.effects.time_stretch(x, rate=1 / src["stretch"])[:n]
            stems[k % 5, : len(x)] += x
        stems.sum(axis=0)
    return mixtures / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--count", type=int, default=400, help="mixtures per timed run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--baseline-mixtures", type=int, default=3)
    parser.add_argument("--out", help="work folder (default: a temporary one, removed afterwards)")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    if not (corpus / "manifest.csv").is_file():
        print(f"corpus not found: {corpus}", file=sys.stderr)
        return 2
    config = SynthConfig(seed=1)  # the paper's recipe: 5 s, 44.1 kHz, pitch +-2/+-4, stretch 1.2
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cocktail-bench-synth-"))
    try:
        naive = naive_rate(corpus, config, args.baseline_mixtures) * args.jobs
        cold = synthesize(corpus, work, config, count=args.count, jobs=args.jobs)
        shutil.rmtree(work / "train")
        warm = synthesize(corpus, work, config, count=args.count, jobs=args.jobs)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    clips = sum(len(c) for c in scan_sources(corpus, "train").clips.values())
    all_variants = clips * len(config.shapes())
    per_variant = cold.variant_seconds / max(cold.variants_built, 1)
    projected = all_variants * per_variant + FULL_RUN / warm.mixtures_per_s
    effective = FULL_RUN / projected
    print(f"synth bench on {corpus} (--jobs {args.jobs}, {args.count} mixtures of 5 s at 44.1 kHz, full augmentation)")
    print(f"  baseline, per-draw pitch/stretch:  {naive:7.2f} mixtures/s (ideal x{args.jobs} of one process)")
    print(f"  cold cache:                        {cold.mixtures_per_s:7.2f} mixtures/s "
          f"({cold.variants_built} variants in {cold.variant_seconds:.1f} s, {per_variant * 1000:.1f} ms each)")
    print(f"  warm cache (steady rate):          {warm.mixtures_per_s:7.2f} mixtures/s  "
          f"ratio to goal {GOAL:.0f}/s: {warm.mixtures_per_s / GOAL:.2f}  ({warm.mixtures_per_s / naive:.0f}x baseline)")
    print(f"  projected {FULL_RUN:,} mixtures: {projected / 60:.1f} min incl. all {all_variants} variants "
          f"= {effective:.2f} mixtures/s  ratio to goal {GOAL:.0f}/s: {effective / GOAL:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
