"""Per-class SI-SDRi of a model when the same test mixtures come as files of other rates and formats.

    python scripts/rate_table.py SYNTH_SPLIT_DIR [--model PATH] [--count 200] [--rates 8000,16000,22050,44100,48000]

Each mixture of a ``cocktail synth`` split (``mix.wav`` + one WAV per stem) is resampled (soxr
VHQ) to every rate and written as 16-bit PCM or left as float, separated at that rate, and each
active stem is scored at that rate against its reference brought to the same rate: SI-SDRi is
SI-SDR(estimate) - SI-SDR(mixture). Prints a markdown table, one row per rate and format (mean over
active stems per class, and the mean over all), and the change against 22.05 kHz 16-bit.
``tests/test_robust.py`` asserts the same invariance on a few mixtures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from cocktail_cli.classes import CLASSES
from cocktail_cli.metrics import si_sdr
from cocktail_cli.separator import Separator


def as_file(x: np.ndarray, sr: int, rate: int, bits: int) -> np.ndarray:
    y = soxr.resample(x.astype(np.float64), sr, rate, quality="VHQ") if rate != sr else x.astype(np.float64)
    if bits:
        y = np.round(y * 2 ** (bits - 1)) / 2 ** (bits - 1)
    return y.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("split_dir", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--rates", default="8000,16000,22050,44100,48000")
    args = ap.parse_args()
    sep = Separator.from_checkpoint(args.model)
    folders = sorted(p for p in args.split_dir.iterdir() if (p / "mix.wav").is_file())[: args.count]
    rates = [int(r) for r in args.rates.split(",")]
    variants = [(r, b) for r in rates for b in (16, 0)]
    scores = {v: [[] for _ in CLASSES] for v in variants}
    for folder in folders:
        stems, sr = [], None
        for cls in CLASSES:
            x, sr = sf.read(str(folder / f"{cls}.wav"), dtype="float32")
            stems.append(x)
        stems = np.stack(stems)
        active = [c for c in range(len(CLASSES)) if np.abs(stems[c]).max() > 0]
        for rate, bits in variants:
            mix = as_file(stems.sum(0), sr, rate, bits)
            est = sep.separate(mix[None], rate)[:, 0].astype(np.float64)
            for c in active:
                ref = as_file(stems[c], sr, rate, 0).astype(np.float64)
                scores[rate, bits][c].append(si_sdr(est[c], ref) - si_sdr(mix.astype(np.float64), ref))
    base = None
    print(f"{len(folders)} mixtures of {args.split_dir}; mean SI-SDRi (dB) per class, change against 22.05 kHz 16-bit in brackets\n")
    print("| input | " + " | ".join(CLASSES) + " | mean |")
    print("| --- | " + " | ".join("---" for _ in CLASSES) + " | --- |")
    for rate, bits in sorted(variants, key=lambda v: (v != (22050, 16), v[0], -v[1])):
        per = [float(np.mean(s)) if s else float("nan") for s in scores[rate, bits]]
        overall = float(np.mean([x for s in scores[rate, bits] for x in s]))
        row = per + [overall]
        if base is None:
            base = row
            cells = [f"{v:.2f}" for v in row]
        else:
            cells = [f"{v:.2f} ({v - b:+.2f})" for v, b in zip(row, base)]
        print(f"| {rate / 1000:g} kHz {'16-bit' if bits else 'float'} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
