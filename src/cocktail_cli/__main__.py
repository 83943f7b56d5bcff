"""The ``cocktail`` command's entry point (also ``python -m cocktail_cli``).

``cocktail --version`` is answered here, before Typer and Rich are imported: that import is
most of the command's start-up (bench/startup.py). Everything else, ``--help`` included, is Typer's.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        print(f"cocktail {__version__}")
        return
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
