"""``cocktail watch`` as a library: a live stream in, a line per event start and end out.

Sources: a WAV stream on standard input (:class:`WavStream`) or a microphone through the
optional ``sounddevice`` package (:class:`MicStream`). Audio goes through
:class:`~cocktail_cli.separator.LiveActivity` (short hops, a little delay) into an
:class:`~cocktail_cli.events.EventTracker`; memory stays flat however long it runs.
"""

from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np

from .errors import AudioError, CocktailError
from .events import Change, EventSettings, EventTracker

#: Seconds of audio read from the source at a time (the delay reading adds at most).
READ_SECONDS = 0.05
#: A warning when the stream's time trails the wall clock by more than this (seconds).
BEHIND_SECONDS = 2.0
#: How often the network runs on the stream (seconds); each run sees 1 s before the new frames
#: and 0.2 s after, so it costs (1.2 + hop) / hop times its share of real time. Why 0.15, not 0.1:
#: with the shipped model's windowed statistics (2026-12-04) a run costs a fifth more, and
#: bench/watch.py on this 2-core machine measured 27.8% of one core at 0.1 s (the model before:
#: 24.3%; the goal is 25%) with a median onset-to-line delay of 0.54 s (goal 1.0 s); at 0.15 s,
#: 20.0% with a median of 0.52 s (90th percentile 1.24 s against 1.21). That machine ran the
#: network in bf16; a CPU without it in hardware runs float32 (precision.py), and on one (AVX2
#: only, 2026-12-08) the same bench measured 30.8% at 0.15 s (median 0.65 s, p90 0.82 s) and
#: 16.0% at 0.3 s (median 0.69 s, p90 1.16 s): so float32 runs every 0.3 s.
WATCH_HOP_SECONDS = {"bf16": 0.15, "fp32": 0.3}
#: audio after the newest kept frame that each live window waits for (see separator.LiveActivity)
WATCH_RIGHT_SECONDS = 0.2
#: Data sizes a streaming writer puts in a header whose length it does not know: arecord writes
#: 0x7FFFFFFF-ish values, FFmpeg to a pipe 0xFFFFFFFF (or 0).
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_WAVE_FORMAT_PCM, _WAVE_FORMAT_FLOAT, _WAVE_FORMAT_EXTENSIBLE = 1, 3, 0xFFFE


class WavStream:
    """A WAV stream read from a pipe, block by block, as it arrives.

    Parsed here rather than by soundfile: libsndfile seeks in what it reads (it opens a pipe only
    through a virtual file that must seek), and a live stream's header gives no length (its RIFF
    and data sizes are 0 or 0xFFFFFFFF), so it would refuse the stream or wait for all of it.
    A stream header is only a few fields: PCM 8/16/24/32-bit and float 32/64-bit (plain or
    WAVE_FORMAT_EXTENSIBLE) are read; the data is read until the size the header gives, or to the
    end of the stream when it gives none.
    """

    def __init__(self, fh: BinaryIO, name: str = "<stdin>"):
        self.fh, self.name = fh, name
        head = self._read_exact(12, "is shorter than a WAV header", allow_empty=True)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            if head[:4] == b"RF64":
                raise AudioError("RF64 streams are not read; pipe plain WAV (ffmpeg ... -f wav -)", name)
            raise AudioError("is not a WAV stream; pipe WAV into it (ffmpeg -i INPUT -f wav - | cocktail watch -)", name)
        fmt = None
        while True:
            chunk = self._read_exact(8, "ends before its audio data")
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                body = self._read_exact(size + (size & 1), "ends inside its format chunk")
                fmt = body
            elif cid == b"data":
                break
            else:  # LIST, fact, ...: skipped
                if size > 1 << 20:
                    raise AudioError(f"has a {size}-byte '{cid.decode('latin-1')}' chunk before its audio", name)
                self._read_exact(size + (size & 1), "ends before its audio data")
        if fmt is None or len(fmt) < 16:
            raise AudioError("WAV stream has no format chunk before its data", name)
        tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack("<H", fmt[24:26])[0]
        kinds = {(_WAVE_FORMAT_PCM, 8): "u1", (_WAVE_FORMAT_PCM, 16): "<i2", (_WAVE_FORMAT_PCM, 24): "i3",
                 (_WAVE_FORMAT_PCM, 32): "<i4", (_WAVE_FORMAT_FLOAT, 32): "<f4", (_WAVE_FORMAT_FLOAT, 64): "<f8"}
        if (tag, bits) not in kinds:
            raise AudioError(f"WAV stream of format {tag} with {bits} bits is not read (use 16-bit PCM: -f S16_LE)", name)
        if channels < 1 or rate < 1000 or block_align != channels * (bits // 8):
            raise AudioError(f"WAV stream header is damaged ({channels} channels, {rate} Hz, block {block_align})", name)
        self.kind, self.channels, self.samplerate, self.block_align = kinds[(tag, bits)], channels, rate, block_align
        self.remaining = None if size in _UNKNOWN_SIZES or size >= 0x7FFF0000 else size

    def _read_exact(self, n: int, problem: str, allow_empty: bool = False) -> bytes:
        data = b""
        while len(data) < n:
            part = self.fh.read(n - len(data))
            if not part:
                if allow_empty and not data:
                    raise AudioError("standard input is empty", self.name)
                raise AudioError(f"WAV stream {problem}", self.name)
            data += part
        return data

    def blocks(self, seconds: float = READ_SECONDS) -> Iterator[np.ndarray]:
        """Float32 ``(channels, n)`` blocks until the end of the stream (a cut last frame is dropped)."""
        want = max(1, int(self.samplerate * seconds)) * self.block_align
        leftover = b""
        read = getattr(self.fh, "read1", self.fh.read)  # what the pipe holds now, not a full block
        while self.remaining is None or self.remaining > 0:
            n = want if self.remaining is None else min(want, self.remaining)
            data = read(n)
            if not data:
                return
            if self.remaining is not None:
                self.remaining -= len(data)
            data = leftover + data
            whole = len(data) // self.block_align * self.block_align
            leftover = data[whole:]
            if whole:
                yield self._decode(data[:whole])

    def _decode(self, data: bytes) -> np.ndarray:
        if self.kind == "i3":
            b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
            x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float32) / 8388608.0
        elif self.kind == "u1":
            x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
        else:
            raw = np.frombuffer(data, self.kind)
            x = raw.astype(np.float32)
            if raw.dtype.kind == "i":
                x /= float(np.iinfo(raw.dtype).max + 1)
        return x.reshape(-1, self.channels).T


class MicStream:
    """A microphone through ``sounddevice`` (the optional ``mic`` extra), mono, at the device's rate."""

    def __init__(self, device: int | str | None):
        try:
            import sounddevice as sd
        except (ImportError, OSError) as err:  # OSError: the package without the PortAudio library
            detail = "" if isinstance(err, ImportError) else f" ({err})"
            raise CocktailError(
                f"cocktail watch --device needs the optional sounddevice package{detail}: pip install 'cocktail-cli[mic]'"
            ) from None
        self.sd = sd
        try:
            info = sd.query_devices(device, "input")
        except (ValueError, sd.PortAudioError) as err:
            raise CocktailError(f"--device {device}: {err}") from None
        self.device, self.channels, self.samplerate = device, 1, int(info["default_samplerate"])
        self.name = f"<device {info['name']}>"
        self.queue: queue.Queue = queue.Queue(maxsize=int(60 / READ_SECONDS))  # a minute at most
        self.overflows = 0

    def blocks(self, seconds: float = READ_SECONDS) -> Iterator[np.ndarray]:
        def callback(indata, frames, t, status):
            if status.input_overflow:
                self.overflows += 1
            try:
                self.queue.put_nowait(indata[:, 0].copy())
            except queue.Full:
                self.overflows += 1

        with self.sd.InputStream(device=self.device, channels=1, samplerate=self.samplerate, dtype="float32",
                                 blocksize=max(1, int(self.samplerate * seconds)), callback=callback):
            while True:
                yield self.queue.get()[None]


class Watcher:
    """Runs a source through :class:`LiveActivity` and an :class:`EventTracker`; ``emit(change)``
    per start and end; ``warn(message)`` when it falls behind real time."""

    def __init__(self, sep, settings: EventSettings, classes, emit: Callable[[Change], None],
                 warn: Callable[[str], None], exec_cmd: str | None = None, hop_seconds: float | None = None,
                 right_seconds: float = WATCH_RIGHT_SECONDS):
        # a live stream never trims (events.py step 5): a start it has printed stays
        self.sep, self.settings, self.classes = sep, settings.live(), classes
        self.emit, self.warn, self.exec_cmd = emit, warn, exec_cmd
        # None: by the precision the network runs in (WATCH_HOP_SECONDS)
        self.hop_seconds = WATCH_HOP_SECONDS[sep.precision] if hop_seconds is None else hop_seconds
        self.right_seconds = right_seconds
        self.children: list[subprocess.Popen] = []
        self.tracker: EventTracker | None = None

    def run(self, source) -> None:
        """Until the source ends; on KeyboardInterrupt, the open events end and it is raised again."""
        from .separator import LiveActivity

        live = LiveActivity(self.sep, source.samplerate, source.channels, hop_seconds=self.hop_seconds,
                            right_seconds=self.right_seconds, name=source.name)
        tracker = self.tracker = EventTracker(self.sep.frame_rate, self.settings, self.classes, keep_events=False)
        started = None
        seconds = 0.0
        last_warning = -1e9
        try:
            for block in source.blocks():
                now = time.monotonic()
                if started is None:
                    started = now
                seconds += block.shape[1] / source.samplerate
                for frames in live.push(block):
                    self._changes(tracker.push(frames[0], frames[1]))
                behind = (time.monotonic() - started) - seconds
                if behind > BEHIND_SECONDS and now - last_warning > 30:
                    last_warning = now
                    self.warn(f"{source.name}: falling behind real time by {behind:.1f} s (the machine is too slow or busy)")
                self._reap()
            for frames in live.finish():
                self._changes(tracker.push(frames[0], frames[1]))
        finally:  # end of stream, Ctrl-C or SIGTERM: the open events end here
            self._changes(tracker.finish())
            self._reap()

    def _changes(self, changes: list[Change]) -> None:
        for change in changes:
            self.emit(change)
            if change.kind == "start" and self.exec_cmd:
                self._exec(change)

    def _exec(self, change: Change) -> None:
        env = {**os.environ, "COCKTAIL_EVENT": change.kind, "COCKTAIL_CLASS": change.cls,
               "COCKTAIL_TIME": f"{change.time:.3f}", "COCKTAIL_CONFIDENCE": f"{change.confidence:.3f}"}
        try:
            # stdin from /dev/null: the command must not eat the audio on ours; not waited for, so
            # a slow alert never holds up the stream
            self.children.append(subprocess.Popen(self.exec_cmd, shell=True, env=env, stdin=subprocess.DEVNULL))
        except OSError as err:
            self.warn(f"--exec {self.exec_cmd!r}: {err}")

    def _reap(self) -> None:
        self.children = [c for c in self.children if c.poll() is None]


def stdin_source() -> WavStream:
    from .audio import check_stdin_readable

    check_stdin_readable("watch")
    return WavStream(sys.stdin.buffer, "<stdin>")


__all__ = ["MicStream", "WavStream", "Watcher", "stdin_source"]
