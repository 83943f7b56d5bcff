"""Shrink a resume checkpoint for a handover in the repository (at most 40 MB, always
``models/checkpoints/resume.pt``).

Default: the optimizer's moments (two thirds of the file) to bfloat16; the weights stay float32.
``torch.optim`` casts the moments back to the parameters' dtype when ``--resume`` loads them, so the
run continues (not bit-exactly: each moment loses its low 16 bits once). A 2.1 M-parameter tcn:
25.4 MB -> 17.0 MB (moments within 0.4% of their float32 values).

``--pack`` (a network too large for that, e.g. the 10.8 M stcn: 130 MB, 87 MB with bf16 moments): weights in
float16, Adam's second moment as 8 bits of its log2 per element (its square root, which sets each
weight's step size, came back within 2.2% for the stcn at step 1,911), the first moment dropped (it
rebuilds within about 10 steps at beta1 0.9, and starting it at zero makes the first steps
smaller, not larger): 130.3 -> 32.7 MB. A packed file is unpacked into a run folder before
``--resume`` (train refuses it with that hint):

    python scripts/compact_resume.py runs/p14/model.pt models/checkpoints/resume.pt
    python scripts/compact_resume.py --pack runs/l27/model.pt models/checkpoints/resume.pt
    python scripts/compact_resume.py --unpack models/checkpoints/resume.pt runs/l27/model.pt
"""
from __future__ import annotations

import argparse
import os

import torch

from cocktail_cli.checkpoint import PACKED_RESUME as PACKED


def compact(obj):
    """Every floating-point tensor under ``obj`` in bfloat16 (optimizer ``step`` counters are
    float32 scalars: kept, they are not moments)."""
    if torch.is_tensor(obj):
        return obj.to(torch.bfloat16) if obj.is_floating_point() and obj.dim() > 0 else obj
    if isinstance(obj, dict):
        return {k: compact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(compact(v) for v in obj)
    return obj


def quantize_log2(v: torch.Tensor) -> dict:
    """A non-negative tensor as uint8 steps of its log2 between its smallest and largest positive
    value; 0 stays exactly 0 (a weight that never had a gradient)."""
    v = v.float()
    positive = v > 0
    if not positive.any():
        return {"q": torch.zeros(v.shape, dtype=torch.uint8), "lo": 0.0, "hi": 0.0}
    logs = v[positive].log2()
    lo, hi = float(logs.min()), float(logs.max())
    q = torch.zeros(v.shape, dtype=torch.uint8)
    span = max(hi - lo, 1e-12)
    q[positive] = (1 + torch.round((logs - lo) / span * 254)).to(torch.uint8)
    return {"q": q, "lo": lo, "hi": hi}


def dequantize_log2(packed: dict) -> torch.Tensor:
    q = packed["q"]
    out = torch.zeros(q.shape, dtype=torch.float32)
    nz = q > 0
    out[nz] = torch.exp2(packed["lo"] + (q[nz].float() - 1) / 254 * (packed["hi"] - packed["lo"]))
    return out


def _optimizer(resume: dict, src: str) -> tuple[str, dict]:
    for key in ("optimizer", "optim", "optimizer_state"):
        if key in resume:
            return key, resume[key]
    raise SystemExit(f"{src}: no optimizer state under 'resume' (keys: {', '.join(resume)})")


def pack(ckpt: dict, src: str) -> dict:
    _, opt = _optimizer(ckpt["resume"], src)
    for state in opt["state"].values():
        if "exp_avg_sq" not in state:
            raise SystemExit(f"{src}: --pack knows Adam's moments only (found {', '.join(state)})")
        state.pop("exp_avg", None)
        state["exp_avg_sq"] = quantize_log2(state["exp_avg_sq"])
    ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    ckpt["resume"][PACKED] = "fp16 weights, log2-uint8 exp_avg_sq, no exp_avg"
    return ckpt


def unpack(ckpt: dict, src: str) -> dict:
    if PACKED not in ckpt.get("resume", {}):
        raise SystemExit(f"{src}: not a packed resume checkpoint")
    _, opt = _optimizer(ckpt["resume"], src)
    for state in opt["state"].values():
        state["exp_avg_sq"] = dequantize_log2(state["exp_avg_sq"])
        state["exp_avg"] = torch.zeros_like(state["exp_avg_sq"])
    ckpt["state_dict"] = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    del ckpt["resume"][PACKED]
    return ckpt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--pack", action="store_true", help="fp16 weights, 8-bit second moment, no first moment")
    mode.add_argument("--unpack", action="store_true", help="a packed file back into one --resume loads")
    args = ap.parse_args()
    ckpt = torch.load(args.src, map_location="cpu", weights_only=False)
    if "resume" not in ckpt:
        raise SystemExit(f"{args.src}: no resume state (an exported model?)")
    if args.pack:
        ckpt = pack(ckpt, args.src)
    elif args.unpack:
        ckpt = unpack(ckpt, args.src)
    else:
        key, opt = _optimizer(ckpt["resume"], args.src)
        ckpt["resume"][key] = compact(opt)
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + ".tmp"
    torch.save(ckpt, tmp)
    os.replace(tmp, args.dst)
    print(f"{args.dst}: {os.path.getsize(args.src) / 1e6:.1f} MB -> {os.path.getsize(args.dst) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
