"""``cocktail watch``: live WAV streams on standard input (watch.py, LiveActivity)."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from cocktail_cli.events import EventTracker
from cocktail_cli.separator import LiveActivity, Separator
from cocktail_cli.watch import WavStream
from cocktail_cli.errors import AudioError

from tones import tone_scene

SR = 16000
#: A siren from 1.0 to 2.5 s and a dog from 3.5 to 4.5 s of a 6 s stream.
TRUTH = [("siren", 1.0, 2.5), ("dog", 3.5, 4.5)]


def stream_header(sr: int, channels: int = 1, bits: int = 16, tag: int = 1, size: int = 0xFFFFFFFF) -> bytes:
    """A WAV header as arecord and FFmpeg write to a pipe: no length (``size`` in both places)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sr, sr * block, block, bits)
    return b"RIFF" + struct.pack("<I", size) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio.T, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.mark.parametrize("subtype,bits,tag", [("PCM_16", 16, 1), ("PCM_24", 24, 1), ("PCM_32", 32, 1), ("FLOAT", 32, 3),
                                              ("PCM_U8", 8, 1), ("DOUBLE", 64, 3)])
@pytest.mark.parametrize("size", [0, 0xFFFFFFFF, None])
def test_wav_stream_reads_what_soundfile_reads(tmp_path, subtype, bits, tag, size):
    rng = np.random.default_rng(0)
    audio = (rng.uniform(-0.9, 0.9, (3001, 2))).astype(np.float32)
    sf.write(str(tmp_path / "x.wav"), audio, SR, subtype=subtype)
    data = bytearray((tmp_path / "x.wav").read_bytes())
    expected, _ = sf.read(str(tmp_path / "x.wav"), dtype="float32", always_2d=True)
    if size is not None:  # as a stream writer leaves it: no lengths
        data[4:8] = struct.pack("<I", size)
        at = data.index(b"data")
        data[at + 4 : at + 8] = struct.pack("<I", size)
    reader = WavStream(io.BufferedReader(io.BytesIO(bytes(data)), buffer_size=333), "<stdin>")
    assert (reader.samplerate, reader.channels) == (SR, 2)
    got = np.concatenate(list(reader.blocks(0.01)), axis=1)
    np.testing.assert_allclose(got.T, expected, atol=1e-7)


@pytest.mark.parametrize("data,expected", [
    (b"", "standard input is empty"),
    (b"ID3\x03hello this is an mp3" * 3, "not a WAV stream"),
    (b"RIFF\xff\xff\xff\xffWAVEfmt ", "ends before its audio data"),
    (stream_header(SR, bits=12), "not read"),
])
def test_bad_streams_are_named_in_one_line(data, expected):
    with pytest.raises(AudioError, match=expected):
        WavStream(io.BytesIO(data), "<stdin>")


def test_live_frames_are_the_frames_of_the_whole_stream(band_model):
    """Short windows with left context give the frames of the whole input (the band model's
    masks do not depend on context, so any difference would be misplaced frames)."""
    sep = Separator.from_checkpoint(band_model)
    audio = tone_scene(TRUTH, 6.0, SR)
    whole = sep.activity(audio, SR)
    live = LiveActivity(sep, SR)
    frames = []
    for i in range(0, audio.shape[1], 800):
        frames += live.push(audio[:, i : i + 800])
    frames += live.finish()
    got = np.concatenate(frames, axis=-1)
    assert got.shape == whole.shape
    np.testing.assert_allclose(got[0], whole[0], atol=3e-3)
    np.testing.assert_allclose(got[1], whole[1], atol=0.5)  # dB; only the edge frames of windows differ


def test_live_events_come_within_a_second_of_the_onset(band_model):
    sep = Separator.from_checkpoint(band_model)
    audio = tone_scene(TRUTH, 6.0, SR)
    live = LiveActivity(sep, SR)
    tracker = EventTracker(sep.frame_rate, classes=["siren", "dog"])
    seen = []
    block = SR // 20
    for i in range(0, audio.shape[1], block):
        now = (i + block) / SR  # stream time when this block has arrived
        for f in live.push(audio[:, i : i + block]):
            seen += [(c, now) for c in tracker.push(f[0], f[1])]
    starts = [(c.cls, c.time, now) for c, now in seen if c.kind == "start"]
    assert [s[0] for s in starts] == ["siren", "dog"]
    for (cls, t, now), (_, onset, _) in zip(starts, TRUTH):
        assert abs(t - onset) <= 0.2 and now - onset <= 1.0, starts


def _watch(band_model, *args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "cocktail_cli", "watch", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "COCKTAIL_MODEL": band_model, **(env or {})},
    )


def _read_line(proc, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode() if ready else ""


def test_piped_stream_without_length_prints_starts_before_it_ends(band_model, tmp_path):
    proc = _watch(band_model, "-", "--json", "--classes", "siren,dog", "--exec", f"echo $COCKTAIL_CLASS >> {tmp_path / 'alerts'}")
    audio = pcm16(tone_scene(TRUTH, 6.0, SR))
    proc.stdin.write(stream_header(SR))
    proc.stdin.write(audio[: 2 * SR * 2])  # the first 2 s: the siren has begun
    proc.stdin.flush()
    line = _read_line(proc, 60)  # the model loads first
    assert line, proc.stderr.read1(10000) if proc.poll() is not None else "no line while the stream is open"
    start = json.loads(line)
    assert set(start) == {"event", "class", "time", "confidence"}
    assert (start["event"], start["class"]) == ("start", "siren") and abs(start["time"] - 1.0) <= 0.2
    proc.stdin.write(audio[2 * SR * 2 :])
    proc.stdin.close()  # the end of the stream: a clean exit
    proc.stdin = None  # (communicate would flush it)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [(x["event"], x["class"]) for x in lines] == [("end", "siren"), ("start", "dog"), ("end", "dog")]
    assert abs(lines[0]["time"] - 2.5) <= 0.2 and abs(lines[1]["time"] - 3.5) <= 0.2
    assert err.decode().strip() == ""
    for _ in range(50):  # --exec ran once per start, not waited for
        if (tmp_path / "alerts").exists() and len((tmp_path / "alerts").read_text().split()) == 2:
            break
        time.sleep(0.1)
    assert (tmp_path / "alerts").read_text().split() == ["siren", "dog"]


def test_ctrl_c_ends_the_open_events_and_exits_cleanly(band_model):
    proc = _watch(band_model, "-")
    audio = pcm16(tone_scene([("siren", 0.5, 60.0)], 3.0, SR))
    proc.stdin.write(stream_header(SR) + audio)
    proc.stdin.flush()
    line = _read_line(proc, 60)
    assert "start" in line and "siren" in line, line
    proc.send_signal(signal.SIGINT)  # the stream is still open, the siren still sounding
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    (end,) = out.decode().splitlines()
    assert end.split()[2:4] == ["end", "siren"]
    assert "Traceback" not in err.decode()


def test_bad_stream_and_options_one_line(band_model):
    proc = _watch(band_model, "-")
    out, err = proc.communicate(b"this is not audio" * 10, timeout=60)
    assert proc.returncode == 1 and out == b""
    assert err.decode().strip().splitlines() == ["error: <stdin>: is not a WAV stream; pipe WAV into it (ffmpeg -i INPUT -f wav - | cocktail watch -)"]
    proc = _watch(band_model, "song.wav")
    _, err = proc.communicate(b"", timeout=60)
    assert proc.returncode == 1 and "cocktail events song.wav" in err.decode() and len(err.splitlines()) == 1


#: A stand-in for the ``sounddevice`` package (no microphone or PortAudio here): one input device,
#: "Test Mic" at 16 kHz, whose stream plays FAKE_MIC_WAV through the callback in real-time blocks
#: from a thread, as PortAudio does, with one overflow reported; then the audio stays silent.
FAKE_SOUNDDEVICE = """
import threading, time, numpy as np, soundfile as sf, os

class PortAudioError(Exception):
    pass

def query_devices(device=None, kind=None):
    if device not in (0, "0", "Test Mic"):
        raise ValueError(f"No input device matching {device!r}")
    return {"name": "Test Mic", "default_samplerate": 16000.0, "max_input_channels": 1}

class _Status:
    def __init__(self, overflow):
        self.input_overflow = overflow

class InputStream:
    def __init__(self, device, channels, samplerate, dtype, blocksize, callback):
        assert (channels, samplerate, dtype) == (1, 16000, "float32")
        self.blocksize, self.callback, self.stop = blocksize, callback, False
        self.audio, _ = sf.read(os.environ["FAKE_MIC_WAV"], dtype="float32", always_2d=True)

    def _play(self):
        n, at = self.blocksize, 0
        while not self.stop:
            block = self.audio[at : at + n]
            block = np.concatenate([block, np.zeros((n - len(block), 1), np.float32)])
            self.callback(block, n, None, _Status(at == 3 * n))
            at += n
            time.sleep(n / 16000 / 4)  # four times real time: the test need not wait out the scene

    def __enter__(self):
        self.thread = threading.Thread(target=self._play, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
"""


def test_device_reads_the_microphone_through_sounddevice(band_model, tmp_path):
    (tmp_path / "sounddevice.py").write_text(FAKE_SOUNDDEVICE)
    sf.write(str(tmp_path / "mic.wav"), tone_scene(TRUTH, 6.0, SR).T, SR, subtype="FLOAT")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]), "FAKE_MIC_WAV": str(tmp_path / "mic.wav")}
    proc = _watch(band_model, "--device", "0", "--json", "--classes", "siren,dog", env=env)
    lines = []
    while len(lines) < 4:
        line = _read_line(proc, 60)
        assert line, proc.stderr.read1(10000) if proc.poll() is not None else f"no line after {lines}"
        lines.append(json.loads(line))
    proc.send_signal(signal.SIGINT)  # how a live watch ends
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out == b"", err.decode()
    assert [(x["event"], x["class"]) for x in lines] == [("start", "siren"), ("end", "siren"), ("start", "dog"), ("end", "dog")]
    for got, want in zip([x["time"] for x in lines], [1.0, 2.5, 3.5, 4.5]):
        assert abs(got - want) <= 0.25, lines
    assert "Traceback" not in err.decode()
    # a device that is not there: one line naming it
    proc = _watch(band_model, "--device", "7", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and err.decode().strip().splitlines() == ["error: --device 7: No input device matching 7"]


def test_device_without_sounddevice_says_how_to_get_it(band_model):
    import importlib.util

    if importlib.util.find_spec("sounddevice") is not None:
        pytest.skip("sounddevice is installed")
    proc = _watch(band_model, "--device", "0")
    _, err = proc.communicate(b"", timeout=60)
    assert proc.returncode == 1 and "pip install 'cocktail-cli[mic]'" in err.decode() and len(err.splitlines()) == 1


def test_the_network_runs_less_often_where_it_runs_float32():
    """bf16 in hardware: every 0.15 s; float32 costs about twice as much per run, so every 0.3 s
    (bench/watch.py on an AVX2 machine: 31% of one core at 0.15 s, 16% at 0.3 s)."""
    from types import SimpleNamespace

    from cocktail_cli.events import EventSettings
    from cocktail_cli.watch import Watcher

    hops = {p: Watcher(SimpleNamespace(precision=p), EventSettings(), ["siren"], print, print).hop_seconds for p in ("bf16", "fp32")}
    assert hops == {"bf16": 0.15, "fp32": 0.3}
    assert Watcher(SimpleNamespace(precision="fp32"), EventSettings(), ["siren"], print, print, hop_seconds=0.1).hop_seconds == 0.1
