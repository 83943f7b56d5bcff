"""``cocktail synth``: the Typer layer over :mod:`cocktail_cli.synth`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from . import OUT_ALIAS
from ..console import emit_json, interactive, make_progress
from ..defaults import SPLITS

if TYPE_CHECKING:
    from rich.table import Table

    from ..synth import SynthSummary

# numpy, scipy and librosa are imported inside the command: --help and completion stay fast.

Split = Enum("Split", {name: name for name in SPLITS}, type=str)

HELP = """Build training mixtures from single-class clips (the paper's recipe, at scale).

SOURCE_DIR holds one folder per class (baby_cry, siren, dog, speech, other; any audio format,
nested folders allowed), or is a corpus with a manifest.csv whose split column is honoured.
Without a manifest, files are split about 80/10/10 by a hash of their path.

Writes OUT_DIR/<split>/<id>/mix.wav plus one WAV per class (silent when inactive) and
OUT_DIR/<split>/metadata.jsonl with every mixture's recipe. Same seed, same files, whatever
--jobs. Rerun the same command after an interruption to finish the set.

Examples:

  cocktail synth ../shared/corpus -o mixes --count 2000 --jobs 2 --seed 1

  cocktail synth clips/ -o mixes --split val --count 200 --lowpass-prob 0.5

  cocktail synth ../shared/corpus data/corpus-extra -o mixes --split test --count 600
"""


def synth(
    source_dir: list[Path] = typer.Argument(
        ..., help="One folder per class, or a corpus with manifest.csv; several folders (e.g. the corpus and corpus-extra) are drawn from as one set.",
        show_default=False, metavar="SOURCE_DIR...",
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder (mixtures go to OUT_DIR/<split>/).", show_default=False),
    count: int = typer.Option(1000, "--count", "-n", min=0, help="Mixtures in the split (the paper made 100,000)."),
    seconds: float = typer.Option(5.0, "--seconds", help="Mixture length in seconds."),
    sample_rate: int = typer.Option(44100, "--sample-rate", help="Output sample rate in Hz."),
    active_prob: float = typer.Option(0.7, "--active-prob", help="Chance each target class (not 'other') is present."),
    others: int = typer.Option(2, "--others", help="Clips overlaid to form the 'other' stem."),
    pitch: str = typer.Option("2,4", "--pitch", help="Pitch shifts in semitones, each +- (2,4 = one of -4,-2,2,4); 0 = off."),
    stretch: str = typer.Option("1.2", "--stretch", help="Time-stretch factors, one drawn per source (1.2 = 20% longer); 1 = off."),
    gain_db: float = typer.Option(5.0, "--gain-db", help="Each source's level is drawn in +-this many dB around a common level."),
    lowpass_prob: float = typer.Option(0.0, "--lowpass-prob", help="Chance a source is low-passed at a random 3-8 kHz cutoff."),
    synthetic_sirens: float = typer.Option(
        0.0, "--synthetic-sirens", help="Chance a drawn siren is synthesised (wail, yelp, hi-lo, piercer) instead of a corpus clip."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; with the same files it fixes every mixture."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes."),
    split: Split = typer.Option("train", "--split", help="Which split to build (never shares a clip with the others)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON line on stdout."),
) -> None:
    from ..atomic import remove_stale_temps
    from ..console import err_console
    from ..synth import SynthConfig, _remove_leftovers, parse_list, synthesize

    config = SynthConfig(
        seconds=seconds,
        sample_rate=sample_rate,
        active_prob=active_prob,
        others=others,
        pitch=parse_list(pitch, "--pitch"),
        stretch=parse_list(stretch, "--stretch"),
        gain_db=gain_db,
        lowpass_prob=lowpass_prob,
        synthetic_sirens=synthetic_sirens,
        seed=seed,
    )
    with make_progress(enabled=interactive()) as bar:
        tasks: dict[str, int] = {}
        labels = {"variants": "pitch/stretch variants", "mixtures": "mixtures"}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(labels.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        cache = Path(out_dir) / ".cache"
        remove_stale_temps(cache, depth=None)  # what a run killed outright (kill -9) left there
        try:
            summary = synthesize([str(d) for d in source_dir], out_dir, config, count=count, jobs=jobs, split=split.value, progress=progress)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM; the workers have stopped: remove what they left
            if (Path(out_dir) / split.value).is_dir():
                _remove_leftovers(Path(out_dir) / split.value)
            remove_stale_temps(cache, depth=None, mine=True)
            raise
    if as_json:
        emit_json(summary.to_dict())
    else:
        err_console.print(summary_table(summary))


def summary_table(summary: SynthSummary) -> Table:
    from rich.table import Table

    table = Table(title=f"synth: {summary.out_dir}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("mixtures written", str(summary.written))
    table.add_row("already there", str(summary.already_done))
    table.add_row("mixtures in split", str(summary.total))
    for cls, n in summary.active.items():
        share = f" ({n / summary.total:.0%})" if summary.total else ""
        table.add_row(f"  with {cls}", f"{n}{share}")
    table.add_row("skipped files", str(len(summary.skipped)))
    table.add_row("variants computed", str(summary.variants_built))
    table.add_row("time", f"{summary.seconds:.1f} s")
    table.add_row("mixtures/s", f"{summary.mixtures_per_s:.1f}")
    return table


def register(app: typer.Typer) -> None:
    app.command("synth", help=HELP, context_settings=OUT_ALIAS)(synth)
