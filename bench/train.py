"""Bench: training throughput (examples/s, data path included) of each architecture at its default
size on 2 torch threads, 3 s examples at 22050 Hz, and inference real-time factor (goal for the
default: <= 0.01). Baseline: the paper's network, in the same run.

The store is made by ``cocktail prep`` from a small generated synth-layout folder (twice: n_fft
1024/256 for ours, the paper's 512/128 for ``paper``). Timing starts after two warm-up steps.

    python bench/train.py [--steps 8] [--batch-size 16] [--threads 2] [--archs tcn,paper,blstm]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cocktail_cli.prep import PrepConfig, prepare  # noqa: E402
from cocktail_cli.separator import Separator  # noqa: E402
from cocktail_cli.train import Hooks, TrainConfig, train  # noqa: E402

STFTS = {"paper": (512, 128)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--archs", default="tcn,paper,blstm")
    args = ap.parse_args()
    from fake_synth import make_synth

    root = Path(tempfile.mkdtemp(prefix="cocktail-bench-train-"))
    try:
        synth = make_synth(root / "synth", {"train": args.batch_size * 2}, seconds=3.5, sr=44100, seed=5)
        rows = []
        for arch in args.archs.split(","):
            n_fft, hop = STFTS.get(arch, (1024, 256))
            store = root / f"store-{n_fft}"
            if not store.exists():
                prepare(synth, store, PrepConfig(n_fft=n_fft, hop=hop))
            stamps: list[float] = []
            hooks = Hooks(on_step=lambda step, total, loss: stamps.append(time.perf_counter()))
            cfg = TrainConfig(store=str(store), output=str(root / f"{arch}.pt"), arch=arch, batch_size=args.batch_size,
                              steps=args.steps + 2, threads=args.threads, device="cpu", eval_every=10**9,
                              checkpoint_minutes=1e9)
            summary = train(cfg, hooks=hooks)
            per_s = args.batch_size * (len(stamps) - 2) / (stamps[-1] - stamps[1])
            sep = Separator.from_checkpoint(root / f"{arch}.pt")
            torch.set_num_threads(args.threads)
            wave = torch.randn(1, 3 * 22050) * 0.1
            with torch.inference_mode():
                sep(wave)
                t = time.perf_counter()
                for _ in range(5):
                    sep(wave)
                rtf = (time.perf_counter() - t) / 5 / 3.0
            rows.append((arch, summary["parameters"], n_fft, hop, per_s, rtf))
        print(f"train, {args.threads} threads, batch {args.batch_size}, 3 s examples at 22050 Hz")
        print(f"{'arch':<6} {'params':>10} {'n_fft/hop':>10} {'examples/s':>11} {'vs paper':>9} {'inference RTF':>14}")
        base = next((r[4] for r in rows if r[0] == "paper"), None)
        for arch, params, n_fft, hop, per_s, rtf in rows:
            ratio = f"{per_s / base:.2f}x" if base else "-"
            print(f"{arch:<6} {params:>10,} {f'{n_fft}/{hop}':>10} {per_s:>11.1f} {ratio:>9} {rtf:>14.4f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
