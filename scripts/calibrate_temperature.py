"""Calibrate a model's mask temperature on validation mixtures and export it with the setting.

    python scripts/calibrate_temperature.py MODEL DATA_DIR -o OUT.pt [--split val]
        [--temperatures 1,1.2,1.4,1.6,1.8] [--max-leakage -20] [--limit N]

Separates each mixture of ``DATA_DIR/<split>`` (a `cocktail synth` folder) at every temperature
(``separator.soften``: masks ** (1/T), renormalised; for softmax masks, logits / T), scores it
as `cocktail eval` does (SI-SDRi over active stems, leakage over absent ones) and prints a
markdown table. The temperature with the best mean SI-SDRi whose median leakage stays at or
below ``--max-leakage`` dB is written into OUT (``checkpoint.export``, which also drops resume
state). Tune on val; report on test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cocktail_cli.checkpoint import export, load_checkpoint
from cocktail_cli.evaluate import find_mixtures, load_mixture, stem_status
from cocktail_cli.metrics import leakage_db, si_sdr
from cocktail_cli.separator import Separator


def score(sep: Separator, mixtures: list) -> tuple[float, float]:
    """Mean SI-SDRi over active stems and median leakage (dB) over absent stems.

    The same definitions as ``evaluate.score_stems``, without its BSS Eval (SDR/SIR/SAR), which
    would make each temperature cost as much as a full `cocktail eval`.
    """
    gains, leaks = [], []
    for data in mixtures:
        est = sep.separate(data.mixture_audio, data.sample_rate).astype(np.float64).mean(axis=1)
        status = stem_status(data.references, data.mixture)
        improvement = si_sdr(est, data.references) - si_sdr(np.broadcast_to(data.mixture, est.shape), data.references)
        for i, s in enumerate(status):
            if s == "active":
                gains.append(float(improvement[i]))
            elif s == "absent":
                leaks.append(leakage_db(est[i], data.mixture))
    return float(np.mean(gains)), float(np.median(leaks)) if leaks else float("-inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--temperatures", default="1,1.2,1.4,1.6,1.8")
    ap.add_argument("--max-leakage", type=float, default=-20.0)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    loaded = load_checkpoint(args.model)
    items = find_mixtures(args.data_dir, args.split)[: args.limit]
    mixtures = [load_mixture(folder, id=mid, require_mix=True) for mid, folder in items]
    print(f"{len(mixtures)} mixtures of {args.data_dir}/{args.split}\n")
    print("| temperature | mean SI-SDRi dB | median leakage dB |\n| --- | --- | --- |")
    results = {}
    for t in (float(v) for v in args.temperatures.split(",")):
        results[t] = score(Separator.from_loaded(loaded, mask_temperature=t), mixtures)
        print(f"| {t:g} | {results[t][0]:.2f} | {results[t][1]:.1f} |", flush=True)
    allowed = {t: r for t, r in results.items() if r[1] <= args.max_leakage} or {1.0: results.get(1.0, (0, 0))}
    best = max(allowed, key=lambda t: allowed[t][0])
    export(args.model, args.output, inference={"mask_temperature": best})
    print(f"\nchose temperature {best:g}; wrote {args.output}")


if __name__ == "__main__":
    main()
