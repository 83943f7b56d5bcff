"""``cocktail eval``: the thin Typer layer over :mod:`cocktail_cli.evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import console
from ..classes import CLASSES
from ..defaults import ABSENT_THRESHOLD_DB, ORACLES
from ..errors import CocktailError
from ..precision import PRECISIONS, resolve as resolve_precision

# numpy, scipy and torch are imported inside the command: --help and completion stay fast.

HELP = f"""Score separated stems: SDR, SIR, SAR (BSS Eval v3, as mir_eval), SI-SDR and SI-SDRi per stem.

Stems are files named by class ({', '.join(f'{c}.wav' for c in CLASSES)}). The mixture used as the estimate of every stem is always scored (the floor); --oracle adds ideal masks (the ceiling of a mask-based separator). Stems whose reference is silent are [i]absent[/i]: they report leakage (the estimate's energy relative to the mixture, dB) instead of SDR. A stem that is the only active one is [i]solo[/i]: its SI-SDR is reported apart and it is left out of SI-SDRi.

Stems of different lengths are trimmed to the shortest (with a warning); multi-channel stems are mixed down to mono (with a warning); different sample rates or channel counts between files of one mixture, missing stems and NaN/inf samples are errors naming the file.

[b]Examples[/b]

  [dim]# file mode: one folder of estimates against one folder of references (+ mix.wav)[/dim]
  cocktail eval --reference refs/mix001 --estimate out/mix001

  [dim]# folders of such folders, matched by name; per-stem CSV and JSON lines[/dim]
  cocktail eval --reference data/test --estimate separated/ --csv scores.csv --json > scores.jsonl

  [dim]# model mode: separate every mixture of a synth output with the default model[/dim]
  cocktail eval data/ --split test

  [dim]# a trained model, next to the ideal ratio mask[/dim]
  cocktail eval data/test --model runs/my-model.pt --oracle irm1

  [dim]# oracle mode alone: the ceiling of a binary mask on these references[/dim]
  cocktail eval --reference data/test --oracle ibm

  [dim]# a picture of the scores per class: model, floor and oracle (irm1)[/dim]
  cocktail eval data/ --split test --plot scores.png

  [dim]# the 2nd of 4 slices, on one of four machines; JSON lines to merge afterwards[/dim]
  cocktail eval data/ --split test --shard 2/4 --json > scores-2.jsonl
"""


def register(app: typer.Typer) -> None:
    app.command("eval", help=HELP, no_args_is_help=True)(eval_command)


def eval_command(
    data_dir: Optional[Path] = typer.Argument(
        None, help="Model mode: a synth output (root, split folder, or folder of mixture folders).", show_default=False
    ),
    reference: Optional[Path] = typer.Option(
        None, "--reference", "-r", help="File mode: folder of reference stems (+ mix.wav), or folder of such folders.", show_default=False
    ),
    estimate: Optional[Path] = typer.Option(
        None, "--estimate", "-e", help="File mode: folder of estimated stems, or folder of such folders (same names).", show_default=False
    ),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Model mode: checkpoint written by cocktail train (default: the shipped model, or $COCKTAIL_MODEL).", show_default=False
    ),
    no_model: bool = typer.Option(False, "--no-model", help="Model mode without the model: score only the floor (and --oracle)."),
    split: Optional[str] = typer.Option(None, "--split", help="Model mode on a synth root: only this split (e.g. test).", show_default=False),
    oracle: Optional[str] = typer.Option(
        None, "--oracle", help=f"Also score ideal masks from the references: {', '.join(ORACLES)}.", show_default=False
    ),
    absent_db: float = typer.Option(
        ABSENT_THRESHOLD_DB, "--absent-db", help="A reference this many dB below the mixture (or all zero) counts as absent."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score only the first N mixtures.", show_default=False),
    precision: str = typer.Option("auto", "--precision", help="Model mode: the network's arithmetic, auto (bf16 where the CPU has AMX-BF16 or AVX512-BF16, or on CUDA), bf16 or fp32."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Mixtures scored in parallel (worker processes, one CPU thread each)."),
    json_out: bool = typer.Option(
        False, "--json", help="Print one JSON object per mixture, then one aggregate object, on standard output."
    ),
    csv_path: Optional[Path] = typer.Option(
        None, "--csv", help="Write one row per mixture, system and stem to this CSV file.", show_default=False
    ),
    plot: Optional[Path] = typer.Option(
        None, "--plot", metavar="FILE.png", show_default=False,
        help="Also draw per-class SI-SDRi and SDR beside the floor (mixture) and the oracle into this PNG (the oracle is --oracle's, irm1 if none is given; needs matplotlib).",
    ),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N", show_default=False,
        help="Score only the K-th of N slices of the mixtures sorted by id (K from 1): N jobs with K = 1..N score each once.",
    ),
) -> None:
    from ..shard import parse_shard, select_shard

    shard_range = parse_shard(shard)
    from ..evaluate import EvalJob, aggregate, plan, run, write_csv

    if oracle is not None and oracle not in ORACLES:
        raise CocktailError(f"--oracle must be one of {', '.join(ORACLES)} (got '{oracle}')")
    if plot is not None:
        from ..plot import check_matplotlib

        check_matplotlib()
        if plot.suffix.lower() != ".png":
            raise CocktailError("--plot writes a PNG; give a file name ending in .png", str(plot))
        if oracle is None:  # the picture puts the model between the floor and the ceiling
            oracle = "irm1"
            console.info("--plot: also scoring the ideal ratio mask (irm1) as the oracle")
    job = EvalJob(
        reference=reference, estimate=estimate, data_dir=data_dir, model=model, use_model=not no_model,
        split=split, oracle=oracle, threshold_db=absent_db, limit=limit, precision=precision.lower(),
    )
    if job.precision not in PRECISIONS:
        raise CocktailError(f"--precision must be one of {', '.join(PRECISIONS)} (got '{precision}')")
    job.items = plan(job)
    if shard_range is not None:
        planned = len(job.items)
        job.items = select_shard(job.items, shard_range, key=lambda item: item[0])
        console.info(f"shard {shard}: {len(job.items)} of {planned} mixtures")
        if not job.items:
            return
    if csv_path is not None:
        from ..atomic import remove_stale_temps

        remove_stale_temps(csv_path.parent)  # a CSV half-written by a run killed outright (kill -9)
    if plot is not None:
        from ..atomic import remove_stale_temps
        from ..audio import check_writable_dir

        check_writable_dir(plot.parent or Path("."), create=False)
        remove_stale_temps(plot.parent)
    results: list[dict] = []
    failed: list[str] = []
    with console.make_progress() as progress:
        task = progress.add_task("scoring", total=len(job.items))
        for outcome in run(job, warn=console.warn, on_step=lambda: progress.advance(task), jobs=jobs):
            if outcome.error is not None:
                failed.append(outcome.id)
                console.error(str(outcome.error))
                if json_out:
                    console.emit_json({"type": "error", "id": outcome.id, "error": str(outcome.error)})
                continue
            results.append(outcome.result)
            if json_out:
                console.emit_json(outcome.result)
    summary = aggregate(results, failed=len(failed))
    if data_dir is not None and not no_model:
        summary["precision"] = resolve_precision(job.precision)
    if json_out:
        console.emit_json(summary)
    if csv_path is not None:
        write_csv(csv_path, results)
    if plot is not None and results:
        from ..plot import plot_scores

        plot_scores(plot, summary)
        console.info(f"picture of the scores in {plot}")
    if results and (not json_out or console.interactive()):
        out = console.err_console
        if out.width < 110:  # piped stderr defaults to 80 columns, too narrow for the metrics
            from rich.console import Console

            out = Console(stderr=True, width=110, highlight=False)
        out.print(summary_table(summary))
    if failed:
        console.error(f"{len(failed)} of {len(job.items)} mixture(s) failed")
        raise typer.Exit(1)


def _fmt(value: float | None) -> str:
    # 0.1 dB in the table (--json and --csv keep every digit): ten columns then fit 80 terminal columns
    return "-" if value is None else f"{value:.1f}"


def summary_table(summary: dict):
    """Per class (and overall), one row per system: metric means, leakage median, counts."""
    from rich import box
    from rich.table import Table

    from ..evaluate import order_systems

    systems = order_systems(summary["systems"])
    oracles = [name for name in systems if name.startswith("oracle_")]
    caption = "leak: median leakage of absent stems; solo: mean SI-SDR of solo stems; n: active/absent/solo"
    if oracles:
        caption += "; " + ", ".join(name.removeprefix("oracle_") for name in oracles) + ": oracle masks"
    table = Table(
        title=f"cocktail eval: {summary['mixtures']} mixture(s); dB, means over active stems",
        caption=caption,
        # the box's blank divider alone between columns, no edges: the table fits 80 terminal columns
        box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False,
    )
    for name in ("stem", "system"):
        table.add_column(name, no_wrap=True)
    for name in ("SDR", "SIR", "SAR", "SI-SDR", "SI-SDRi", "leak", "solo", "n"):
        table.add_column(name, justify="right", no_wrap=True)
    for cls in (*CLASSES, "overall"):
        for k, name in enumerate(systems):
            block = summary["systems"][name]
            s = block["overall"] if cls == "overall" else block["classes"][cls]
            table.add_row(
                cls if k == 0 else "",
                name.removeprefix("oracle_"),
                _fmt(s["sdr_mean"]),
                _fmt(s["sir_mean"]),
                _fmt(s["sar_mean"]),
                _fmt(s["si_sdr_mean"]),
                _fmt(s["si_sdri_mean"]),
                _fmt(s["leakage_db_median"]),
                _fmt(s["solo_si_sdr_mean"]),
                f"{s['active']}/{s['absent']}/{s['solo']}",
                end_section=k == len(systems) - 1,
            )
    return table
