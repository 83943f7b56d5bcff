"""The ``cocktail`` command: one Typer app; each subcommand lives in ``cocktail_cli.commands``."""

from __future__ import annotations

import importlib
import os
import signal
import sys

import typer

from . import __version__
from .console import error
from .errors import CocktailError, Terminated

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


def _no_pydantic_without_values() -> None:
    """Do not import pydantic when no option value needs coercing.

    Typer 0.2x coerces every option it processes through a pydantic TypeAdapter built on first
    use. Two cases need none, and cost 120-250 ms of start-up (a third to a half) through that
    import alone:

    - a ``None`` value (an option not given) of a single-valued option: Typer's
      ``RuntimeParam.coerce`` returns ``None`` before it touches the adapter. Every subcommand
      processes the root's ``--help``/``--install-completion``/``--show-completion`` so, and
      `cocktail separate --help` imported pydantic only to get ``None`` back;
    - shell completion (``ctx.resilient_parsing``): the words typed so far only give the
      context for the next one, click drops any value whose processing fails, and nothing runs.

    Anything else is coerced by Typer as before.
    """
    from typer.core import TyperArgument, TyperOption

    for cls in (TyperOption, TyperArgument):
        process = cls.process_value
        if getattr(process, "skips_pydantic", False):
            continue

        def process_value(self, ctx, value, _process=process):
            unbuilt = getattr(self, "_runtime_param", 1) is None  # no adapter yet (1: not this Typer)
            if unbuilt and ctx.resilient_parsing:
                return value
            if unbuilt and value is None and not (self.multiple or self.nargs == -1):
                if self.required:
                    return _process(self, ctx, value)  # Typer's own "missing" error
                return self.callback(ctx, self, None) if self.callback is not None else None
            return _process(self, ctx, value)

        process_value.skips_pydantic = True
        cls.process_value = process_value


def _defer_import(module: str, names: tuple[str, ...]) -> None:
    """Let ``from <module> import <names>`` succeed without loading ``module`` until it is used.

    ``typer.rich_utils``, which renders every ``--help``, imports ``rich.markdown`` (with
    markdown-it) for markup mode "markdown" and ``rich.traceback`` (with rich.syntax) for pretty
    exceptions. cocktail uses "rich" markup and turns pretty exceptions off, so neither is used,
    and together they were 100-150 ms of a 450 ms ``--help``. A stand-in module answers the
    import; calling one of ``names``, or reading any other name, loads the real module in its
    place and goes on with it.
    """
    if module in sys.modules:
        return
    import types

    stand_in = types.ModuleType(module)

    def real():
        if sys.modules.get(module) is stand_in:
            del sys.modules[module]
        return importlib.import_module(module)

    def placeholder(name: str):
        return type(name, (), {"__new__": lambda cls, *args, **kwargs: getattr(real(), name)(*args, **kwargs)})

    def __getattr__(name: str):
        if name.startswith("__"):  # the import system probes __path__ and the like
            raise AttributeError(name)
        return getattr(real(), name)

    for name in names:
        setattr(stand_in, name, placeholder(name))
    stand_in.__getattr__ = __getattr__
    sys.modules[module] = stand_in


_no_pydantic_without_values()
_defer_import("rich.markdown", ("Markdown",))
_defer_import("rich.traceback", ("Traceback",))

app = typer.Typer(
    name="cocktail",
    help=(
        "Split a recording of a busy scene into five stems: baby_cry, siren, dog, speech, other.\n\n"
        "Example: cocktail separate mix.wav -o out/\n\n"
        "Try it on the example recording shipped with cocktail: cocktail separate --example -o out/"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Subcommands in help order. Each module defines ``register(app)``.
COMMANDS = ("separate", "events", "watch", "synth", "prep", "train", "eval")


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


#: The process that installed the SIGTERM handler (forked workers inherit it, and must not unwind).
_MAIN_PID = None


def _on_sigterm(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C (:class:`Terminated`): temporaries are removed on the way out.

    A second SIGTERM kills at once. Worker processes get the signal too, and die at once; the
    command removes what they left when its pool has stopped.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if os.getpid() != _MAIN_PID:  # a forked worker: die as a worker always did
        os.kill(os.getpid(), signal.SIGTERM)
        return
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None:
        for child in multiprocessing.active_children():
            child.terminate()
    raise Terminated()


def _interrupt_of(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind ``exc`` (Typer turns them into ``Exit(130)``), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main() -> None:
    global _MAIN_PID
    previous = None
    try:
        _MAIN_PID = os.getpid()
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (cocktail called as a library): leave signals alone
        pass
    try:
        try:
            app(prog_name="cocktail")  # also under python -m cocktail_cli
        except SystemExit as exit_:
            interrupt = _interrupt_of(exit_)
            if interrupt is None:
                raise
            raise interrupt from None
    except CocktailError as err:
        error(str(err))
        sys.exit(1)
    except KeyboardInterrupt as err:
        if isinstance(err, Terminated):
            error("terminated")
            sys.exit(143)
        error("interrupted")
        sys.exit(130)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
