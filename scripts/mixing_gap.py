"""Which part of the mixing recipe a model finds hard: the same clips, one setting changed at a time.

    python scripts/mixing_gap.py MODEL [--sources ../shared/corpus --sources data/corpus-extra]
                                 [--count 100] [--seed 0] [--only vocoder,default] [--split val]

Draws ``--count`` mixtures from the val clips (``--split``) of the source folders with ``train``'s on-the-fly
mixing (:class:`cocktail_cli.mixing.MixConfig`), once with its defaults and once per variant below,
and scores the model on each set with ``train.validate`` (mean SI-SDRi over present stems, per
class). Prints a markdown table. Each variant consumes the random draws differently, so its
mixtures differ from the default set's beyond the one setting: differences under about 0.5 dB
(100 mixtures) are noise. ``--split train`` draws from the train clips instead: the gap between
the two says whether the model is short of capacity (both low) or of data (train far above val).

Why: a model can score well on its own validation mixtures and much worse on ``synth`` test sets.
At step 4,555 the recipe's unet lost 3.1 dB when every source went through the phase vocoder
that ``synth`` applies, and under 1 dB to anything else here; at step 6,212 it scored 6.60 dB
with its own mixing and 2.88 with the synth-like one (synth's own val set, first 100: 3.38).
"""

from __future__ import annotations

import argparse

import torch

from cocktail_cli.checkpoint import load_checkpoint
from cocktail_cli.classes import CLASSES
from cocktail_cli.mixing import FixedMixtures, MixConfig, load_bank
from cocktail_cli.train import TrainConfig, validate

NO_FILE_EFFECTS = {"roundtrip_prob": 0.0, "lowpass_prob": 0.0, "noise_prob": 0.0, "bits": (0,), "bits_prob": (1.0,)}
VARIANTS = {
    "default": ("the training mixing (MixConfig defaults)", {}),
    "real-sirens": ("no synthetic sirens", {"synthetic_siren_prob": 0.0}),
    "two-others": ('always two "other" clips, as synth', {"others": (2, 2)}),
    "no-file-effects": ("no round trip, low-pass, noise or quantisation", NO_FILE_EFFECTS),
    "vocoder": ("every source through the phase vocoder, as synth", {"vocoder_prob": 1.0}),
}
VARIANTS["synth-like"] = (
    "all of the above at once: about what synth makes",
    {k: v for _, changes in VARIANTS.values() for k, v in changes.items()},
)
# not part of synth-like: the other way from synth's two "other" clips (phase 9's mixing)
VARIANTS["zero-others"] = ('zero to two "other" clips (a sound may be heard alone)', {"others": (0, 2)})


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"  # None: no mixture had that class present


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--sources", action="append", default=None, help="source folder (repeatable)")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="val", help="the clips to draw from (default val; train: the gap to val)")
    ap.add_argument("--only", default=None, help=f"comma-separated variants (default all: {','.join(VARIANTS)})")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)} (choose from {', '.join(VARIANTS)})")
    sources = args.sources or ["../shared/corpus", "data/corpus-extra"]
    loaded = load_checkpoint(args.model)
    cfg = TrainConfig(store=None, output="-", sources=sources, arch=loaded.arch).resolved()
    bank = load_bank(sources, args.split, loaded.stft.sample_rate)
    print(f"{args.count} mixtures of the {args.split} clips of {', '.join(sources)} per row; mean SI-SDRi (dB) over present stems\n")
    print("| mixing | mean | " + " | ".join(CLASSES) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in CLASSES) + " |")
    with torch.inference_mode():
        for name in names:
            label, changes = VARIANTS[name]
            data = FixedMixtures(bank, MixConfig(**changes), args.count, args.seed)
            r = validate(cfg, loaded.model, loaded.stft, data, args.count, data.samples, "cpu")
            cells = " | ".join(_fmt(r["classes"][c]["si_sdri"]) for c in CLASSES)
            print(f"| {label} | {_fmt(r['si_sdri'])} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
