"""Help texts and option spellings: flags read as flags, one spelling of the output option."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cocktail_cli.cli import COMMANDS, app

#: Commands that write to -o/--out (the older --output stays as a hidden alias).
WRITERS = ("separate", "synth", "prep", "train")


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_flags_are_shown_without_a_value_type(command):
    text = _help(*([command] if command else []))
    assert "<bool>" not in text
    flag_line = next(line for line in text.splitlines() if "--help" in line)
    assert "<" not in flag_line  # no type label at all on a flag
    if command == "separate":  # options that take a value keep their label
        assert next(line for line in text.splitlines() if "--bits " in line and "│" in line).count("<int>") == 1


@pytest.mark.parametrize("command", WRITERS)
def test_output_option_is_spelled_out_with_output_as_hidden_alias(command, tmp_path, parse_cli):
    text = _help(command)
    assert "--out " in text and "-o" in text and "--output" not in text
    first = {"separate": "mix.wav", "synth": "clips", "prep": "synth", "train": "store"}[command]
    target = str(tmp_path / "dest")
    for spelling in (["-o", target], ["--out", target], ["--output", target], [f"--output={target}"]):
        params = parse_cli(command, [first, *spelling])
        key = {"separate": "out", "synth": "out_dir"}.get(command, "output")
        assert str(params[key]) == target, spelling


def test_output_alias_runs_end_to_end(tmp_path, monkeypatch):
    """``cocktail prep ... --output`` (the old spelling) still does the job, like ``-o``."""
    result = CliRunner().invoke(app, ["prep", str(tmp_path / "missing"), "--output", str(tmp_path / "store")])
    assert result.exit_code != 0
    assert "No such option" not in result.output  # parsed: it failed on the missing input, not the option
    result = CliRunner().invoke(app, ["prep", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "--out" in result.output and "--output" not in result.output


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_installed_command_prints_typers_help_at_80_columns(command):
    """The entry point hands ``--help`` to Typer: every option listed, laid out to the terminal."""
    import subprocess
    import sys

    args = [command] if command else []
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("FORCE_COLOR", "TERMINAL_WIDTH")}
    proc = subprocess.run([sys.executable, "-m", "cocktail_cli", *args, "--help"], capture_output=True, text=True,
                          env={**env, "COLUMNS": "80", "NO_COLOR": "1"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert f"Usage: cocktail {command or ''}".rstrip() in proc.stdout
    expected = _help(*args)  # Typer's own page, via its test runner
    for line in expected.splitlines():
        if line.startswith("│ --"):  # each option of Typer's page is on the installed command's too
            assert line.split()[1] in proc.stdout
