"""How far a mask can go, by STFT size and kind of mask: ideal masks on a set of test mixtures.

    python scripts/oracle_ceilings.py runs/recipe/test [--count 100] [--stft 1024/256 ...]

For each STFT setting (``n_fft/hop`` at the files' own rate) and each kind of ideal mask below,
separates each mixture with the mask computed from its references and prints a markdown table of
mean SI-SDRi over the stems that are present with another (``cocktail eval``'s definition and its
``stem_status``), per class. SDR/SIR/SAR are left out: BSS Eval is most of ``eval``'s time and the
question here is only the ceiling's height.

Why: issue 14 asks whether a complex mask or a different STFT size would help, measured rather
than assumed. A trained network is far below every ceiling (the shipped models score 4-5 dB where
the ideal ratio mask scores 15), so a ceiling is not the whole answer, but it bounds what each
choice can buy and costs no training.

Mask kinds:

- ``irm1``: |S_i| / sum_j |S_j|, what cocktail's real-valued softmax masks can express at best
  (``cocktail eval --oracle irm1``'s mask, :func:`cocktail_cli.evaluate.oracle_masks`);
- ``psm``: the phase-sensitive mask Re(S_i / X), clipped to [0, 1]: a real mask trained towards
  the phase-aware target;
- ``cmask``: the complex ratio S_i / X with its magnitude bounded at ``--bound`` (1.5): what a
  bounded complex mask could reach (unbounded, it reconstructs the references exactly).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from cocktail_cli.classes import CLASSES
from cocktail_cli.evaluate import find_mixtures, load_mixture, oracle_masks, stem_status
from cocktail_cli.metrics import si_sdr
from cocktail_cli.stft import STFTConfig

KINDS = ("irm1", "psm", "cmask")


def ideal_masks(ref_spec: torch.Tensor, mix_spec: torch.Tensor, kind: str, bound: float = 1.5) -> torch.Tensor:
    """``(C, bins, frames)`` masks (real or complex) from the references' and mixture's STFTs."""
    if kind == "irm1":
        return oracle_masks(ref_spec, kind)
    safe_mix = torch.where(mix_spec.abs() > 1e-12, mix_spec, torch.full_like(mix_spec, 1e-12))
    ratio = ref_spec / safe_mix
    if kind == "psm":
        return ratio.real.clamp(0.0, 1.0)
    if kind == "cmask":
        return ratio / (ratio.abs() / bound).clamp_min(1.0)
    raise ValueError(f"unknown mask kind '{kind}' (choose {', '.join(KINDS)})")


def ceilings(data_dir: Path, stfts: list[tuple[int, int]], count: int, bound: float = 1.5) -> dict:
    """``{(n_fft, hop, kind): [[si_sdri, ...] per class]}`` over the first ``count`` mixtures."""
    scores: dict = {}
    for mixture_id, folder in find_mixtures(data_dir)[:count]:
        data = load_mixture(folder, id=mixture_id, require_mix=True)
        scored = [c for c, s in enumerate(stem_status(data.references, data.mixture)) if s == "active"]
        mix_si_sdr = si_sdr(np.broadcast_to(data.mixture, data.references.shape), data.references)
        refs = torch.from_numpy(np.ascontiguousarray(data.references))
        mix = torch.from_numpy(np.ascontiguousarray(data.mixture))
        for n_fft, hop in stfts:
            stft = STFTConfig(sample_rate=data.sample_rate, n_fft=n_fft, hop=hop)
            ref_spec, mix_spec = stft.stft(refs), stft.stft(mix)
            for kind in KINDS:
                masks = ideal_masks(ref_spec, mix_spec, kind, bound)
                estimates = stft.istft(masks * mix_spec, length=mix.shape[-1]).numpy()
                per_class = scores.setdefault((n_fft, hop, kind), [[] for _ in CLASSES])
                improvement = si_sdr(estimates, data.references) - mix_si_sdr
                for c in scored:
                    per_class[c].append(float(improvement[c]))
    return scores


def table(scores: dict) -> str:
    lines = [
        "| n_fft / hop | mask | mean SI-SDRi (dB) | " + " | ".join(CLASSES) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in CLASSES) + " |",
    ]
    for (n_fft, hop, kind), per_class in scores.items():
        everything = [v for values in per_class for v in values]
        cells = [f"{np.mean(v):.2f}" if v else "-" for v in per_class]
        mean = f"{np.mean(everything):.2f}" if everything else "-"
        lines.append(f"| {n_fft} / {hop} | {kind} | {mean} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _stft_setting(text: str) -> tuple[int, int]:
    n_fft, _, hop = text.partition("/")
    return int(n_fft), int(hop or int(n_fft) // 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a synth set (folder of mixture folders, or its root)")
    ap.add_argument("--count", type=int, default=100, help="first N mixtures (default 100)")
    ap.add_argument(
        "--stft", action="append", type=_stft_setting, default=None,
        help="n_fft/hop at the files' rate (repeatable; default 512/128, 1024/256 (cocktail's), 2048/512)",
    )
    ap.add_argument("--bound", type=float, default=1.5, help="largest magnitude of the complex mask")
    args = ap.parse_args(argv)
    stfts = args.stft or [(512, 128), (1024, 256), (2048, 512)]
    print(table(ceilings(args.data, stfts, args.count, args.bound)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
