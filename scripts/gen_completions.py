"""Regenerate the shell completion scripts in completions/ from the cocktail app.

    python scripts/gen_completions.py          # rewrite the files
    python scripts/gen_completions.py --check  # exit 1 if any committed file is stale

The scripts are what ``_COCKTAIL_COMPLETE=source_<shell> cocktail`` prints. They call back into
``cocktail`` for every completion, so they stay valid as subcommands and options are added.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from cocktail_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
#: Shell -> file name, as each shell's completion loader expects it.
FILES = {"bash": "cocktail.bash", "zsh": "_cocktail", "fish": "cocktail.fish"}


def completion_script(shell: str, cli=app) -> str:
    """The app's completion script for ``shell``, generated in-process."""
    result = CliRunner().invoke(cli, [], prog_name="cocktail", env={"_COCKTAIL_COMPLETE": f"source_{shell}"})
    if result.exit_code != 0 or not result.output.strip():
        raise RuntimeError(f"cannot generate the {shell} completion script: {result.output!r}")
    # zsh's compinit only autoloads a file whose first line is "#compdef".
    return result.output.strip() + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for shell, name in FILES.items():
        path = ROOT / "completions" / name
        text = completion_script(shell)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
    if stale:
        print("stale completion scripts (run python scripts/gen_completions.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
