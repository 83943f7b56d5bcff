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


# -- 2. start-up: the CLI loads without the heavy libraries ----------------------------------------------
HEAVY = ("torch", "numpy", "scipy", "soundfile", "soxr", "librosa", "mir_eval")

_PROBE = """
import json, os, sys
args = json.loads(sys.argv[1])
env = json.loads(sys.argv[2])
os.environ.update(env)
from cocktail_cli.cli import app
if args is not None:
    try:
        app(args=args, prog_name="cocktail")
    except SystemExit:
        pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[3])))
print("\\nHEAVY=" + json.dumps(heavy))
"""


@pytest.mark.parametrize(
    "args,env",
    [
        (None, {}),  # import cocktail_cli.cli
        (["--version"], {}),
        (["--help"], {}),
        (["separate", "--help"], {}),
        (["synth", "--help"], {}),
        (["prep", "--help"], {}),
        (["train", "--help"], {}),
        (["eval", "--help"], {}),
        ([], {"_COCKTAIL_COMPLETE": "complete_bash", "COMP_WORDS": "cocktail separate --fo", "COMP_CWORD": "2"}),
        ([], {"_COCKTAIL_COMPLETE": "complete_bash", "COMP_WORDS": "cocktail synth x --split ", "COMP_CWORD": "4"}),
    ],
    ids=["import", "version", "help", "separate-help", "synth-help", "prep-help", "train-help", "eval-help",
         "complete-option", "complete-choice"],
)
def test_cli_start_up_does_not_import_torch_or_numpy(args, env):
    import json
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(env), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stdout.rsplit("HEAVY=", 1)[1])
    assert heavy == [], f"cocktail {args} imported {heavy}"
    if env:  # the completion request did answer
        assert "--format" in proc.stdout or "train" in proc.stdout


def test_option_defaults_mirror_the_library():
    from cocktail_cli import defaults, evaluate, metrics, nets, separate, sources

    assert defaults.SPLITS == sources.SPLITS
    assert defaults.ORACLES == evaluate.ORACLES
    assert defaults.ABSENT_THRESHOLD_DB == metrics.ABSENT_THRESHOLD_DB
    assert defaults.ARCH_NAMES == tuple(nets.ARCHS) and defaults.DEFAULT_ARCH == nets.DEFAULT_ARCH
    assert defaults.DEFAULT_TEMPLATE == separate.DEFAULT_TEMPLATE
