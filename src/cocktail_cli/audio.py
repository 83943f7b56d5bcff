"""Audio I/O shared by every command: read anything soundfile reads, resample, write atomically.

Arrays are float32 with shape ``(channels, samples)`` (the torch convention), whatever the file's
format, sample rate, channel count or bit depth.
"""

from __future__ import annotations

import io
import os
import struct
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from .atomic import atomic_open, make_temp
from .console import quiet_c_stderr
from .errors import AudioError

#: Extensions picked up when a folder is given as input (what libsndfile decodes).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64"}
)
#: Lossless output formats and the soundfile subtype for each ``bits`` value (16 by default).
SUBTYPES = {
    "wav": {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"},
    "flac": {16: "PCM_16", 24: "PCM_24"},
}
#: Compressed output formats (no bit depth): libsndfile's format and subtype, and the VBR setting
#: (soundfile's ``compression_level``, 0 = best): LAME V0 for MP3 (about 245 kb/s for stereo
#: music), Vorbis quality 6 for OGG (about 190 kb/s), as music-separation tools write by default.
LOSSY = {"mp3": ("MP3", "MPEG_LAYER_III", 0.0), "ogg": ("OGG", "VORBIS", 0.4)}
FORMATS = (*SUBTYPES, *LOSSY)
#: The sample rates an MP3 (MPEG-1, 2 and 2.5 layer III) can have; it holds 1 or 2 channels.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
STDIO = "-"




def is_audio_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """All audio files below ``folder`` (recursively, sorted, hidden files skipped)."""
    root = Path(folder)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and is_audio_file(p) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def announced_frames(path: str | os.PathLike) -> int | None:
    """The frame count a WAV (RIFF/RIFX) or AIFF header announces, or None (another format, an
    unreadable header, or a stream written before its length was known).

    libsndfile quietly reads what a cut file holds and reports that as its length; comparing with
    this tells a truncated file (a download or copy that stopped early) from a short one.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
                endian, target, form = ("<" if head[:4] == b"RIFF" else ">"), b"data", "wav"
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                endian, target, form = ">", b"COMM", "aiff"
            else:
                return None
            block = None
            for _ in range(64):  # chunks before the data: a handful in practice
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
                if form == "wav" and cid == b"fmt ":
                    fmt = fh.read(min(size, 16))
                    if len(fmt) < 14:
                        return None
                    block = struct.unpack(endian + "H", fmt[12:14])[0]
                    fh.seek(size - len(fmt) + (size & 1), 1)
                elif cid == target:
                    if form == "aiff":
                        comm = fh.read(6)
                        frames = struct.unpack(">I", comm[2:6])[0] if len(comm) == 6 else 0
                        return frames or None
                    if not block or size in (0, 0xFFFFFFFF):  # unknown length (a stream, or RF64)
                        return None
                    return size // block
                else:
                    fh.seek(size + (size & 1), 1)
    except (OSError, struct.error):
        return None
    return None


def check_input_file(name: str) -> None:
    """Missing, folder and 0-byte inputs, each named in one line before any decoding."""
    if not os.path.exists(name):
        raise AudioError("file not found", name)
    if os.path.isdir(name):
        raise AudioError("is a folder, not an audio file", name)
    if os.path.getsize(name) == 0:
        raise AudioError("file is empty (0 bytes)", name)


def _open_source(path: str | os.PathLike | BinaryIO) -> tuple[object, str]:
    if isinstance(path, (str, os.PathLike)) and os.fspath(path) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise AudioError("standard input is empty", "<stdin>")
        return io.BytesIO(data), "<stdin>"
    if isinstance(path, (str, os.PathLike)):
        name = os.fspath(path)
        check_input_file(name)
        return name, name
    return path, getattr(path, "name", "<stream>")


def read_audio(
    path: str | os.PathLike | BinaryIO,
    sample_rate: int | None = None,
    mono: bool = False,
) -> tuple[np.ndarray, int]:
    """Read an audio file into float32 ``(channels, samples)``.

    ``sample_rate``: resample to this rate (None keeps the file's). ``mono``: average channels.
    Raises :class:`AudioError` naming the file for anything unusable: missing, empty, not audio,
    corrupt, zero samples, NaN/inf samples.
    """
    source, name = _open_source(path)
    try:
        with quiet_c_stderr():
            data, sr = sf.read(source, dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise AudioError(f"cannot decode audio ({describe_error(err)})", name) from None
    except (RuntimeError, TypeError, ValueError) as err:
        raise AudioError(f"cannot decode audio ({err})", name) from None
    if data.shape[0] == 0:
        raise AudioError("contains no audio samples", name)
    if not np.isfinite(data).all():
        raise AudioError("contains NaN or infinite samples", name)
    audio = np.ascontiguousarray(data.T)
    if mono and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != sr:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    return audio, int(sr)


#: libsndfile's messages that say nothing true about a file that exists: a corrupt MP3 gets "File
#: does not exist or is not a regular file", random bytes "Format not recognised".
_OPAQUE_ERRORS = (
    "File does not exist or is not a regular file",
    "Format not recognised",
    "Unspecified internal error",
    "Supported file format but file is malformed",
    "Internal psf_fseek() failed",
)


def describe_error(err: Exception) -> str:
    """libsndfile's message in one line, without its own 'Error opening <path>:' prefix; for its
    misleading or empty ones, what they mean: "corrupt or unsupported format"."""
    text = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    # libsndfile's messages start with "Error opening '<path>': "; the path is already in ours.
    if ": " in text and text.startswith("Error opening"):
        text = text.split(": ", 1)[1]
    if text.startswith(_OPAQUE_ERRORS):
        return "corrupt or unsupported format"
    return text.rstrip(".")


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    source, name = _open_source(path)
    try:
        with quiet_c_stderr():
            return sf.info(source)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"cannot decode audio ({describe_error(err)})", name) from None


def resample(audio: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Resample ``(channels, samples)`` or ``(samples,)`` float audio with soxr."""
    if sr_in == sr_out:
        return audio
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"invalid sample rates {sr_in} -> {sr_out}")
    if audio.ndim == 1:
        return soxr.resample(audio, sr_in, sr_out, quality=quality).astype(np.float32, copy=False)
    # soxr wants (samples, channels)
    out = soxr.resample(np.ascontiguousarray(audio.T), sr_in, sr_out, quality=quality)
    return np.ascontiguousarray(out.T, dtype=np.float32)


def output_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    if fmt:
        fmt = fmt.lower()
    else:
        fmt = Path(path).suffix.lower().lstrip(".") or "wav"
    if fmt not in FORMATS:
        raise AudioError(f"unsupported output format '{fmt}' (use {', '.join(FORMATS[:-1])} or {FORMATS[-1]})", path)
    return fmt


def check_can_write(fmt: str) -> None:
    """Refuse, in one line, a compressed format this libsndfile cannot encode (MP3 needs >= 1.1)."""
    if fmt in LOSSY:
        major, subtype, _ = LOSSY[fmt]
        if major not in sf.available_formats() or subtype not in sf.available_subtypes(major):
            raise AudioError(
                f"this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt} "
                f"(MP3 needs libsndfile 1.1 or later, bundled with soundfile 0.12 and later); use wav, flac or ogg"
            )


def check_stream(fmt: str, sample_rate: int, channels: int, name: str | None = None) -> None:
    """Refuse, before any work, audio that ``fmt`` cannot hold (MP3: 1-2 channels, 8-48 kHz)."""
    if fmt != "mp3":
        return
    if channels > 2:
        raise AudioError(f"mp3 holds at most 2 channels, this has {channels}; use --format ogg, flac or wav", name)
    if sample_rate not in MP3_RATES:
        raise AudioError(
            f"mp3 cannot hold {sample_rate} Hz audio (only {', '.join(str(r) for r in MP3_RATES)}); "
            "use --format ogg, flac or wav",
            name,
        )


def subtype_for(fmt: str, bits: int | None) -> str:
    """The soundfile subtype; ``bits`` (None = 16) applies to the lossless formats only."""
    if fmt in LOSSY:
        return LOSSY[fmt][1]
    try:
        return SUBTYPES[fmt][16 if bits is None else bits]
    except KeyError:
        allowed = ", ".join(str(b) for b in SUBTYPES.get(fmt, {}))
        raise AudioError(f"{fmt} cannot be written with {bits} bits (choose {allowed})") from None


class FloatWav:
    """A 32-bit float WAV file written block by block, with a header every reader accepts.

    libsndfile writes float WAV with a 16-byte fmt chunk (and its WAVE_FORMAT_EXTENSIBLE variant
    with no room after the extension), so sox warns "header missing extended part of fmt chunk":
    RIFF wants the 2-byte cbSize field on every non-PCM format. This writes what scipy.io.wavfile
    writes: WAVE_FORMAT_IEEE_FLOAT with an 18-byte fmt chunk (cbSize 0), a fact chunk with the
    frame count, then the samples; the sizes are filled in by :meth:`close`. ``file`` is a path
    or a seekable binary file. Same ``write(frames)``/``close()`` as a ``soundfile.SoundFile``.
    """

    #: RIFF sizes are 32-bit: the most data bytes a WAV file can hold next to this header.
    MAX_DATA = 0xFFFFFFFF - 50

    def __init__(self, file, sample_rate: int, channels: int):
        self.own = isinstance(file, (str, os.PathLike))
        self.fh = open(file, "wb") if self.own else file
        self.channels, self.frames = int(channels), 0
        self.start = self.fh.tell()
        align = 4 * self.channels
        self.fh.write(
            b"RIFF" + (0).to_bytes(4, "little") + b"WAVE"
            + b"fmt " + (18).to_bytes(4, "little")
            + np.array([3, self.channels], "<u2").tobytes()  # WAVE_FORMAT_IEEE_FLOAT, channels
            + np.array([sample_rate, sample_rate * align], "<u4").tobytes()  # rate, bytes per second
            + np.array([align, 32, 0], "<u2").tobytes()  # block align, bits, cbSize
            + b"fact" + (4).to_bytes(4, "little") + (0).to_bytes(4, "little")
            + b"data" + (0).to_bytes(4, "little")
        )

    def write(self, frames: np.ndarray) -> None:
        """``(samples, channels)`` float frames (a 1-D array for one channel)."""
        data = np.ascontiguousarray(frames, dtype="<f4")
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2 or data.shape[1] != self.channels:
            raise ValueError(f"expected (samples, {self.channels}) frames, got shape {frames.shape}")
        if (self.frames + data.shape[0]) * 4 * self.channels > self.MAX_DATA:
            raise RuntimeError("a WAV file holds at most 4 GiB; write 24-bit FLAC for longer audio")
        self.fh.write(data.data)
        self.frames += data.shape[0]

    def close(self) -> None:
        if self.fh is None:
            return
        try:
            size = self.frames * 4 * self.channels
            end = self.fh.tell()
            for offset, value in ((4, 50 + size), (46, self.frames), (54, size)):
                self.fh.seek(self.start + offset)
                self.fh.write(int(value).to_bytes(4, "little"))
            self.fh.seek(end)
            self.fh.flush()
        finally:
            if self.own:
                self.fh.close()
            self.fh = None

    def __enter__(self) -> "FloatWav":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_writer(file, fmt: str, bits: int, sample_rate: int, channels: int):
    """A writer (``write(frames)``, ``close()``) for ``fmt``/``bits``: :class:`FloatWav` for
    32-bit WAV, a ``soundfile.SoundFile`` otherwise. ``file``: a path or a binary file."""
    subtype = subtype_for(fmt, bits)
    if fmt == "wav" and subtype == "FLOAT":
        return FloatWav(file, sample_rate, channels)
    if fmt in LOSSY:
        major, _, level = LOSSY[fmt]
        try:
            return sf.SoundFile(file, "w", samplerate=sample_rate, channels=channels, subtype=subtype, format=major,
                                compression_level=level)
        except TypeError:  # soundfile < 0.13 has no compression_level: libsndfile's default quality
            return sf.SoundFile(file, "w", samplerate=sample_rate, channels=channels, subtype=subtype, format=major)
    return sf.SoundFile(file, "w", samplerate=sample_rate, channels=channels, subtype=subtype, format=fmt.upper())


def _as_frames(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim == 1:
        return audio[:, None]
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {audio.shape}")
    return audio.T


def write_audio(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    bits: int = 16,
    fmt: str | None = None,
) -> str:
    """Write ``(channels, samples)`` float audio; ``path == "-"`` writes to standard output.

    The file appears complete or not at all: data goes to a temporary name in the target folder,
    which is renamed over ``path`` only once it is fully written. Integer formats clip at full
    scale, so callers that may exceed it scale first (see :func:`peak_scale`).
    """
    name = os.fspath(path)
    fmt = output_format(name if name != STDIO else "x.wav", fmt)
    subtype_for(fmt, bits)
    frames = _as_frames(audio)
    if name == STDIO:
        buf = io.BytesIO()
        with open_writer(buf, fmt, bits, sample_rate, frames.shape[1]) as out:
            out.write(frames)
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()
        return name
    try:
        with atomic_open(name) as fh, open_writer(fh, fmt, bits, sample_rate, frames.shape[1]) as out:
            out.write(frames)
    except OSError as err:
        raise AudioError(f"cannot write ({err.strerror or err})", name) from None
    return name


def peak_scale(stems: np.ndarray, limit: float = 0.999) -> float:
    """The one factor (<= 1) that keeps every stem of ``stems`` within ``limit`` of full scale."""
    peak = float(np.max(np.abs(stems))) if stems.size else 0.0
    return 1.0 if peak <= limit else limit / peak


def check_writable_dir(folder: str | os.PathLike) -> None:
    """Fail early, naming the folder, when outputs could not be written there.

    Probes by creating (and removing) a temporary file: permission bits say nothing for root, and
    a read-only mount or a path under a regular file only shows on an actual write.
    """
    name = os.fspath(folder)
    if os.path.exists(name) and not os.path.isdir(name):
        raise AudioError("output path exists and is not a folder", name)
    try:
        os.makedirs(name, exist_ok=True)
        fd, tmp = make_temp(os.path.join(name, "probe"))
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise AudioError(f"output folder is not writable ({err.strerror or err})", name) from None
