"""Where synth's source clips come from: a folder a class, or a corpus with ``manifest.csv``.

Both give, for one split, the candidate clips of each class. Train, val and test never share a
clip: a manifest's ``split`` column is used as it is (it is fixed by recording group, so a group
never crosses splits); without a manifest each file is assigned by a hash of its relative path,
which needs no state and gives the same answer on every machine.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .audio import audio_info, find_audio_files
from .classes import CLASSES, TARGET_CLASSES
from .errors import AudioError, CocktailError

SPLITS: tuple[str, ...] = ("train", "val", "test")
MANIFEST = "manifest.csv"
#: Share of files (per mille) each split gets when there is no manifest: about 80/10/10.
_SPLIT_BOUNDS = ((800, "train"), (900, "val"), (1000, "test"))


@dataclass(frozen=True)
class Clip:
    """One source file. ``rel`` (POSIX, relative to the source folder) is its name in recipes."""

    cls: str
    rel: str
    path: str


@dataclass
class SourceSet:
    """The candidate clips of one split, per class, in a fixed (sorted) order."""

    root: str
    split: str
    clips: dict[str, list[Clip]]
    from_manifest: bool
    #: Clips found unusable (``rel`` -> reason); draws never pick them.
    bad: dict[str, str] = field(default_factory=dict)
    #: Every source folder, ``root`` first. A clip of folder k > 0 is named ``"k::rel"``, so a
    #: recipe made from one folder reads exactly as before.
    roots: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.roots:
            self.roots = [self.root]

    def fingerprint(self) -> str:
        """Changes when the candidate list changes, which would change every recipe."""
        h = hashlib.sha1()
        for cls in CLASSES:
            for clip in self.clips.get(cls, []):
                h.update(f"{cls}\0{clip.rel}\n".encode())
        return h.hexdigest()[:16]


def clip_path(roots: str | list[str], rel: str) -> str:
    """The file of clip ``rel`` (see :attr:`SourceSet.roots`) under ``roots``."""
    if isinstance(roots, (str, os.PathLike)):
        roots = [str(roots)]
    k, rest = folder_of(rel)
    return os.path.join(roots[k], rest)


def scan_folders(source_dirs: list, split: str, classes: list[str] | None = None, optional: tuple[str, ...] = ()) -> SourceSet:
    """:func:`scan_sources` over several folders (e.g. the corpus and corpus-extra) as one set.

    A class may be missing from some folders (corpus-extra has no test baby cries), and from all
    of them if it is in ``optional`` (its list is then empty).
    """
    if len(source_dirs) == 1 and not optional:
        return scan_sources(source_dirs[0], split, classes)
    classes = list(CLASSES) if classes is None else classes
    merged: dict[str, list[Clip]] = {c: [] for c in classes}
    roots, manifests = [], []
    for k, folder in enumerate(source_dirs):
        part = None
        for cls in classes:
            try:
                one = scan_sources(folder, split, [cls])
            except CocktailError as err:
                if "not found" in str(err):
                    raise
                continue
            part = one
            prefix = f"{k}::" if k else ""
            merged[cls] += [Clip(cls, prefix + c.rel, c.path) for c in one.clips[cls]]
        roots.append(str(Path(folder).resolve()))
        manifests.append(part.from_manifest if part else False)
    for cls, found in merged.items():
        if not found and cls not in optional:
            raise CocktailError(f"no clip of class '{cls}' in split '{split}' of any source folder", ", ".join(map(str, source_dirs)))
    return SourceSet(roots[0], split, merged, from_manifest=all(manifests), roots=roots)


def folder_of(rel: str) -> tuple[int, str]:
    """A clip name of :attr:`SourceSet.clips` as (index of its folder, path within that folder)."""
    k, sep, rest = rel.partition("::")
    return (int(k), rest) if sep and k.isdigit() else (0, rel)


def split_of(key: str) -> str:
    """The split of a file (or group) name when no manifest says: a stable 80/10/10 hash rule."""
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") % 1000
    return next(name for bound, name in _SPLIT_BOUNDS if bucket < bound)


def needed_classes(active_prob: float, others: int) -> list[str]:
    """Classes a mixture can draw from; a folder for a class never drawn is not required."""
    wanted = list(TARGET_CLASSES) if active_prob > 0 else []
    return wanted + (["other"] if others > 0 else [])


def scan_sources(source_dir: str | os.PathLike, split: str, classes: list[str] | None = None) -> SourceSet:
    """The clips of ``split`` for each of ``classes``; raises :class:`CocktailError` naming a
    missing or empty class folder, or a class with no clip in this split."""
    if split not in SPLITS:
        raise CocktailError(f"unknown split '{split}' (choose {', '.join(SPLITS)})")
    root = Path(source_dir)
    if not root.is_dir():
        raise CocktailError("source folder not found", root)
    classes = list(CLASSES) if classes is None else classes
    manifest = root / MANIFEST
    if manifest.is_file():
        clips = _from_manifest(root, manifest, split, classes)
    else:
        clips = _from_folders(root, split, classes)
    return SourceSet(str(root.resolve()), split, clips, from_manifest=manifest.is_file())


def _from_folders(root: Path, split: str, classes: list[str]) -> dict[str, list[Clip]]:
    clips: dict[str, list[Clip]] = {}
    for cls in classes:
        folder = root / cls
        if not folder.is_dir():
            raise CocktailError(f"missing class folder (expected one folder per class: {', '.join(classes)})", folder)
        files = find_audio_files(folder)
        if not files:
            raise CocktailError("class folder has no audio files", folder)
        chosen = []
        for f in files:
            rel = f.relative_to(root).as_posix()
            if split_of(rel) == split:
                chosen.append(Clip(cls, rel, str(f)))
        if not chosen:
            raise CocktailError(
                f"none of its {len(files)} files falls in split '{split}' (files are split about 80/10/10 "
                "by a hash of their path; add more files)",
                folder,
            )
        clips[cls] = chosen
    return clips


def _from_manifest(root: Path, manifest: Path, split: str, classes: list[str]) -> dict[str, list[Clip]]:
    try:
        with open(manifest, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CocktailError(f"cannot read manifest ({err})", manifest) from None
    if not rows or "path" not in rows[0] or "class" not in rows[0]:
        raise CocktailError("manifest needs at least the columns path and class", manifest)
    by_class: dict[str, list[Clip]] = {cls: [] for cls in classes}
    for row in rows:
        cls = row["class"].strip()
        if cls not in by_class:
            continue
        rel = Path(row["path"].strip()).as_posix()
        # Without a split column, hash the group (a recording, a speaker) so it never crosses.
        row_split = (row.get("split") or "").strip() or split_of((row.get("group") or "").strip() or rel)
        if row_split == split:
            by_class[cls].append(Clip(cls, rel, str(root / rel)))
    for cls, found in by_class.items():
        if not found:
            raise CocktailError(f"no clip of class '{cls}' in split '{split}'", manifest)
        found.sort(key=lambda c: c.rel)
    return by_class


def probe(clip: Clip) -> str | None:
    """Why ``clip`` cannot be used (a quick header check), or None when it looks fine."""
    try:
        info = audio_info(clip.path)
    except AudioError as err:
        return err.message
    if info.frames <= 0:
        return "contains no audio samples"
    return None
