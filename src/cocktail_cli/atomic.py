"""Files that appear complete or not at all: write to a temporary name, rename when done."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The mode a plain ``open(path, "w")`` would give a new file (mkstemp alone makes 0600).
FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = False, **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is renamed over ``path``.

    On any exception (a kill leaves only a hidden ``.<name>.*.tmp``) the temporary file is
    removed and ``path`` is untouched, so readers never see a half-written file.
    """
    name = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(name))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(name) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, name)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
