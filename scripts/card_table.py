"""Render the model card's results table from ``cocktail eval --json`` outputs.

    python scripts/card_table.py "default model=runs/default/tcn-eval-test.jsonl" \
        "paper network=runs/default/paper-eval-test.jsonl" ...

Each argument is ``label=path``. The mixture floor and the oracle rows are taken from the first
file that has them; every file contributes its model row under its label. All files must score
the same mixtures.
"""

from __future__ import annotations

import json
import sys

from cocktail_cli.classes import CLASSES


def read_aggregate(path) -> dict | None:
    """The last aggregate record of a ``cocktail eval --json`` file, or None if it has none."""
    records = [json.loads(line) for line in open(path) if '"aggregate"' in line]
    return records[-1] if records else None


def aggregate(path: str) -> dict:
    record = read_aggregate(path)
    if record is None:
        sys.exit(f"{path}: no aggregate record (was it written by `cocktail eval --json`?)")
    return record


def fmt(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def main(args: list[str]) -> None:
    if not args or any("=" not in a for a in args):
        sys.exit(__doc__)
    runs = [(label, aggregate(path)) for label, path in (a.split("=", 1) for a in args)]
    counts = {agg["mixtures"] for _, agg in runs}
    if len(counts) != 1:
        sys.exit(f"the files score different numbers of mixtures: {sorted(counts)}")
    rows = [("mixture (floor)", next(a["systems"]["mixture"] for _, a in runs if "mixture" in a["systems"]))]
    rows += [(label, agg["systems"]["model"]) for label, agg in runs]
    oracle = next((a["systems"][k] for _, a in runs for k in a["systems"] if k.startswith("oracle")), None)
    if oracle:
        rows.append(("oracle IRM (ceiling)", oracle))
    print(f"{counts.pop()} mixtures.\n")
    print("| class | system | SDR | SIR | SAR | SI-SDR | SI-SDRi | leakage dB (median) | active / absent / solo |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for cls in list(CLASSES) + ["overall"]:
        for label, system in rows:
            r = system["overall"] if cls == "overall" else system["classes"][cls]
            print(f"| {cls} | {label} | {fmt(r.get('sdr_mean'))} | {fmt(r.get('sir_mean'))} | {fmt(r.get('sar_mean'))} "
                  f"| {fmt(r.get('si_sdr_mean'))} | {fmt(r.get('si_sdri_mean'))} | {fmt(r.get('leakage_db_median'))} "
                  f"| {r.get('active')} / {r.get('absent')} / {r.get('solo')} |")


if __name__ == "__main__":
    main(sys.argv[1:])
