"""``cocktail train``: the thin Typer layer over :mod:`cocktail_cli.train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from . import OUT_ALIAS
from ..classes import CLASSES
from ..console import emit_json, interactive, make_progress
from ..defaults import ARCH_NAMES, DEFAULT_ARCH
from ..errors import CocktailError

if TYPE_CHECKING:
    from rich.table import Table

# torch is imported inside the command: --help and completion stay fast.


def _parse_key_values(pairs: list[str] | None, option: str = "--arch-arg") -> dict:
    """``key=value`` pairs of --arch-arg / --mix-arg: values as JSON where they parse, else strings."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CocktailError(f"{option} wants key=value, got '{pair}'")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _fmt(x, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def eval_table(record: dict) -> Table:
    from rich.table import Table

    val = record.get("val") or {}
    classes = val.get("classes", {})
    train_loss = record.get("train_loss") or {}
    title = f"step {record['step']}  epoch {record['epoch']:.2f}  lr {record['lr']:.2e}  {record['wall_seconds'] / 60:.1f} min"
    table = Table(title=title, title_justify="left")
    for col in ("class", "train loss", "val loss", "val SI-SDRi dB", "leakage dB", "active"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for c in CLASSES:
        v = classes.get(c, {})
        table.add_row(c, _fmt(train_loss.get(c), ".3f"), _fmt(v.get("loss"), ".3f"), _fmt(v.get("si_sdri")),
                      _fmt(v.get("leakage_db"), ".1f"), str(v.get("active", "-")))
    table.add_row("[bold]mean[/bold]", _fmt(sum(train_loss.values()) / len(train_loss) if train_loss else None, ".3f"),
                  "", _fmt(val.get("si_sdri")), "", "")
    return table


def register(app: typer.Typer) -> None:
    @app.command("train", context_settings=OUT_ALIAS)
    def train_command(
        store: Path = typer.Argument(None, help="Training store made by `cocktail prep` (or give --sources).", show_default=False),
        sources: list[Path] = typer.Option(
            None, "--sources", "-s",
            help="Source folder (repeatable: e.g. the corpus and corpus-extra): train on mixtures drawn afresh at every step from their train clips, validate on their val clips.",
            show_default=False,
        ),
        mix_arg: list[str] = typer.Option(None, "--mix-arg", help="With --sources: a mixing setting key=value (repeatable), e.g. active_prob=0.6; see cocktail_cli.mixing.MixConfig.", show_default=False),
        floor_db: float = typer.Option(80.0, "--floor-db", help="Feature floor in dB under the input's loudest bin (all but paper); makes the model deaf to the file's noise floor."),
        output: Path = typer.Option(..., "-o", "--out", help="Checkpoint to write (and to continue with --resume)."),
        arch: str = typer.Option(DEFAULT_ARCH, "--arch", help=f"Architecture: {', '.join(ARCH_NAMES)}."),
        arch_arg: list[str] = typer.Option(None, "--arch-arg", help="Constructor argument key=value (repeatable), e.g. channels=128."),
        norm: str = typer.Option(None, "--norm", help="Input normalisation minmax|cmvn|none (default: the store's).", show_default=False),
        optimizer: str = typer.Option(None, "--optimizer", help="adam, adamw or adadelta (default: adam for paper, adamw otherwise).", show_default=False),
        lr: float = typer.Option(None, "--lr", help="Peak learning rate (default: 1e-3 paper, 2e-3 otherwise).", show_default=False),
        rho: float = typer.Option(0.9, "--rho", help="Adadelta's rho (the paper tried 0.9, 0.95, 0.98)."),
        weight_decay: float = typer.Option(None, "--weight-decay", help="Weight decay (default: 0 paper, 0.01 otherwise).", show_default=False),
        schedule: str = typer.Option(None, "--schedule", help="cosine (warmup + cosine decay) or constant (default: constant for paper).", show_default=False),
        warmup: int = typer.Option(None, "--warmup", help="Warmup steps (default: 5% of the run, at most 500).", show_default=False),
        clip: float = typer.Option(None, "--clip", help="Gradient-norm clipping, 0 = off (default: 5, paper 0).", show_default=False),
        batch_size: int = typer.Option(16, "--batch-size", "-b", help="Examples per step (over all processes)."),
        steps: int = typer.Option(None, "--steps", help="Training steps (overrides --epochs).", show_default=False),
        epochs: float = typer.Option(None, "--epochs", help="Passes over the training split (default 1).", show_default=False),
        cpu_minutes: float = typer.Option(None, "--cpu-minutes", help="Stop when the run has used this much CPU time (compare archs at equal compute).", show_default=False),
        seed: int = typer.Option(0, "--seed", help="Seed: weights, data order and augmentation."),
        device: str = typer.Option(None, "--device", help="cpu, cuda or mps (default: the best available).", show_default=False),
        threads: int = typer.Option(None, "--threads", help="Torch threads per process (default: CPU cores / processes).", show_default=False),
        n_fft: int = typer.Option(None, "--n-fft", help="STFT size (default: paper 512, otherwise the store's suggestion, 1024).", show_default=False),
        hop: int = typer.Option(None, "--hop", help="STFT hop (default: n_fft / 4, or the store's suggestion).", show_default=False),
        absent_weight: float = typer.Option(None, "--absent-weight", help="Weight of the absent-stem silence term in the waveform loss (default 0.1).", show_default=False),
        segment: float = typer.Option(None, "--segment", help="Train on random crops of this many seconds (default: whole examples).", show_default=False),
        gain_db: float = typer.Option(6.0, "--gain-db", help="Random gain per stem, +/- dB (0 = off)."),
        remix: bool = typer.Option(False, "--remix", help="Dynamic mixing: build every example from the stems of randomly drawn examples."),
        val: Path = typer.Option(None, "--val", help="Validation store (default: the store's val/dev split).", show_default=False),
        val_split: str = typer.Option(None, "--val-split", help="Validation split name.", show_default=False),
        train_split: str = typer.Option(None, "--train-split", help="Training split name (default: train).", show_default=False),
        val_examples: int = typer.Option(256, "--val-examples", help="Validation examples per evaluation."),
        eval_every: int = typer.Option(None, "--eval-every", help="Evaluate every N steps (default: every epoch, at most 500).", show_default=False),
        checkpoint_minutes: float = typer.Option(10.0, "--checkpoint-minutes", help="Write a checkpoint every N minutes (and at the end)."),
        checkpoint_steps: int = typer.Option(None, "--checkpoint-steps", help="Also write one every N steps.", show_default=False),
        init_from: Path = typer.Option(
            None, "--init-from", help="Fine-tune: start from this checkpoint's weights (its architecture and STFT) with a fresh optimizer; a tcn given --arch-arg channels=/hidden= whole multiples of its own is widened as the same function.", show_default=False
        ),
        precision: str = typer.Option("auto", "--precision", help="The network's arithmetic: auto (bf16 where the CPU has AMX-BF16 or AVX512-BF16, or on CUDA), bf16 or fp32. A run keeps its own on --resume."),
        activity_weight: float = typer.Option(1.0, "--activity-weight", help="Weight of the activity head's per-frame loss (networks with arch arg activity=true)."),
        head_only: bool = typer.Option(False, "--head-only", help="Train only the activity head; every other weight stays --init-from's, so the separation is unchanged."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped (starts fresh if absent)."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing --out without resuming."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per evaluation, and a summary, on stdout."),
    ) -> None:
        """Train a separation model on a store; writes a self-describing checkpoint.

        Examples:
          cocktail train store/ -o model.pt --steps 20000
          cocktail train --sources ../shared/corpus --sources corpus-extra/ -o model.pt --steps 20000
        """
        from ..atomic import remove_stale_temps
        from ..console import err_console
        from ..train import Hooks, TrainConfig, train

        if output.exists() and not resume and not force:
            raise CocktailError("output exists; use --resume to continue it or --force to start over", output)
        remove_stale_temps(output.parent)  # a checkpoint half-written by a run killed outright (kill -9)
        cfg = TrainConfig(
            store=str(store) if store else None, output=str(output),
            sources=[str(p) for p in sources] if sources else None, mix=_parse_key_values(mix_arg, "--mix-arg") if mix_arg else None, floor_db=floor_db, arch=arch, arch_args=_parse_key_values(arch_arg), norm=norm,
            optimizer=optimizer, lr=lr, rho=rho, weight_decay=weight_decay, schedule=schedule, warmup=warmup,
            clip=clip, batch_size=batch_size, steps=steps, epochs=epochs, seed=seed, device=device, threads=threads,
            segment=segment, absent_weight=absent_weight, n_fft=n_fft, hop=hop, gain_db=gain_db, remix=remix, train_split=train_split, val_store=str(val) if val else None,
            val_split=val_split, val_examples=val_examples, eval_every=eval_every,
            checkpoint_minutes=checkpoint_minutes, checkpoint_steps=checkpoint_steps, cpu_minutes=cpu_minutes,
            init_from=str(init_from) if init_from else None, precision=precision, activity_weight=activity_weight, head_only=head_only,
        )
        show = interactive() and not as_json
        progress = make_progress(enabled=show)
        task = None

        def on_start(info: dict) -> None:
            nonlocal task
            if as_json:
                emit_json({"event": "start", **info})
            elif show:
                err_console.print(
                    f"{info['arch']} ({info['parameters']:,} parameters) on {info['device']} x{info['world']}, "
                    f"{info['threads']} threads; {info['train_examples']} training examples, "
                    f"{info['val_examples']} for validation; steps {info['start_step']} -> {info['steps']}"
                )
            task = progress.add_task("train", total=info["steps"], completed=info["start_step"])

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, description=f"train loss {loss:.3f}")

        def on_eval(record: dict) -> None:
            if as_json:
                emit_json({"event": "eval", **record})
            else:
                progress.console.print(eval_table(record))

        with progress:
            summary = train(cfg, resume=resume, hooks=Hooks(on_start=on_start, on_step=on_step, on_eval=on_eval))
        if summary.get("rank", 0):
            return
        if as_json:
            emit_json({"event": "done", "output": str(output), **{k: v for k, v in summary.items() if k != "history"}})
        else:
            err_console.print(
                f"wrote {output}: {summary['steps']} steps, {summary['examples']} examples, "
                f"{summary['wall_seconds'] / 60:.1f} min ({summary['cpu_seconds'] / 60:.1f} CPU-min)"
            )
