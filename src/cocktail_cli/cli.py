"""The ``cocktail`` command: one Typer app; each subcommand lives in ``cocktail_cli.commands``."""

from __future__ import annotations

import importlib
import sys

import typer

from . import __version__
from .console import error
from .errors import CocktailError

def _flags_show_no_type() -> None:
    """Show flags as flags in help: ``--json``, not ``--json <bool>``.

    Typer 0.2x labels every option of the rich help with its type, flags too (``--help <bool>``),
    which reads as if they took a value. A flag gets no label; other options keep theirs. Older
    Typer (no ``display_type_rich``) already leaves flags unlabelled.
    """
    from typer.core import TyperOption

    label = getattr(TyperOption, "display_type_rich", None)
    if label is None or getattr(label, "flags_unlabelled", False):
        return

    def display_type_rich(self, ctx):
        if getattr(self, "is_flag", False) and not getattr(self, "count", False):
            return None
        return label(self, ctx)

    display_type_rich.flags_unlabelled = True
    TyperOption.display_type_rich = display_type_rich


_flags_show_no_type()

app = typer.Typer(
    name="cocktail",
    help=(
        "Split a recording of a busy scene into five stems: baby_cry, siren, dog, speech, other.\n\n"
        "Example: cocktail separate mix.wav -o out/"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Subcommands in help order. Each module defines ``register(app)``.
COMMANDS = ("separate", "synth", "prep", "train", "eval")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cocktail {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Split a recording of a busy scene into five stems: baby_cry, siren, dog, speech, other."""


for _name in COMMANDS:
    try:
        _module = importlib.import_module(f".commands.{_name}", __package__)
    except ModuleNotFoundError as _err:  # a command not built yet is absent, not a stub
        if _err.name != f"{__package__}.commands.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    try:
        app()
    except CocktailError as err:
        error(str(err))
        sys.exit(1)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
