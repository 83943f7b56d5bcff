"""A cache of rendered ``--help`` pages, so that asking for help does not wait for Typer and Rich.

Why: ``cocktail train --help`` spends about 100 ms importing Typer and Rich and 100-200 ms laying
out Rich's option panels (bench/startup.py: 230-410 ms a page on the reference machine, against a
0.3 s goal), and none of that work changes between two calls. The first call renders the page as
usual and keeps a copy; later calls print the copy, in about the time of ``python -c pass``.

Only this module's standard-library imports run on a hit. A page is reused only when everything
that shapes it is the same, all of it in the key:

- the arguments (only ``[COMMAND] --help`` / ``-h`` forms are cached) and the program's path
  (the usage line says ``cocktail`` or ``python -m cocktail_cli``);
- the code: cocktail's version and the size and modification time of each of its modules, and of
  Typer's and Rich's, so an upgrade or an edit renders afresh;
- the terminal: whether standard output is one, its size and encoding, and every environment
  variable Rich, Typer or Click read to choose colours, width or option defaults (listed below).

The copy lives in ``$XDG_CACHE_HOME/cocktail/help`` (``~/.cache/cocktail/help``), at most
:data:`MAX_PAGES` pages. Any failure to read or write it just renders the page as usual;
``COCKTAIL_NO_HELP_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys

# os.path, not pathlib: pathlib's import (with fnmatch, re and urllib.parse) was 15-30 ms of a
# cached page's 50-100 ms here.

HELP_FLAGS = ("--help", "-h")
MAX_PAGES = 64
# What Rich, Typer and Click read from the environment when they lay out a page (grep of their
# sources: colours, terminal size and kind, Typer's switches), the locale (box characters), and
# cocktail's own variables (an option's env var is shown in its help).
ENV_NAMES = (
    "TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "PY_COLORS", "CLICOLOR", "CLICOLOR_FORCE",
    "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES", "JUPYTER_COLUMNS", "JUPYTER_LINES",
    "TERMINAL_WIDTH", "DATABRICKS_RUNTIME_VERSION", "GITHUB_ACTIONS", "PYTHONIOENCODING", "PYTHONUTF8",
    "LANG", "LANGUAGE",
)
ENV_PREFIXES = ("TYPER_", "_TYPER_", "LC_", "COCKTAIL_", "_COCKTAIL_")


def is_help_request(args: list[str]) -> bool:
    """``cocktail --help`` or ``cocktail COMMAND --help`` (or ``-h``), nothing else."""
    return 1 <= len(args) <= 2 and args[-1] in HELP_FLAGS and all(not a.startswith("-") for a in args[:-1])


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cocktail", "help")


def _files_of(package_dir: str) -> list[tuple[str, int, int]]:
    """Path, modification time and size of every module under ``package_dir``."""
    stats = []
    for folder, subfolders, names in os.walk(package_dir):
        subfolders.sort()
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                st = os.stat(path)
                stats.append((path, st.st_mtime_ns, st.st_size))
    return stats


def _package_stamp(name: str) -> list:
    """Where a package is installed and when its ``__init__.py`` was written, without importing it."""
    from importlib.util import find_spec

    spec = find_spec(name)
    if spec is None or spec.origin is None:
        return [name, None]
    st = os.stat(spec.origin)
    return [spec.origin, st.st_mtime_ns, st.st_size]


def page_key(args: list[str]) -> str:
    from . import __version__

    out = sys.stdout
    tty = out.isatty()
    try:
        size = tuple(os.get_terminal_size(out.fileno())) if tty else None
    except (OSError, ValueError, AttributeError):
        size = None
    env = sorted((k, v) for k, v in os.environ.items() if k in ENV_NAMES or k.startswith(ENV_PREFIXES))
    key = [
        args, sys.argv[0], __version__, sys.version, _files_of(os.path.dirname(__file__)), _package_stamp("typer"),
        _package_stamp("rich"), tty, size, getattr(out, "encoding", None), env,
    ]
    return hashlib.sha256(repr(key).encode()).hexdigest()[:32]


class _Tee:
    """Standard output that also keeps what is written to it (Rich asks it for isatty, fileno...)."""

    def __init__(self, stream):
        self._stream, self.parts = stream, []

    def write(self, text: str) -> int:
        written = self._stream.write(text)  # first: Click probes with write(b"") and expects TypeError
        self.parts.append(text)
        return written

    def __getattr__(self, name):
        return getattr(self._stream, name)


def show_help(args: list[str], render) -> None:
    """Print the page for ``args``: the cached copy if there is one, else ``render()``'s output,
    which is then kept (only when it ends normally, with exit status 0)."""
    if os.environ.get("COCKTAIL_NO_HELP_CACHE"):
        render()
        return
    path: str | None = None
    page = ""
    try:
        path = os.path.join(cache_dir(), f"{page_key(args)}.txt")
        with open(path, encoding="utf-8") as f:
            page = f.read()
    except (OSError, ValueError, RuntimeError):  # no copy yet, or no home to keep one in
        pass
    if page:
        sys.stdout.write(page)
        sys.stdout.flush()
        return
    tee = sys.stdout = _Tee(sys.stdout)
    status = 0
    try:
        render()
    except SystemExit as exit_:
        status = exit_.code or 0
        raise
    finally:
        sys.stdout = tee._stream
        if status == 0 and tee.parts and path is not None:
            _keep(path, "".join(tee.parts))


def _keep(path: str, page: str) -> None:
    try:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        pages = [os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".txt")]
        pages.sort(key=os.path.getmtime)
        for old in pages[: max(0, len(pages) - MAX_PAGES + 1)]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(old)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home or a full disk: the page was printed, only the copy is lost
