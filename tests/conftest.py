"""Shared fixtures: small generated audio, so tests never need ../shared."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.classes import CLASSES
from cocktail_cli.cli import main as cli_main

from fake_synth import class_clip
from tones import BANDS


@pytest.fixture
def make_class_tree():
    """Factory: ``make(root, files=12, seconds=1.0, sr=16000, seed=0, signal=None)`` writes
    ``root/<class>/clip_XX.wav`` for the five classes and returns ``root``. ``signal(cls, n, sr,
    rng)`` replaces the default per-class signal (e.g. a pure tone)."""

    def make(root: Path, files: int = 12, seconds: float = 1.0, sr: int = 16000, seed: int = 0, signal=None) -> Path:
        rng = np.random.default_rng(seed)
        gen = signal or class_clip
        for cls in CLASSES:
            (root / cls).mkdir(parents=True, exist_ok=True)
            for k in range(files):
                x = gen(cls, int(seconds * sr), sr, rng)
                sf.write(str(root / cls / f"clip_{k:02d}.wav"), x, sr, subtype="PCM_16")
        return root

    return make


@pytest.fixture
def cli(monkeypatch, capfd):
    """Run ``cocktail ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def _run(*args):
        monkeypatch.setattr(sys, "argv", ["cocktail", *map(str, args)])
        try:
            cli_main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capfd.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def parse_cli():
    """``parse(command, args)``: the values ``cocktail COMMAND ARGS`` would run with (parsed by the
    real CLI, not run); an unknown option or bad value raises."""
    import typer

    from cocktail_cli.cli import app

    def parse(command: str, args: list) -> dict:
        group = typer.main.get_command(app)
        with group.make_context("cocktail", [command], resilient_parsing=True) as root:
            cmd = group.get_command(root, command)
            with cmd.make_context(command, [str(a) for a in args], parent=root) as ctx:
                return ctx.params

    return parse


@pytest.fixture(scope="session")
def band_model(tmp_path_factory):
    """A checkpoint (8 kHz TCN) whose masks give each frequency bin wholly to one class by
    :data:`BANDS`, whatever the input: a tone at 950 Hz is a siren, and its energy share is the
    evidence ``events`` and ``watch`` threshold. Known onsets in, known events out."""
    import torch

    from cocktail_cli.checkpoint import save_checkpoint
    from cocktail_cli.nets import build
    from cocktail_cli.stft import STFTConfig

    stft = STFTConfig(sample_rate=8000, n_fft=256, hop=64)
    model = build("tcn", n_bins=stft.n_bins, channels=8, hidden=16, depth=1, repeats=1)
    freqs = np.arange(stft.n_bins) * stft.sample_rate / stft.n_fft
    owner = np.full(stft.n_bins, CLASSES.index("other"))
    for cls, (lo, hi) in BANDS.items():
        owner[(freqs >= lo) & (freqs < hi)] = CLASSES.index(cls)
    bias = np.zeros((len(CLASSES), stft.n_bins), np.float32)
    bias[owner, np.arange(stft.n_bins)] = 30.0  # softmax: one class owns the bin
    with torch.no_grad():
        model.decode.weight.zero_()
        model.decode.bias.copy_(torch.from_numpy(bias.reshape(-1)))
    path = tmp_path_factory.mktemp("band") / "band.pt"
    save_checkpoint(path, model.eval(), "tcn", stft)
    return str(path)

