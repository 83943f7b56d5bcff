"""Speed goals for ``cocktail eval``: BSS Eval >= 20x faster than mir_eval in-process, agreeing to
0.01 dB, and the whole ``cocktail eval`` process on files >= 10x a mir_eval script on them.

In-process: five stems of 3 s and of 30 s at 22.05 kHz (sound-like generated references with a
faint noise floor; estimates = references + noise + leakage + a filtered copy), scored by
``mir_eval.separation.bss_eval_sources(..., compute_permutation=False)`` and by
``cocktail_cli.metrics.bss_eval`` in the same run. Both run with one BLAS thread: on a shared
2-core machine, multi-threaded OpenBLAS spins and makes either side's timing meaningless.
mir_eval runs once per length (30 s takes it tens of seconds); ours takes the best of 3.

Whole process: 8 mixtures of five such 10 s stems, 16-bit WAV files (references + estimates):
``cocktail eval --reference R --estimate E --json`` (which also scores the mixture as the floor)
against ``python -c`` reading the same files with soundfile and scoring each mixture with
mir_eval, both as fresh processes with one BLAS thread; wall-clock and CPU time (user + system,
steadier on a busy machine) and their ratios. ``--quick`` skips the 30 s in-process case.

Run: python bench/eval.py            (about 2-4 minutes)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.signal import lfilter
from threadpoolctl import threadpool_limits

from cocktail_cli.classes import CLASSES
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


MIXTURES, MIXTURE_SECONDS = 8, 10

#: The baseline of the whole-process comparison: what a user of mir_eval would run on the files.
MIR_EVAL_SCRIPT = """
import sys, warnings
from pathlib import Path
import numpy as np, soundfile as sf
import mir_eval.separation
warnings.simplefilter("ignore")
classes = sys.argv[3].split(",")
for mixture in sorted(Path(sys.argv[1]).iterdir()):
    refs = np.stack([sf.read(mixture / f"{c}.wav")[0] for c in classes])
    ests = np.stack([sf.read(Path(sys.argv[2]) / mixture.name / f"{c}.wav")[0] for c in classes])
    print(mixture.name, mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=False)[0])
"""


def in_process(lengths) -> bool:
    import mir_eval.separation

    ok = True
    print(f"{'stems':>10} {'mir_eval s':>11} {'ours s':>8} {'ratio':>7} {'max |diff| dB':>14}")
    for seconds in lengths:
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
    return ok


def timed_process(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one run of ``cmd`` (output discarded)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def whole_process() -> bool:
    import soundfile as sf

    cocktail = Path(sys.executable).with_name("cocktail")
    cocktail_cmd = [str(cocktail)] if cocktail.exists() else [sys.executable, "-m", "cocktail_cli"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        ref_root, est_root = Path(tmp, "ref"), Path(tmp, "est")
        rng = np.random.default_rng(10)
        for k in range(MIXTURES):
            refs = references(MIXTURE_SECONDS * SR, rng)
            ests = estimates(refs, rng)
            scale = 0.9 / max(np.abs(refs.sum(0)).max(), np.abs(ests).max())  # 16-bit files must not clip
            for root, stems in ((ref_root, refs), (est_root, ests)):
                (root / f"mix{k}").mkdir(parents=True)
                for name, stem in zip(CLASSES, stems):
                    sf.write(root / f"mix{k}" / f"{name}.wav", scale * stem, SR, subtype="PCM_16")
            sf.write(ref_root / f"mix{k}" / "mix.wav", scale * refs.sum(0), SR, subtype="PCM_16")
        ours_cmd = [*cocktail_cmd, "eval", "--reference", str(ref_root), "--estimate", str(est_root), "--json"]
        theirs_cmd = [sys.executable, "-c", MIR_EVAL_SCRIPT, str(ref_root), str(est_root), ",".join(CLASSES)]
        timed_process(ours_cmd, env)  # bytecode written, files in the page cache, for both
        ours = min((timed_process(ours_cmd, env) for _ in range(3)), key=lambda t: t[1])
        theirs = timed_process(theirs_cmd, env)
        floor = min((timed_process([sys.executable, "-c", "import numpy, soundfile"], env) for _ in range(3)),
                    key=lambda t: t[1])
    print(f"\nwhole process, {MIXTURES} mixtures of 5 x {MIXTURE_SECONDS} s from 16-bit WAV files, one BLAS thread:")
    print(f"{'':34} {'wall s':>7} {'CPU s':>7}")
    print(f"{'python -c import numpy, soundfile':34} {floor[0]:7.2f} {floor[1]:7.2f}")
    print(f"{'mir_eval script':34} {theirs[0]:7.2f} {theirs[1]:7.2f}")
    print(f"{'cocktail eval (+ the mixture floor)':34} {ours[0]:7.2f} {ours[1]:7.2f}")
    wall_ratio, cpu_ratio = theirs[0] / ours[0], theirs[1] / ours[1]
    ok = cpu_ratio >= 10
    print(f"ratio: wall {wall_ratio:.1f}x, CPU {cpu_ratio:.1f}x; goal >= 10x (CPU):", "met" if ok else "NOT met")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 30 s in-process case")
    args = parser.parse_args(argv)
    ok = in_process((3,) if args.quick else (3, 30))
    ok &= whole_process()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
