"""The ``cocktail`` command's entry point (also ``python -m cocktail_cli``).

``cocktail --version`` is answered here, before Typer and Rich are imported: that import is
three quarters of the command's start-up (bench/startup.py). ``--help`` pages come from
:mod:`.helpcache` once they have been rendered.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        print(f"cocktail {__version__}")
        return
    args = sys.argv[1:]
    from . import helpcache

    if helpcache.is_help_request(args):
        def render() -> None:
            from .cli import main as run

            run()

        helpcache.show_help(args, render)
        return
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
