"""Files that appear complete or not at all: write to a temporary name, rename when done.

Every temporary file cocktail writes beside its output is named by :func:`make_temp`:
``.<name>.cocktail-<host>-<pid>-<random>.tmp`` (``host``: 4 hex digits of a hash of the host
name, ``pid``: the writing process). A run that is killed outright (``kill -9``, power loss) can
leave one behind; :func:`remove_stale_temps` (called by every command before it writes into a
folder) removes those whose writer is gone: on this host, a process id that no longer runs; from
another host, a file untouched for a day. Files of any other name are never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The mode a plain ``open(path, "w")`` would give a new file (mkstemp alone makes 0600).
FILE_MODE = 0o666 & ~_umask()


#: A temporary file (or folder) that cocktail made: ``.<name>.cocktail-<host>-<pid>-<random>.tmp``.
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.cocktail-(?P<host>[0-9a-f]{4})-(?P<pid>[0-9]+)-[a-z0-9_]+\.tmp$")
#: A temporary whose writer cannot be checked (another host) is stale after this long untouched.
STALE_SECONDS = 24 * 3600


def _host_tag() -> str:
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=2).hexdigest()


_HOST = _host_tag()


def _temp_prefix(path: str | os.PathLike) -> tuple[str, str]:
    name = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(name))
    return folder, f".{os.path.basename(name)}.cocktail-{_HOST}-{os.getpid()}-"


def make_temp(path: str | os.PathLike) -> tuple[int, str]:
    """Create a temporary file beside ``path`` (its folder must exist): ``(fd, temp_path)``."""
    folder, prefix = _temp_prefix(path)
    return tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)


def temp_name(path: str | os.PathLike) -> str:
    """A fresh temporary name beside ``path``, not created (for writers that open it themselves)."""
    folder, prefix = _temp_prefix(path)
    return os.path.join(folder, f"{prefix}{os.urandom(6).hex()}.tmp")


def _writer_gone(entry: os.DirEntry, match: re.Match, mine: bool) -> bool:
    pid = int(match["pid"])
    if match["host"] == _HOST:
        if pid == os.getpid():
            return mine  # this process's own: in use, unless the caller knows its writers stopped
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OSError):
            pass  # runs (as another user): a reused process id, or a live writer
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
    except OSError:
        return False


def remove_stale_temps(folder: str | os.PathLike, depth: int | None = 0, mine: bool = False) -> list[str]:
    """Remove cocktail's temporary files (and folders) in ``folder`` whose writer is gone.

    Only names matching :data:`TEMP_RE` are considered; a live writer's files are left alone, so
    two runs may share an output folder. ``depth``: also this many levels of sub-folders below
    (``None``: all; symlinks are not followed). ``mine``: this process's own count as gone too
    (after an interruption, once its writers have stopped). Returns the paths removed; a missing
    folder is not an error.
    """
    removed: list[str] = []
    pending = [(os.fspath(folder), 0)]
    while pending:
        current, level = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            match = TEMP_RE.match(entry.name)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if match and _writer_gone(entry, match, mine):
                    if is_dir:
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                    removed.append(entry.path)
                elif is_dir and (depth is None or level < depth):
                    pending.append((entry.path, level + 1))
            except FileNotFoundError:
                pass  # its writer renamed or removed it meanwhile
    return removed


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = False, **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it is renamed over ``path``.

    On any exception (a kill leaves only a hidden ``.<name>.*.tmp``) the temporary file is
    removed and ``path`` is untouched, so readers never see a half-written file.
    """
    name = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(name)), exist_ok=True)
    fd, tmp = make_temp(name)
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
