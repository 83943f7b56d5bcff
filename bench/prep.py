"""Bench: ``cocktail prep`` throughput (goal >= 200 examples/s on 2 cores) and flat memory
(peak RSS for 10k examples over peak RSS for 1k; goal about 1.0).

Input: 1,000 synth-layout mixtures (5 s, 44.1 kHz, 16-bit, 70% of target stems active, stems
from tones, chirps and noise), generated once; the 10k input repeats them through symbolic links
(the work per mixture is the same, and the disk holds 1k). Each prep runs in a fresh process so
its peak RSS (main process and its workers) is its own.

    python bench/prep.py [--jobs 2] [--seconds 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

RUN = r"""
import json, resource, sys, time
from cocktail_cli.prep import PrepConfig, prepare
t = time.perf_counter()
s = prepare(sys.argv[1], sys.argv[2], PrepConfig(), jobs=int(sys.argv[3]))
wall = time.perf_counter() - t
me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
n = sum(v["examples"] for v in s.splits.values())
print(json.dumps({"examples": n, "wall": wall, "per_s": n / wall, "rss_main_mb": me / 1024,
                  "rss_worker_mb": kids / 1024, "bytes_per_example": s.bytes_per_example}))
"""


def make_input(root: Path, n_real: int, n_total: int, seconds: float) -> None:
    from fake_synth import make_synth

    base = root / "base"
    if not base.exists():
        make_synth(base, {"train": n_real}, seconds=seconds, sr=44100, seed=7)
    for n in (n_real, n_total):
        split = root / f"in{n}" / "train"
        if split.exists():
            continue
        split.mkdir(parents=True)
        originals = sorted(p for p in (base / "train").iterdir() if p.is_dir())
        for k in range(n):
            os.symlink(originals[k % len(originals)], split / f"m{k:06d}")


def run(src: Path, dst: Path, jobs: int) -> dict:
    if dst.exists():
        shutil.rmtree(dst)
    out = subprocess.run([sys.executable, "-c", RUN, str(src), str(dst), str(jobs)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the generated mixtures")
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=10000)
    ap.add_argument("--keep", type=Path, default=None, help="reuse/keep generated input here")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="cocktail-bench-prep-"))
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    make_input(root, args.small, args.large, args.seconds)
    print(f"input: {args.small} mixtures of {args.seconds:g} s generated in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    try:
        small = run(root / f"in{args.small}", root / "store-small", args.jobs)
        large = run(root / f"in{args.large}", root / "store-large", args.jobs)
    finally:
        for d in ("store-small", "store-large"):
            shutil.rmtree(root / d, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"prep, {args.jobs} jobs, defaults (22050 Hz, 3 s, flac)")
    print(f"{'examples':>9} {'examples/s':>11} {'main RSS MB':>12} {'worker RSS MB':>14} {'bytes/example':>14}")
    for r in (small, large):
        print(f"{r['examples']:>9} {r['per_s']:>11.0f} {r['rss_main_mb']:>12.0f} {r['rss_worker_mb']:>14.0f} {r['bytes_per_example']:>14.0f}")
    peak_small = max(small["rss_main_mb"], small["rss_worker_mb"])
    peak_large = max(large["rss_main_mb"], large["rss_worker_mb"])
    print(f"throughput {large['per_s']:.0f} examples/s: {large['per_s'] / 200:.2f}x the goal of 200/s")
    print(f"peak RSS 10k / 1k: {peak_large / peak_small:.2f} (goal ~1.0: memory flat in dataset size)")


if __name__ == "__main__":
    main()
