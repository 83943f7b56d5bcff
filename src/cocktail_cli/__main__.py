"""The ``cocktail`` command's entry point (also ``python -m cocktail_cli``).

``cocktail --version`` is answered here, before Typer and Rich are imported: that import is
three quarters of the command's start-up (bench/startup.py). ``--help`` pages are printed by
:mod:`.helppages` from a model of what Typer would print, and by Typer where that module declines.
"""

from __future__ import annotations

import sys


def _run_cli() -> None:
    from .cli import main as run

    run()


def main() -> None:
    args = sys.argv[1:]
    if args == ["--version"]:
        from . import __version__

        print(f"cocktail {__version__}")
        return
    from . import helppages

    status = helppages.show(args)
    if status is not None:
        sys.exit(status)
    _run_cli()


if __name__ == "__main__":
    main()
