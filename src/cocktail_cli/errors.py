"""Errors that the CLI reports as one line (no traceback)."""

from __future__ import annotations

import os


class CocktailError(Exception):
    """A user-facing error. ``str(err)`` is the whole message, naming the file if there is one."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def __reduce__(self):  # rebuilt from its parts when it crosses a process boundary (eval --jobs)
        return type(self), (self.message, self.path)


class AudioError(CocktailError):
    """An input or output audio file that cannot be used."""


class CheckpointError(CocktailError):
    """A missing, damaged or incompatible model checkpoint."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a CI cancel): unwinds like Ctrl-C, so temporaries are removed
    and ``train`` saves its checkpoint; the CLI then exits with status 143."""
