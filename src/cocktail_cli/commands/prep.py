"""``cocktail prep``: the thin Typer layer over :mod:`cocktail_cli.prep`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from . import OUT_ALIAS
from ..console import emit_json, interactive, make_progress, warn
from ..errors import CocktailError

# numpy and soundfile are imported inside the command: --help and completion stay fast.


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def register(app: typer.Typer) -> None:
    @app.command("prep", context_settings=OUT_ALIAS)
    def prep_command(
        synth_dir: Path = typer.Argument(..., help="Output folder of `cocktail synth` (<split>/<mixture_id>/<stem>.wav)."),
        output: Path = typer.Option(..., "-o", "--out", help="Store folder to create (or finish: a rerun resumes)."),
        sample_rate: int = typer.Option(22050, "--sample-rate", help="Resample to this rate (the paper's 22050)."),
        seconds: float = typer.Option(3.0, "--seconds", help="Example length in seconds (the paper's 3)."),
        crops: int = typer.Option(1, "--crops", help="Examples per mixture: 1 = one random crop; N = N crops spread evenly."),
        n_fft: int = typer.Option(1024, "--n-fft", help="Suggested STFT size recorded for train (paper: 512)."),
        hop: int = typer.Option(256, "--hop", help="Suggested STFT hop recorded for train (paper: 128)."),
        norm: str = typer.Option("cmvn", "--norm", help="Default input normalisation for train: minmax (paper), cmvn, none."),
        codec: str = typer.Option("flac", "--codec", help="Stem encoding in the shards: flac (lossless, ~half size) or pcm (raw int16)."),
        shard_size: int = typer.Option(256, "--shard-size", help="Mixtures per shard (the unit of work and of resume)."),
        jobs: int = typer.Option(0, "--jobs", "-j", help="Worker processes (0 = one per CPU core)."),
        seed: int = typer.Option(0, "--seed", help="Seed for crop offsets."),
        limit: int = typer.Option(None, "--limit", help="Use at most this many mixtures per split.", show_default=False),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    ) -> None:
        """Turn a synth output into a training store: resampled, cut, compact, resumable.

        Example: cocktail prep synth/ -o store/ --jobs 2
        """
        from rich.table import Table

        from ..atomic import remove_stale_temps
        from ..console import err_console
        from ..prep import PrepConfig, prepare

        cfg = PrepConfig(sample_rate=sample_rate, seconds=seconds, crops=crops, n_fft=n_fft, hop=hop, norm=norm,
                         codec=codec, shard_size=shard_size, seed=seed)
        n_jobs = jobs if jobs > 0 else (os.cpu_count() or 1)
        progress = make_progress(enabled=interactive() and not as_json)
        task = None

        def on_start(total: int, done: int) -> None:
            nonlocal task
            task = progress.add_task("prep", total=total, completed=done)

        def on_shard(res: dict) -> None:
            progress.advance(task, res["mixtures"] + len(res["errors"]))
            for e in res["errors"]:
                warn(e)

        remove_stale_temps(output, depth=None)  # what a run killed outright (kill -9) left
        with progress:
            try:
                summary = prepare(synth_dir, output, cfg, jobs=n_jobs, limit=limit, on_shard=on_shard, on_start=on_start)
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM; the workers have stopped: remove what they left
                remove_stale_temps(output, depth=None, mine=True)
                raise
        if as_json:
            emit_json(summary.to_dict())
        else:
            table = Table(title=f"store {output}", title_justify="left")
            for col in ("split", "mixtures", "examples", "silent stems", "size", "per example"):
                table.add_column(col, justify="left" if col == "split" else "right")
            for split, row in summary.splits.items():
                per = row["bytes"] / row["examples"] if row["examples"] else 0
                table.add_row(split, str(row["mixtures"]), str(row["examples"]), str(row["silent_stems"]),
                              _human(row["bytes"]), _human(per))
            err_console.print(table)
            err_console.print(
                f"{summary.shards_done} shards written, {summary.shards_skipped} already done; "
                f"{summary.examples_per_second:.0f} examples/s; {_human(summary.bytes_per_example)} per example"
            )
        if summary.errors:
            raise CocktailError(f"{len(summary.errors)} mixture(s) skipped (see warnings); the rest is in {output}")
