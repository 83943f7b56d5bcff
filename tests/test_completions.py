"""Shell completions: the committed scripts match what the app generates, and they work."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cocktail_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_completions", ROOT / "scripts" / "gen_completions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()


@pytest.mark.parametrize("shell", sorted(gen.FILES))
def test_committed_completion_scripts_are_current(shell):
    path = ROOT / "completions" / gen.FILES[shell]
    assert path.is_file(), f"{path} missing: run python scripts/gen_completions.py"
    assert path.read_text(encoding="utf-8") == gen.completion_script(shell), (
        f"{path} is stale: run python scripts/gen_completions.py"
    )


@pytest.mark.parametrize("shell", sorted(gen.FILES))
def test_scripts_do_not_change_when_commands_are_added(shell):
    # The scripts ask `cocktail` for candidates at completion time, so a new subcommand must not
    # make the committed files stale.
    grown = typer.Typer(name="cocktail")
    grown.registered_commands = list(app.registered_commands)
    grown.registered_callback = app.registered_callback

    @grown.command("brand-new")
    def brand_new(flag: bool = typer.Option(False, "--flag")) -> None:
        """A command added later."""

    assert gen.completion_script(shell, grown) == gen.completion_script(shell)


def test_zsh_script_starts_with_compdef():
    assert (ROOT / "completions" / "_cocktail").read_text().startswith("#compdef cocktail\n")


def _complete_bash(words: list[str]) -> list[str]:
    bindir = Path(sys.executable).parent
    script = ROOT / "completions" / "cocktail.bash"
    words_sh = " ".join(f"'{w}'" for w in words)
    cmd = (
        f"source '{script}'; COMP_WORDS=({words_sh}); COMP_CWORD={len(words) - 1}; "
        '_cocktail_completion cocktail; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=60)
    return out.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_commands_and_choices():
    if not (Path(sys.executable).parent / "cocktail").exists():
        pytest.skip("the cocktail console script is not installed next to this Python")
    assert "synth" in _complete_bash(["cocktail", "sy"])
    assert _complete_bash(["cocktail", "synth", "x", "--split", ""]) == ["train", "val", "test"]


def test_completion_offers_the_events_and_watch_commands_and_their_options():
    from typer.testing import CliRunner

    def complete(words: str) -> list[str]:
        # what the committed bash script asks the app (completions/cocktail.bash)
        env = {"_COCKTAIL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        result = CliRunner().invoke(app, [], prog_name="cocktail", env=env)
        return result.output.split()

    assert {"events", "eval"} <= set(complete("cocktail ev"))
    assert "watch" in complete("cocktail wa")
    assert {"--json", "--format", "--classes", "--shard", "--plot"} <= set(complete("cocktail events x.wav --"))
    assert {"--device", "--exec", "--json", "--classes"} <= set(complete("cocktail watch --"))
