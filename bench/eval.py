"""Speed goal for ``cocktail eval``: our BSS Eval >= 20x faster than mir_eval, agreeing to 0.01 dB.

Five stems of 3 s and of 30 s at 22.05 kHz (sound-like generated references with a faint noise
floor; estimates = references + noise + leakage + a filtered copy), scored by
``mir_eval.separation.bss_eval_sources(..., compute_permutation=False)`` and by
``cocktail_cli.metrics.bss_eval`` in the same run. Both run with one BLAS thread: on a shared
2-core machine, multi-threaded OpenBLAS spins and makes either side's timing meaningless.
mir_eval runs once per length (30 s takes it tens of seconds); ours takes the best of 3.

Run: python bench/eval.py            (about 1-2 minutes)
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from scipy.signal import lfilter
from threadpoolctl import threadpool_limits

from cocktail_cli.metrics import bss_eval

SR = 22050


def references(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    phase = 2 * np.pi * np.cumsum(400 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR
    stems = [
        sum(np.sin(k * phase) / k for k in (1, 2, 3)),  # baby cry: harmonic tone with vibrato
        np.sin(2 * np.pi * np.cumsum(900 + 400 * np.sin(2 * np.pi * 0.8 * t)) / SR),  # siren: chirp
        rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * t) > 0.5),  # dog: noise bursts
        lfilter([1.0], [1.0, -0.95], np.sign(np.sin(2 * np.pi * 140 * t))) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)),
        lfilter([1.0], [1.0, -0.8], rng.standard_normal(n)),  # other: coloured noise
    ]
    return np.stack([s / np.std(s) + 1e-2 * rng.standard_normal(n) for s in stems])


def estimates(refs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ests = refs + 0.2 * rng.standard_normal(refs.shape) + 0.3 * np.roll(refs, 1, axis=0)
    ests[0] = lfilter([1.0, 0.5, -0.2], [1.0], refs[0]) + 0.1 * rng.standard_normal(refs.shape[1])
    return ests


def main() -> int:
    import mir_eval.separation

    ok = True
    print(f"{'stems':>10} {'mir_eval s':>11} {'ours s':>8} {'ratio':>7} {'max |diff| dB':>14}")
    for seconds in (3, 30):
        rng = np.random.default_rng(seconds)
        refs = references(seconds * SR, rng)
        ests = estimates(refs, rng)
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            theirs = np.array(mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=False)[:3])
            t_theirs = time.perf_counter() - t0
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                ours = np.array(bss_eval(refs, ests))
                times.append(time.perf_counter() - t0)
        t_ours = min(times)
        diff = float(np.max(np.abs(ours - theirs)))
        ratio = t_theirs / t_ours
        ok &= ratio >= 20 and diff <= 0.01
        print(f"{f'5 x {seconds} s':>10} {t_theirs:11.2f} {t_ours:8.3f} {ratio:7.1f} {diff:14.2e}")
    print("goal: ratio >= 20, max |diff| <= 0.01 dB:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
