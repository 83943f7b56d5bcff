"""The model card's results, from a recipe's work folder: one markdown file to paste.

    python scripts/card_report.py runs/default [--label "default model"] \
        [--compare "paper network=runs/paper" ...] [--curve NAME=TRAIN_JSONL ...]
        [--goal-mean 9 --goal-class 6 --goal-leakage -20]

Reads what ``scripts/recipe.py``'s evaluate stage wrote there (``eval-<set>.jsonl`` of ``cocktail
eval --json``, ``rates.md``, ``clean-<folder>.md``, ``train.jsonl``) and, for each ``--compare``
folder, its ``eval-<set>.jsonl`` of the same sets. Prints:

- per test set, the floor (mixture), every compared system, the model and the oracle per class
  (SDR, SIR, SAR, SI-SDR, SI-SDRi, median leakage), via ``card_table.py``;
- the validation curve (CPU-minutes: val SI-SDRi), or with ``--curve`` each named run's (an
  averaged model has none of its own);
- the rate table and the clean-clip shares as the evaluate stage wrote them;
- the goals, each with its measured figure and whether it is met.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import card_table  # noqa: E402

from cocktail_cli.classes import CLASSES  # noqa: E402

SET_TITLES = {
    "test": "Corpus test split (`cocktail synth` mixtures, the paper's recipe: pitch shift and stretch of every source)",
    "test-extra": "Corpus + corpus-extra test splits (speech and other from both folders' test clips)",
    "test-natural": "Corpus test split, sources as recorded (no pitch shift or stretch)",
}


def _si_sdri(agg: dict, cls: str | None = None) -> float:
    model = agg["systems"]["model"]
    return (model["overall"] if cls is None else model["classes"][cls])["si_sdri_mean"]


def curve(train_log: Path) -> str:
    points = []
    for line in train_log.open() if train_log.exists() else []:
        record = json.loads(line)
        if record.get("event") == "eval" and record.get("val", {}).get("si_sdri") is not None:
            points.append(f"{record['cpu_seconds'] / 60:.0f}: {record['val']['si_sdri']:.2f}")
    return ", ".join(points)


def report(work: Path, label: str, compare: list[tuple[str, Path]], goals: dict,
           curves: list[tuple[str, Path]] | None = None) -> str:
    out = io.StringIO()
    p = lambda *a: print(*a, file=out)  # noqa: E731
    order = list(SET_TITLES)
    sets = sorted(work.glob("eval-*.jsonl"), key=lambda f: order.index(f.stem[5:]) if f.stem[5:] in order else len(order))
    aggs = {}
    for path in sets:
        name = path.stem[len("eval-"):]
        agg = card_table.read_aggregate(path)
        if agg is None:
            continue
        aggs[name] = agg
        p(f"**{SET_TITLES.get(name, name)}** (`{work.name}/{name}`):\n")
        args = [f"{cmp_label}={folder / path.name}" for cmp_label, folder in compare if (folder / path.name).exists()]
        table = io.StringIO()
        with contextlib.redirect_stdout(table):
            card_table.main([*args, f"{label}={path}"])  # floor, compared systems, model, oracle
        p(table.getvalue())
    for name, log in curves or [("", work / "train.jsonl")]:
        trained = curve(log)
        if trained:
            of = f" of {name}" if name else ""
            p(f"**Validation curve{of}** (CPU-minutes: val SI-SDRi dB, 200 mixtures from the val clips):\n\n{trained}\n")
    for name in ["rates.md", *sorted(f.name for f in work.glob("clean-*.md"))]:
        if (work / name).exists():
            p(f"**{name}**:\n\n{(work / name).read_text().strip()}\n")
    if "test" in aggs:
        p("**Against the goals** (corpus test split unless said):\n")
        test = aggs["test"]
        mean = _si_sdri(test)
        worst = min(CLASSES, key=lambda c: _si_sdri(test, c))
        leak = test["systems"]["model"]["overall"].get("leakage_db_median")
        p(f"- mean SI-SDRi {mean:.2f} dB (goal >= {goals['mean']}): {'met' if mean >= goals['mean'] else 'not met'}")
        p(f"- every class >= {goals['cls']} dB: lowest {worst} {_si_sdri(test, worst):.2f} dB: "
          f"{'met' if _si_sdri(test, worst) >= goals['cls'] else 'not met'}")
        if leak is not None:
            p(f"- median absent-stem leakage {leak:.1f} dB (goal <= {goals['leakage']}): "
              f"{'met' if leak <= goals['leakage'] else 'not met'}")
        if "test-extra" in aggs:
            gap = mean - _si_sdri(aggs["test-extra"])
            p(f"- corpus-extra's test split {_si_sdri(aggs['test-extra']):.2f} dB, {gap:+.2f} dB from the corpus "
              f"figure (goal: within 1.5 dB): {'met' if abs(gap) <= 1.5 else 'not met'}")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path)
    ap.add_argument("--label", default="default model")
    ap.add_argument("--compare", action="append", default=[], help="LABEL=WORK_FOLDER of another recipe, same sets")
    ap.add_argument("--curve", action="append", default=[],
                    help="NAME=TRAIN_JSONL: the validation curves to show (default: WORK/train.jsonl)")
    ap.add_argument("--goal-mean", type=float, default=9.0)
    ap.add_argument("--goal-class", type=float, default=6.0)
    ap.add_argument("--goal-leakage", type=float, default=-20.0)
    args = ap.parse_args(argv)
    pairs = {}
    for option, values, form in (("compare", args.compare, "LABEL=WORK_FOLDER"), ("curve", args.curve, "NAME=TRAIN_JSONL")):
        if any("=" not in v for v in values):
            ap.error(f"--{option} takes {form}")
        pairs[option] = [(v.split("=", 1)[0], Path(v.split("=", 1)[1])) for v in values]
    text = report(args.work, args.label, pairs["compare"], {"mean": args.goal_mean, "cls": args.goal_class, "leakage": args.goal_leakage},
                  pairs["curve"])
    if not text:
        print(f"{args.work}: no eval-*.jsonl yet (run the recipe's evaluate stage)", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
