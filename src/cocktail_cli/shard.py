"""``--shard K/N``: the K-th of N disjoint slices of a batch, for jobs spread over machines.

Slurm job arrays, Kubernetes indexed jobs or GNU parallel over ssh start the same command N
times, each with its own K; together they do every input exactly once::

    from cocktail_cli.shard import parse_shard, select_shard

    shard = parse_shard("2/4")                       # (2, 4); None for no --shard
    mine = select_shard(jobs, shard, key=lambda job: job.input)

The slices are stable: they depend only on the sorted list of inputs (every N-th one, starting
with the K-th), not on the order the inputs were given in, nor on which machine runs which K.
Standard library only: the commands parse the option before importing numpy or torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import CocktailError

T = TypeVar("T")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N; None passes through; anything else is refused."""
    if text is None:
        return None
    parts = text.strip().split("/")
    try:
        k, n = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        k = n = None
    if k is None or n is None or n < 1:
        raise CocktailError(f"--shard takes K/N, the K-th of N slices (e.g. --shard 2/4); got '{text}'")
    if not 1 <= k <= n:
        zero_based = " (indices that count from 0, like Kubernetes' JOB_COMPLETION_INDEX, need + 1)" if k == 0 else ""
        raise CocktailError(f"--shard {text}: K counts from 1 to N{zero_based}")
    return k, n


def select_shard(items: Sequence[T], shard: tuple[int, int] | None, key: Callable[[T], str] = str) -> list[T]:
    """The items of slice ``shard`` = (K, N): every N-th of ``items`` sorted by ``key``, from the
    K-th on, in their original order. ``None`` keeps them all."""
    if shard is None:
        return list(items)
    k, n = shard
    ranked = sorted(range(len(items)), key=lambda i: (key(items[i]), i))
    mine = set(ranked[k - 1 :: n])
    return [item for i, item in enumerate(items) if i in mine]
