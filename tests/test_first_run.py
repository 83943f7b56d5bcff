"""What a new user hits first: the shipped example, start-up, kills, damaged inputs, terminals, --json."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.classes import CLASSES
from cocktail_cli.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


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


# -- 1. the example recording ----------------------------------------------------------------------
def test_example_is_shipped_with_its_sources():
    from cocktail_cli.shipped import example_path

    path = example_path()
    info = sf.info(str(path))
    assert info.samplerate == 44100 and info.channels == 1 and 10 <= info.duration <= 30
    assert path.stat().st_size < 1_000_000
    sources = (path.parent / "example.md").read_text(encoding="utf-8")
    assert "tuxpaint-stamps-default" in sources and "GPL-2" in sources
    assert (path.parent / "COPYING.example").is_file()


def test_separate_example_writes_five_stems_that_sum_to_it(cli, tmp_path, monkeypatch):
    from cocktail_cli.shipped import example_path

    monkeypatch.delenv("COCKTAIL_MODEL", raising=False)  # the shipped model, as a new user has it
    code, out, err = cli("separate", "--example", "-o", tmp_path)
    assert code == 0, err
    mix, sr = sf.read(str(example_path()), dtype="float32")
    stems = {}
    for name in CLASSES:
        data, stem_sr = sf.read(str(tmp_path / "example" / f"{name}.wav"), dtype="float32")
        assert stem_sr == sr and data.shape == mix.shape
        stems[name] = data
    # 16-bit stems: five roundings of half an LSB each, plus the separator's 1e-4
    np.testing.assert_allclose(sum(stems.values()), mix, atol=2e-4)
    # a busy scene: more than one stem carries sound
    loud = [n for n, x in stems.items() if np.sqrt(np.mean(x**2)) > 10 ** (-40 / 20)]
    assert len(loud) >= 2, loud


def test_separate_without_inputs_names_the_example(cli, tmp_path):
    code, out, err = cli("separate", "-o", tmp_path, "--json")
    assert code == 1 and "--example" in err and len(err.strip().splitlines()) == 1
