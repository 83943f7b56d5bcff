"""``cocktail prep``: a ``synth`` output folder -> a compact, streamable training store.

Input layout (what ``synth`` writes): ``SYNTH_DIR/<split>/<mixture_id>/`` holding ``mix.wav`` and
one WAV per class (``baby_cry.wav`` ... ``other.wav``; silent stems are all-zero files; stems sum
to the mix), plus ``SYNTH_DIR/<split>/metadata.jsonl``. A folder whose subfolders are mixtures
(no split level) is read as the single split ``train``.

Store layout (``STORE/``)::

    manifest.json               settings, splits, shard list, what went in
    <split>/shard-00000.bin     encoded stems, concatenated (memory-mapped when training)
    <split>/shard-00000.json    the shard's index: per example its source, crop offset, scale,
                                and per stem (offset, length) into the .bin, or null if silent

Only stems are stored (the mixture is their sum). Each stem is int16 (full scale 1.0, times the
example's ``scale``), encoded as FLAC (lossless, about half the size of raw int16 on real
recordings; ``--codec pcm`` keeps raw int16), and a silent stem is stored as nothing.

Fixed-length examples: each mixture gives ``crops`` examples of ``seconds`` (default 1 example of
3 s). With one crop its offset is drawn at random, reproducibly from ``seed`` and the mixture id;
with several they are spread evenly from the start to the end (overlapping if they do not fit).
A mixture shorter than ``seconds`` is padded with silence at the end.

Work is cut into shards of ``shard_size`` mixtures, processed independently (``jobs`` processes),
each written to a temporary name and renamed when complete; a shard's index file appearing last
marks it done, so a rerun skips finished shards and memory does not grow with the dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf

from . import __version__
from .atomic import atomic_write_text, temp_name
from .audio import resample
from .classes import CLASSES
from .errors import AudioError, CocktailError
from .nets.norm import NORMS
from .stft import STFTConfig

STORE_FORMAT = "cocktail-store"
STORE_VERSION = 1
MANIFEST = "manifest.json"
CODECS = ("flac", "pcm")
#: A stem whose every int16 sample is zero is stored as nothing.
SILENCE = 0.5 / 32768


class StoreError(CocktailError):
    """A store that cannot be written or read (mismatched settings, damaged files)."""


@dataclass(frozen=True)
class PrepConfig:
    sample_rate: int = 22050
    seconds: float = 3.0
    crops: int = 1
    n_fft: int = 1024
    hop: int = 256
    norm: str = "cmvn"
    codec: str = "flac"
    shard_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sample_rate < 1000:
            raise CocktailError(f"--sample-rate {self.sample_rate} is too low")
        if not 0.1 <= self.seconds <= 600:
            raise CocktailError(f"--seconds must be between 0.1 and 600, got {self.seconds}")
        if self.crops < 1:
            raise CocktailError(f"--crops must be at least 1, got {self.crops}")
        if self.norm not in NORMS:
            raise CocktailError(f"unknown --norm '{self.norm}' (choose {', '.join(NORMS)})")
        if self.codec not in CODECS:
            raise CocktailError(f"unknown --codec '{self.codec}' (choose {', '.join(CODECS)})")
        if self.shard_size < 1:
            raise CocktailError(f"--shard-size must be at least 1, got {self.shard_size}")
        try:
            STFTConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, hop=self.hop)
        except ValueError as err:
            raise CocktailError(str(err)) from None

    @property
    def samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    def stft(self) -> STFTConfig:
        return STFTConfig(sample_rate=self.sample_rate, n_fft=self.n_fft, hop=self.hop)


@dataclass
class PrepSummary:
    store: str
    splits: dict = field(default_factory=dict)  # split -> {"mixtures", "examples", "bytes", "silent_stems"}
    shards_done: int = 0
    shards_skipped: int = 0
    errors: list = field(default_factory=list)
    seconds: float = 0.0
    examples_per_second: float = 0.0
    bytes_per_example: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# -- input discovery ---------------------------------------------------------------------------


def _is_mixture(folder: Path) -> bool:
    return (folder / f"{CLASSES[0]}.wav").is_file() or (folder / "mix.wav").is_file()


def find_splits(synth_dir: str | os.PathLike) -> dict[str, list[Path]]:
    """``{split: [mixture folders, sorted]}`` for a synth output folder."""
    root = Path(synth_dir)
    if not root.exists():
        raise CocktailError("input folder not found", root)
    if not root.is_dir():
        raise CocktailError("input is not a folder (give the synth output folder)", root)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if any(_is_mixture(p) for p in subdirs):
        splits = {"train": [p for p in subdirs if _is_mixture(p)]}
    else:
        splits = {}
        for split in subdirs:
            mixtures = sorted(p for p in split.iterdir() if p.is_dir() and _is_mixture(p))
            if mixtures:
                splits[split.name] = mixtures
    if not splits:
        raise CocktailError("no mixtures found (expected <split>/<mixture_id>/<stem>.wav from cocktail synth)", root)
    return splits


def _listing_hash(splits: dict[str, list[Path]]) -> str:
    h = hashlib.sha256()
    for split, mixtures in splits.items():
        h.update(split.encode())
        for m in mixtures:
            h.update(b"\0" + m.name.encode())
    return h.hexdigest()[:16]


# -- one mixture -> examples -------------------------------------------------------------------


def crop_offsets(n: int, length: int, crops: int, seed: int, key: str) -> list[int]:
    """Start samples of the examples cut from a mixture of ``n`` samples (see module docstring)."""
    room = max(n - length, 0)
    if crops == 1:
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        return [int(rng.integers(0, room + 1))]
    return [int(round(room * i / (crops - 1))) for i in range(crops)]


#: Output samples read beyond each side of a crop before resampling; the resampled crop then
#: matches resampling the whole file to ~1e-7, far below int16 quantisation.
MARGIN = 256


def _open_stems(folder: Path) -> tuple[list[sf.SoundFile], int, int]:
    files = []
    try:
        for cls in CLASSES:
            path = folder / f"{cls}.wav"
            if not path.is_file():
                raise AudioError(f"missing stem {cls}.wav", folder)
            try:
                files.append(sf.SoundFile(str(path)))
            except (sf.LibsndfileError, RuntimeError) as err:
                raise AudioError(f"cannot decode audio ({str(err).strip().splitlines()[-1]})", path) from None
            if files[-1].frames == 0:
                raise AudioError("contains no audio samples", path)
        if len({f.samplerate for f in files}) != 1 or len({f.frames for f in files}) != 1:
            raise AudioError("stems differ in sample rate or length", folder)
    except BaseException:
        for f in files:
            f.close()
        raise
    return files, int(files[0].samplerate), int(files[0].frames)


def _read(f: sf.SoundFile, start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)``, mono: int16 for 16-bit files (much faster to read), else float32."""
    f.seek(start)
    if f.subtype == "PCM_16":
        x = f.read(stop - start, dtype="int16", always_2d=True)
        return x[:, 0] if x.shape[1] == 1 else np.round(x.mean(axis=1)).astype(np.int16)
    x = f.read(stop - start, dtype="float32", always_2d=True)
    if not np.isfinite(x).all():
        raise AudioError("contains NaN or infinite samples", f.name)
    return x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)


def _active(x: np.ndarray) -> bool:
    return bool(x.any()) if x.dtype == np.int16 else bool(np.abs(x).max() >= SILENCE)


def _as_float(x: np.ndarray) -> np.ndarray:
    if x.dtype != np.int16:
        return x
    out = x.astype(np.float32)
    out *= 1 / 32768
    return out


def read_crops(folder: Path, sample_rate: int, samples: int, crops: int, seed: int, key: str) -> list[tuple[int, np.ndarray]]:
    """The examples of one mixture folder: ``[(start, stems float32 (C, samples))]`` at ``sample_rate``.

    Equal (to ~1e-7) to resampling each whole stem and cutting ``[start, start + samples)`` (zero
    padded past the end), but only the crop and a margin are read and resampled, and stems that
    are silent there are not resampled at all.
    """
    files, sr, frames = _open_stems(folder)
    try:
        g = math.gcd(sr, sample_rate)
        p_in, p_out = sr // g, sample_rate // g  # resampling grid: p_in input samples per p_out output
        n_out = int(round(frames * sample_rate / sr))
        out = []
        for start in crop_offsets(n_out, samples, crops, seed, key):
            lo = max(0, start - MARGIN) // p_out * p_out
            hi = min(n_out, start + samples + MARGIN)
            in_lo, in_hi = lo // p_out * p_in, min(frames, -(-hi // p_out) * p_in)
            seg = np.zeros((len(CLASSES), samples), dtype=np.float32)
            raw = [_read(f, in_lo, in_hi) for f in files]
            for i in (i for i, x in enumerate(raw) if _active(x)):
                y = resample(_as_float(raw[i]), sr, sample_rate)[start - lo :]
                n = min(samples, y.shape[0], n_out - start)
                seg[i, :n] = y[:n]
            out.append((start, seg))
        return out
    finally:
        for f in files:
            f.close()


def _encode(q: np.ndarray, codec: str, sample_rate: int) -> bytes:
    if codec == "pcm":
        return q.astype("<i2").tobytes()
    buf = io.BytesIO()
    sf.write(buf, q, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_stem(data, codec: str, length: int) -> np.ndarray:
    """Bytes (or a memory-mapped slice) of one stored stem -> int16 ``(length,)``."""
    if codec == "pcm":
        raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data)
        return raw.view("<i2")[:length]
    q, _ = sf.read(io.BytesIO(bytes(data)), dtype="int16")
    return q


def quantise(stems: np.ndarray) -> tuple[np.ndarray, float]:
    """Float stems -> int16 and the scale that restores them (1.0 unless a stem peaks above 1)."""
    peak = float(np.abs(stems).max()) if stems.size else 0.0
    scale = 1.0 if peak <= 32767 / 32768 else peak / (32767 / 32768)
    x = np.multiply(stems, 32768 / scale, dtype=np.float32)
    np.rint(x, out=x)
    np.clip(x, -32768, 32767, out=x)
    return x.astype(np.int16), scale


# -- one shard ---------------------------------------------------------------------------------


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def _write_shard(task: tuple) -> dict:
    """Process one shard in a worker; returns its summary (and per-mixture errors)."""
    split, index, folders, out_dir, cfg_dict = task
    cfg = PrepConfig(**cfg_dict)
    out = Path(out_dir)
    name = shard_name(index)
    tmp_bin = temp_name(out / f"{name}.bin")  # removed by the command if the run is killed
    examples, errors, offset, silent = [], [], 0, 0
    with open(tmp_bin, "wb") as fh:
        for folder in map(Path, folders):
            try:
                cut = read_crops(folder, cfg.sample_rate, cfg.samples, cfg.crops, cfg.seed, f"{split}/{folder.name}")
            except (CocktailError, sf.LibsndfileError, RuntimeError) as err:
                errors.append(str(err) if isinstance(err, CocktailError) else f"{folder}: cannot decode audio ({err})")
                continue
            for start, seg in cut:
                q, scale = quantise(seg)
                entry = {"source": folder.name, "start": start, "scale": scale, "stems": []}
                for row in q:
                    if not row.any():
                        entry["stems"].append(None)
                        silent += 1
                        continue
                    data = _encode(row, cfg.codec, cfg.sample_rate)
                    fh.write(data)
                    entry["stems"].append([offset, len(data)])
                    offset += len(data)
                examples.append(entry)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp_bin, out / f"{name}.bin")
    index_doc = {"shard": name, "split": split, "bytes": offset, "examples": examples}
    tmp_json = Path(temp_name(out / f"{name}.json"))
    tmp_json.write_text(json.dumps(index_doc, separators=(",", ":")))
    os.replace(tmp_json, out / f"{name}.json")  # last: marks the shard complete
    return {"split": split, "shard": name, "mixtures": len(folders) - len(errors), "examples": len(examples),
            "bytes": offset, "silent_stems": silent, "errors": errors}


# -- the whole store ---------------------------------------------------------------------------


def plan(splits: dict[str, list[Path]], shard_size: int) -> list[tuple[str, int, list[str]]]:
    tasks = []
    for split, mixtures in splits.items():
        for k in range(0, len(mixtures), shard_size):
            tasks.append((split, k // shard_size, [str(m) for m in mixtures[k : k + shard_size]]))
    return tasks


def _settings(cfg: PrepConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items()}


def prepare(
    synth_dir: str | os.PathLike,
    store: str | os.PathLike,
    cfg: PrepConfig = PrepConfig(),
    jobs: int = 1,
    limit: int | None = None,
    on_shard: Callable[[dict], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> PrepSummary:
    """Build (or finish) a store. ``on_start(total_mixtures, already_done)``, ``on_shard(summary)``."""
    t0 = time.perf_counter()
    splits = find_splits(synth_dir)
    if limit is not None:
        splits = {s: m[:limit] for s, m in splits.items()}
    root = Path(store)
    if root.exists() and not root.is_dir():
        raise StoreError("output exists and is not a folder", root)
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST
    listing = _listing_hash(splits)
    settings = _settings(cfg)
    if manifest_path.exists():
        old = read_manifest(root)
        if old.get("settings") != settings or old.get("listing") != listing:
            raise StoreError("store was made from other input or settings; use a new output folder", root)
    tasks = plan(splits, cfg.shard_size)
    manifest = {
        "format": STORE_FORMAT,
        "format_version": STORE_VERSION,
        "package_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": os.path.abspath(synth_dir),
        "listing": listing,
        "settings": settings,
        "classes": list(CLASSES),
        "stft": cfg.stft().to_dict(),
        "norm": cfg.norm,
        "samples": cfg.samples,
        "complete": False,
        "splits": {s: {"mixtures": len(m), "shards": [shard_name(i) for (sp, i, _) in tasks if sp == s]} for s, m in splits.items()},
    }
    _write_json(manifest_path, manifest)
    for split in splits:
        (root / split).mkdir(exist_ok=True)

    summary = PrepSummary(store=str(root))
    todo, done = [], []
    for split, index, folders in tasks:
        index_file = root / split / f"{shard_name(index)}.json"
        if index_file.exists():
            done.append(_shard_stats(index_file, split))
        else:
            todo.append((split, index, folders, str(root / split), settings))
    for stats in done:
        _add(summary, stats, fresh=False)
    if on_start:
        on_start(sum(len(m) for m in splits.values()), sum(s["mixtures"] for s in done))
    started = time.perf_counter()
    new_examples = 0
    if jobs <= 1 or len(todo) <= 1:
        results: Iterator[dict] = map(_write_shard, todo)
        for res in results:
            _add(summary, res, fresh=True)
            new_examples += res["examples"]
            if on_shard:
                on_shard(res)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for res in pool.map(_write_shard, todo):  # in order; workers run ahead
                _add(summary, res, fresh=True)
                new_examples += res["examples"]
                if on_shard:
                    on_shard(res)
    elapsed = time.perf_counter() - started
    manifest["complete"] = True
    manifest["examples"] = {s: v["examples"] for s, v in summary.splits.items()}
    manifest["bytes"] = {s: v["bytes"] for s, v in summary.splits.items()}
    _write_json(manifest_path, manifest)
    total_examples = sum(v["examples"] for v in summary.splits.values())
    total_bytes = sum(v["bytes"] for v in summary.splits.values())
    summary.seconds = time.perf_counter() - t0
    summary.examples_per_second = new_examples / elapsed if elapsed > 0 and new_examples else 0.0
    summary.bytes_per_example = total_bytes / total_examples if total_examples else 0.0
    return summary


def _shard_stats(index_file: Path, split: str) -> dict:
    doc = json.loads(index_file.read_text())
    ex = doc["examples"]
    return {"split": split, "shard": doc["shard"], "mixtures": len({e["source"] for e in ex}), "examples": len(ex),
            "bytes": doc["bytes"], "silent_stems": sum(s is None for e in ex for s in e["stems"]), "errors": []}


def _add(summary: PrepSummary, res: dict, fresh: bool) -> None:
    row = summary.splits.setdefault(res["split"], {"mixtures": 0, "examples": 0, "bytes": 0, "silent_stems": 0})
    for k in row:
        row[k] += res[k]
    if fresh:
        summary.shards_done += 1
    else:
        summary.shards_skipped += 1
    summary.errors.extend(res["errors"])


def _write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1))


def read_manifest(store: str | os.PathLike) -> dict:
    path = Path(store) / MANIFEST
    if not path.is_file():
        raise StoreError("not a cocktail store (no manifest.json; make one with cocktail prep)", store)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StoreError(f"damaged store manifest ({err})", path) from None
    if manifest.get("format") != STORE_FORMAT:
        raise StoreError("not a cocktail store", path)
    if manifest.get("format_version", 0) > STORE_VERSION:
        raise StoreError("store format is newer than this cocktail understands; upgrade cocktail", path)
    if list(manifest.get("classes", [])) != list(CLASSES):
        raise StoreError(f"store classes {manifest.get('classes')} != {list(CLASSES)}", path)
    return manifest


# -- reading a store ---------------------------------------------------------------------------


class StoreSplit:
    """Random access to one split of a store: ``split[i]`` -> float32 stems ``(C, samples)``.

    The index is held as numpy arrays (a few dozen bytes an example); shard data is memory-mapped
    on first use and decoded per example, so opening a 100,000-example store is cheap.
    """

    def __init__(self, store: str | os.PathLike, split: str):
        self.root = Path(store)
        self.manifest = read_manifest(store)
        if split not in self.manifest["splits"]:
            raise StoreError(f"store has no split '{split}' (has {', '.join(self.manifest['splits'])})", store)
        if not self.manifest.get("complete"):
            raise StoreError("store is incomplete (rerun cocktail prep to finish it)", store)
        self.split = split
        self.codec = self.manifest["settings"]["codec"]
        self.samples = int(self.manifest["samples"])
        self.stft = STFTConfig.from_dict(self.manifest["stft"])
        self.shards: list[str] = []
        shard_ids, offsets, lengths, scales, sources = [], [], [], [], []
        for k, name in enumerate(self.manifest["splits"][split]["shards"]):
            index_file = self.root / split / f"{name}.json"
            try:
                doc = json.loads(index_file.read_text())
            except (OSError, ValueError) as err:
                raise StoreError(f"damaged store index ({err})", index_file) from None
            self.shards.append(name)
            for e in doc["examples"]:
                shard_ids.append(k)
                offsets.append([s[0] if s else -1 for s in e["stems"]])
                lengths.append([s[1] if s else 0 for s in e["stems"]])
                scales.append(e["scale"])
                sources.append(e["source"])
        self.shard_of = np.asarray(shard_ids, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, len(CLASSES))
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1, len(CLASSES))
        self.scales = np.asarray(scales, dtype=np.float32)
        self.sources = sources
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.scales)

    def active(self, i: int) -> np.ndarray:
        return self.offsets[i] >= 0

    def _map(self, k: int) -> np.ndarray:
        m = self._maps.get(k)
        if m is None:
            path = self.root / self.split / f"{self.shards[k]}.bin"
            try:
                m = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
            except OSError as err:
                raise StoreError(f"cannot read shard ({err.strerror or err})", path) from None
            self._maps[k] = m
        return m

    def stem(self, i: int, c: int) -> np.ndarray:
        """Class ``c``'s stem of example ``i``, float32 ``(samples,)`` (zeros when absent)."""
        out = np.zeros(self.samples, dtype=np.float32)
        off = self.offsets[i, c]
        if off < 0:
            return out
        data = self._map(int(self.shard_of[i]))
        try:
            q = decode_stem(data[off : off + self.lengths[i, c]], self.codec, self.samples)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            raise StoreError(f"damaged shard data for example {i} ({err})", self.root / self.split / self.shards[self.shard_of[i]]) from None
        out[: len(q)] = q * (self.scales[i] / 32768)
        return out

    def __getitem__(self, i: int) -> np.ndarray:
        return np.stack([self.stem(i, c) for c in range(len(CLASSES))])
