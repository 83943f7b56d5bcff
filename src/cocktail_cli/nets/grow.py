"""Widening a trained tcn into a wider one that starts as the same function (issue 27).

Why: the shipped tcn holds about 1,260 CPU-minutes of training; a larger network from scratch
must first relearn all of it (the 10 M stcn stood at about 1 dB on the recipe's val after 45
CPU-minutes, the shipped tcn at 5.2). Widened this way (Net2WiderNet, Chen et al. 2016), the
larger network starts where the shipped one stands and trains on from there.

How, for integer factors: every channel of the residual stream (``channels``) and of each
block's inner width (``hidden``) is copied ``k`` times (tiled); whatever reads those channels
gets its input weights split among the copies in shares that sum to one, so each output is
unchanged. The shares are random (``1/k`` +- up to half of that), not equal: with equal shares
the copies would get equal gradients and stay copies for ever. Tiling leaves every statistic
over channels as it was (a WindowNorm's mean and variance over ``hidden``), and PReLU's slope is
one per layer, so nothing else changes.
"""

from __future__ import annotations

import torch


#: the widths widen_tcn can grow
WIDTHS = ("channels", "hidden")


def widens(old: dict, new: dict) -> bool:
    """Whether tcn config ``new`` is ``old`` with larger widths, each a whole multiple (what
    :func:`widen_tcn` takes)."""
    grown = [k for k in WIDTHS if new.get(k) != old.get(k)]
    return bool(grown) and all(new[k] > old[k] and new[k] % old[k] == 0 for k in grown)


def _factor(old: int, new: int, name: str) -> int:
    if new < old or new % old:
        raise ValueError(f"{name} {old} -> {new}: a network widens by a whole factor")
    return new // old


def _tile(w: torch.Tensor, k: int, dim: int = 0) -> torch.Tensor:
    return torch.cat([w] * k, dim=dim) if k > 1 else w


def _split(w: torch.Tensor, k: int, n: int, gen: torch.Generator, dim: int = 1) -> torch.Tensor:
    """``w``'s first ``n`` inputs (along ``dim``) tiled ``k`` times, each copy scaled by a random
    share (per weight) so the shares of a weight's copies sum to one; inputs after ``n`` as they were."""
    if k == 1:
        return w
    w = w.transpose(0, dim)
    head, tail = w[:n], w[n:]
    noise = (torch.rand((k, *head.shape), generator=gen, dtype=torch.float64) - 0.5) / k  # +- half a share
    shares = 1.0 / k + noise - noise.mean(0, keepdim=True)  # sum to one over the copies
    wide = torch.cat([*(head.double() * shares).to(w.dtype), tail], 0)
    return wide.transpose(0, dim).contiguous()


def widen_tcn(state: dict, old: dict, new: dict, seed: int = 0) -> dict:
    """The state dict of tcn ``state`` (config ``old``) for the wider config ``new`` (larger
    ``channels`` and/or ``hidden``, each by a whole factor; every other argument the same), as the
    same function."""
    kc = _factor(old["channels"], new["channels"], "channels")
    kh = _factor(old["hidden"], new["hidden"], "hidden")
    gen = torch.Generator().manual_seed(seed)
    c = old["channels"]
    out = {}
    for name, w in state.items():
        parts = name.split(".")
        if name.startswith("encode."):  # writes the residual stream
            w = _tile(w, kc)
        elif parts[0] == "blocks":
            layer = parts[2]
            if layer == "expand":  # reads the stream, writes the hidden width
                w = _tile(w, kh)
                if parts[3] == "weight":
                    w = _split(w, kc, c, gen)
            elif layer in ("depthwise", "norm1", "norm2"):  # per hidden channel
                w = _tile(w, kh)
            elif layer == "project":  # reads the hidden width, writes the stream
                if parts[3] == "weight":
                    w = _split(w, kh, w.shape[1], gen)
                w = _tile(w, kc)
        elif name in ("decode.weight", "activity_head.weight", "activity_head.inp.weight"):
            w = _split(w, kc, c, gen)  # the context head reads [stream, class shares]: only the stream widens
        out[name] = w
    return out
