"""Average the weights of fine-tunes of one network (``checkpoint.average``).

    python scripts/average_checkpoints.py A.pt=0.4 B.pt=0.6 -o OUT.pt [--arch-arg KEY=VALUE ...]

Each source is ``PATH=WEIGHT`` (weights are normalised to sum to 1; ``PATH`` alone weighs 1).
``--arch-arg KEY=VALUE`` (VALUE as JSON, or a plain string) sets a constructor argument of the
result that keeps the weights' names and shapes, e.g. ``block_norm=window``.
The result has no resume state and no mask temperature: calibrate it (``calibrate_temperature.py``).
"""

from __future__ import annotations

import argparse
import sys

from cocktail_cli.checkpoint import average
from cocktail_cli.commands.train import _parse_key_values  # train's --arch-arg parsing
from cocktail_cli.errors import CocktailError


def parse_source(text: str) -> tuple[str, float]:
    path, sep, weight = text.rpartition("=")
    if not sep:
        return text, 1.0
    try:
        return path, float(weight)
    except ValueError:
        raise SystemExit(f"average_checkpoints: {text}: weight '{weight}' is not a number") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", help="PATH=WEIGHT")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--arch-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="set a constructor argument of the result (weights keep their names and shapes)")
    args = ap.parse_args()
    sources: dict[str, float] = {}
    for text in args.sources:
        path, weight = parse_source(text)
        sources[path] = sources.get(path, 0.0) + weight
    try:
        average(sources, args.output, _parse_key_values(args.arch_arg) or None)
    except (CocktailError, ValueError) as err:
        print(f"average_checkpoints: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: " + ", ".join(f"{p} x {w / sum(sources.values()):.3g}" for p, w in sources.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
