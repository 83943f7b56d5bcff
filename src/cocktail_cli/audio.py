"""Audio I/O shared by every command: read, resample, write atomically.

Arrays are float32 with shape ``(channels, samples)`` (the torch convention), whatever the file's
format, sample rate, channel count or bit depth.

One reading path for every command (:func:`open_audio`, block by block; :func:`read_audio`, whole):
libsndfile (soundfile) first, for what it decodes (WAV, FLAC, Ogg Vorbis and Opus, MP3, AIFF, ...,
with exact lengths and truncation checks), then PyAV (FFmpeg's decoders, inside its wheel) for the
rest: M4A/AAC as phones and messengers record, Opus in WebM, WMA, AMR, the sound track of a video.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from .atomic import atomic_open, make_temp
from .console import quiet_c_stderr
from .errors import AudioError

#: Extensions picked up when a folder is given as input: what libsndfile decodes, then what PyAV
#: adds (phone and messenger recordings, Windows Media, videos' sound tracks).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf", ".w64"}
    | {".m4a", ".m4b", ".aac", ".mp4", ".3gp", ".amr", ".webm", ".weba", ".mka", ".mkv", ".mov", ".wma", ".wmv", ".ac3"}
)
#: Frames per block that :meth:`AudioReader.blocks` yields by default.
BLOCK_FRAMES = 1 << 16
#: What a file neither libsndfile nor FFmpeg can open gets.
UNDECODABLE = "cannot decode audio (corrupt or unsupported format)"
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


def check_stdin_readable(command: str = "separate") -> None:
    """Refuse ``-`` when standard input is a terminal: audio has to be piped in, not typed."""
    if sys.stdin is not None and sys.stdin.isatty():
        raise AudioError(
            f"standard input is a terminal; pipe audio into it (sox in.wav -t wav - | cocktail {command} -) "
            "or give a file", "<stdin>"
        )


def _open_source(path: str | os.PathLike | BinaryIO) -> tuple[object, str]:
    if isinstance(path, (str, os.PathLike)) and os.fspath(path) == STDIO:
        check_stdin_readable()
        data = sys.stdin.buffer.read()
        if not data:
            raise AudioError("standard input is empty", "<stdin>")
        return io.BytesIO(data), "<stdin>"
    if isinstance(path, (str, os.PathLike)):
        name = os.fspath(path)
        check_input_file(name)
        return name, name
    return path, getattr(path, "name", "<stream>")


class AudioReader:
    """An open input, read block by block in flat memory (see :func:`open_audio`).

    ``samplerate`` and ``channels``; ``frames``: the length, exact for what libsndfile reads,
    None when the container does not tell it exactly (``estimated_frames`` is then its announced
    duration, for progress, or None); ``announced_frames``: what the header promises (more than
    ``frames`` for a cut WAV, AIFF or MP3); ``exact``: whether lengths are exact.
    """

    samplerate: int
    channels: int
    frames: int | None
    estimated_frames: int | None
    announced_frames: int | None
    exact: bool

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        """Float32 ``(channels, n)`` blocks of about ``frames`` frames until the end."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _SoundFileReader(AudioReader):
    exact = True

    def __init__(self, fh: sf.SoundFile, name: str, path):
        self.fh, self.name = fh, name
        self.samplerate, self.channels, self.frames = int(fh.samplerate), int(fh.channels), int(fh.frames)
        self.estimated_frames = self.frames
        announced = announced_frames(path) if isinstance(path, (str, os.PathLike)) else None
        self.announced_frames = max(self.frames, announced or 0)

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        while True:
            try:
                with quiet_c_stderr():  # mpg123 prints notes on a damaged MP3; our one line says it
                    data = self.fh.read(frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as err:
                raise AudioError(f"cannot decode audio ({describe_error(err)})", self.name) from None
            if data.shape[0] == 0:
                return
            yield data.T

    def close(self) -> None:
        self.fh.close()


class _AvReader(AudioReader):
    """The first audio stream of anything FFmpeg opens, converted to float by its resampler."""

    exact = False

    def __init__(self, container, name: str):
        import av

        self.av, self.container, self.name = av, container, name
        self.stream = next(iter(container.streams.audio), None)
        if self.stream is None:
            container.close()
            raise AudioError("has no audio stream", name)
        codec = self.stream.codec_context
        self.samplerate, self.channels = int(codec.sample_rate or 0), int(codec.channels or 0)
        if self.samplerate <= 0 or self.channels <= 0:
            container.close()
            raise AudioError(UNDECODABLE, name)
        seconds = None
        if self.stream.duration and self.stream.time_base:
            seconds = float(self.stream.duration * self.stream.time_base)
        elif container.duration:
            seconds = container.duration / av.time_base
        self.frames = None
        self.estimated_frames = self.announced_frames = round(seconds * self.samplerate) if seconds else None
        # one layout for the whole stream: the resampler follows a mid-stream change
        self.resampler = av.AudioResampler(format="fltp", layout=codec.layout, rate=self.samplerate)

    def _frames(self) -> Iterator[np.ndarray]:
        error = self.av.FFmpegError
        try:
            for packet in self.container.demux(self.stream):
                try:
                    decoded = packet.decode()  # the last, empty packet flushes the decoder
                except error:  # a damaged packet: skipped, as players do
                    continue
                for frame in decoded:
                    for out in self.resampler.resample(frame):
                        yield out.to_ndarray()
            for out in self.resampler.resample(None):
                yield out.to_ndarray()
        except error as err:
            raise AudioError(f"cannot decode audio ({err})", self.name) from None

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
        pending, have = [], 0
        for data in self._frames():
            pending.append(data)
            have += data.shape[1]
            if have >= frames:
                yield np.ascontiguousarray(np.concatenate(pending, axis=1), dtype=np.float32)
                pending, have = [], 0
        if have:
            yield np.ascontiguousarray(np.concatenate(pending, axis=1), dtype=np.float32)

    def close(self) -> None:
        self.container.close()


def open_audio(path: str | os.PathLike | BinaryIO, name: str | None = None) -> AudioReader:
    """Open an input for reading block by block: libsndfile first, then FFmpeg through PyAV.

    ``path``: a file name or a seekable binary file (``"-"`` is the caller's to spool first:
    :func:`read_audio` and ``separate`` do). ``name``: how messages name it. A file neither can
    open raises :class:`AudioError` with libsndfile's reason (or :data:`UNDECODABLE`).
    """
    if name is None:
        name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<stream>")
    if isinstance(path, (str, os.PathLike)):
        check_input_file(os.fspath(path))
    try:
        with quiet_c_stderr():
            return _SoundFileReader(sf.SoundFile(path), name, path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        reason = describe_error(err) if isinstance(err, sf.LibsndfileError) else str(err)
    if not isinstance(path, (str, os.PathLike)):
        path.seek(0)
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency; a broken install still gets one line
        raise AudioError(f"cannot decode audio ({reason})", name) from None
    try:
        container = av.open(os.fspath(path) if isinstance(path, (str, os.PathLike)) else path, "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise AudioError(f"cannot decode audio ({reason})", name) from None
    try:
        return _AvReader(container, name)
    except av.FFmpegError:
        container.close()
        raise AudioError(UNDECODABLE, name) from None


def read_audio(
    path: str | os.PathLike | BinaryIO,
    sample_rate: int | None = None,
    mono: bool = False,
) -> tuple[np.ndarray, int]:
    """Read an audio file into float32 ``(channels, samples)`` (through :func:`open_audio`).

    ``sample_rate``: resample to this rate (None keeps the file's). ``mono``: average channels.
    Raises :class:`AudioError` naming the file for anything unusable: missing, empty, not audio,
    corrupt, zero samples, NaN/inf samples.
    """
    source, name = _open_source(path)
    with open_audio(source, name) as reader:
        blocks = list(reader.blocks())
        sr = reader.samplerate
    if not blocks:
        raise AudioError("contains no audio samples", name)
    audio = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
    if not np.isfinite(audio).all():
        raise AudioError("contains NaN or infinite samples", name)
    audio = np.ascontiguousarray(audio)
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


@dataclass
class AudioInfo:
    samplerate: int
    channels: int
    frames: int  # exact, or what the container announces (counted by decoding when it says nothing)

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Rate, channels and length of an input, from its header where it has one."""
    source, name = _open_source(path)
    with open_audio(source, name) as reader:
        frames = reader.frames if reader.frames is not None else reader.estimated_frames
        if frames is None:
            frames = sum(block.shape[1] for block in reader.blocks())
        return AudioInfo(reader.samplerate, reader.channels, int(frames))


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
    ``comment``: an INFO ICMT text before the samples, as libsndfile writes its ``comment``.
    """

    #: RIFF sizes are 32-bit: the most data bytes a WAV file can hold next to this header.
    MAX_DATA = 0xFFFFFFFF - 50

    def __init__(self, file, sample_rate: int, channels: int, comment: str | None = None):
        self.own = isinstance(file, (str, os.PathLike))
        self.fh = open(file, "wb") if self.own else file
        self.channels, self.frames = int(channels), 0
        self.start = self.fh.tell()
        align = 4 * self.channels
        info = b""
        if comment:
            text = comment.encode("utf-8") + b"\0"
            text += b"\0" * (len(text) & 1)
            info = b"LIST" + (12 + len(text)).to_bytes(4, "little") + b"INFO" + b"ICMT" + len(text).to_bytes(4, "little") + text
        self.header = 58 + len(info)  # RIFF + WAVE, fmt, fact, LIST, data headers
        self.fh.write(
            b"RIFF" + (0).to_bytes(4, "little") + b"WAVE"
            + b"fmt " + (18).to_bytes(4, "little")
            + np.array([3, self.channels], "<u2").tobytes()  # WAVE_FORMAT_IEEE_FLOAT, channels
            + np.array([sample_rate, sample_rate * align], "<u4").tobytes()  # rate, bytes per second
            + np.array([align, 32, 0], "<u2").tobytes()  # block align, bits, cbSize
            + b"fact" + (4).to_bytes(4, "little") + (0).to_bytes(4, "little")
            + info
            + b"data" + (0).to_bytes(4, "little")
        )

    def write(self, frames: np.ndarray) -> None:
        """``(samples, channels)`` float frames (a 1-D array for one channel)."""
        data = np.ascontiguousarray(frames, dtype="<f4")
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2 or data.shape[1] != self.channels:
            raise ValueError(f"expected (samples, {self.channels}) frames, got shape {frames.shape}")
        if (self.frames + data.shape[0]) * 4 * self.channels > self.MAX_DATA - (self.header - 58):
            raise RuntimeError("a WAV file holds at most 4 GiB; write 24-bit FLAC for longer audio")
        self.fh.write(data.data)
        self.frames += data.shape[0]

    def close(self) -> None:
        if self.fh is None:
            return
        try:
            size = self.frames * 4 * self.channels
            end = self.fh.tell()
            for offset, value in ((4, self.header - 8 + size), (46, self.frames), (self.header - 4, size)):
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


def open_writer(file, fmt: str, bits: int, sample_rate: int, channels: int, comment: str | None = None):
    """A writer (``write(frames)``, ``close()``) for ``fmt``/``bits``: :class:`FloatWav` for
    32-bit WAV, a ``soundfile.SoundFile`` otherwise. ``file``: a path or a binary file.
    ``comment``: written in the file's header (WAV INFO, FLAC and Vorbis comments, MP3 ID3)."""
    subtype = subtype_for(fmt, bits)
    if fmt == "wav" and subtype == "FLOAT":
        return FloatWav(file, sample_rate, channels, comment)
    writer = _soundfile_writer(file, fmt, subtype, sample_rate, channels)
    if comment:
        writer.comment = comment
    return writer


def _soundfile_writer(file, fmt: str, subtype: str, sample_rate: int, channels: int) -> sf.SoundFile:
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
        raise AudioError(f"cannot write ({write_error(err, name)})", name) from None
    return name


def peak_scale(stems: np.ndarray, limit: float = 0.999) -> float:
    """The one factor (<= 1) that keeps every stem of ``stems`` within ``limit`` of full scale."""
    peak = float(np.max(np.abs(stems))) if stems.size else 0.0
    return 1.0 if peak <= limit else limit / peak


def check_writable_dir(folder: str | os.PathLike, create: bool = True) -> None:
    """Fail early, naming the folder, when outputs could not be written there.

    Probes by creating (and removing) a temporary file: permission bits say nothing for root, and
    a read-only mount or a path under a regular file only shows on an actual write. ``create``
    False leaves a missing folder missing (it is made when a file is about to be written in it,
    so a run that fails leaves no empty folder behind): the probe goes to its nearest existing
    parent instead.
    """
    name = os.fspath(folder)
    if os.path.exists(name) and not os.path.isdir(name):
        raise AudioError("output path exists and is not a folder", name)
    probe_dir = name
    if not create:
        while probe_dir and not os.path.exists(probe_dir):
            parent = os.path.dirname(os.path.abspath(probe_dir))
            if parent == os.path.abspath(probe_dir):
                break
            probe_dir = parent
        if not os.path.isdir(probe_dir):
            raise AudioError(f"output folder cannot be made ({probe_dir} is not a folder)", name)
    try:
        if create:
            os.makedirs(name, exist_ok=True)
        fd, tmp = make_temp(os.path.join(probe_dir, "probe"))
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise AudioError(f"output folder is not writable ({err.strerror or err})", name) from None


#: Starts the comment of every stem ``cocktail separate`` writes: a folder search leaves such
#: files out, so running twice on a folder does not separate the first run's stems.
STEM_COMMENT = "stem separated by cocktail"
#: How much of a file's start :func:`is_cocktail_output` reads: every format cocktail writes
#: keeps its comment in the header (WAV INFO before the data, FLAC and Vorbis comments, ID3v2).
_HEADER_BYTES = 1 << 14


def stem_comment(stem: str, source: str) -> str:
    from . import __version__

    return f"{STEM_COMMENT} {__version__}: {stem} of {os.path.basename(source)}"


def is_cocktail_output(path: str | os.PathLike) -> bool:
    """True for a stem file ``cocktail separate`` wrote (its header carries :data:`STEM_COMMENT`)."""
    if Path(path).suffix.lower().lstrip(".") not in FORMATS:
        return False
    try:
        with open(path, "rb") as fh:
            return STEM_COMMENT.encode() in fh.read(_HEADER_BYTES)
    except OSError:
        return False


def write_error(err: BaseException, path: str | os.PathLike) -> str:
    """What stopped a write, in words: libsndfile says "System error" for a full disk."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return "no space left on device"
    try:
        if shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < 1 << 20:
            return "no space left on device"
    except OSError:
        pass
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return describe_error(err)
