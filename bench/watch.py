"""``cocktail watch`` live: how long after a sound begins does its start line come, and at what CPU cost?

A 16 kHz mono scene is built from the corpus's **test** split: an everyday background (an
"other" clip, looped) with events of baby_cry, siren, dog and speech at known times (one clip
each, 2-5 s, apart from each other, 0 to +6 dB over the background). Each event's true onset is
where its clip first comes within 20 dB of its loudest 50 ms (clips often open with silence).
The scene is written as a WAV stream without length (as ``arecord`` writes it) into a pipe, at
real-time pace (50 ms blocks on a wall-clock schedule), to ``python -m cocktail_cli watch - --json``;
the wall-clock arrival of each line is recorded.

Reported: per event, the delay from its onset to its start line (wall clock); the median and
90th percentile over events; missed events (no start line of its class from 0.5 s before its
onset to its end + 1 s) and false starts (start lines matching no event); CPU use of the child
(user + system time / wall time) over the streamed scene once the model has loaded, and over the
whole run.

Usage: ``python bench/watch.py [--events 16] [--seed 0] [--model PATH] [--corpus ../shared/corpus]``.
Runs in real time: about 10 s per event. Without the corpus it says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 16000
BLOCK_SECONDS = 0.05
LEAD_IN = 4.0  # seconds of background before the first event (the model loads meanwhile)
CLASSES4 = ("baby_cry", "siren", "dog", "speech")


def _default_corpus() -> Path:
    here = Path(__file__).resolve().parents[1]
    for c in (here.parent / "shared" / "corpus", Path("/work/shared/corpus")):
        if (c / "manifest.csv").is_file():
            return c
    return here.parent / "shared" / "corpus"


def _load(corpus: Path, row: dict) -> np.ndarray:
    x, rate = sf.read(str(corpus / row["path"]), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, rate, SR).astype(np.float32) if rate != SR else x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def _onset(x: np.ndarray) -> float:
    hop = SR // 20
    energy = np.array([np.mean(x[i : i + hop] ** 2) for i in range(0, max(1, len(x) - hop), hop)])
    return float(np.flatnonzero(energy > energy.max() / 100)[0] * hop / SR)


def build_scene(corpus: Path, n_events: int, rng: np.random.Generator):
    rows = [r for r in csv.DictReader(open(corpus / "manifest.csv")) if r["split"] == "test"]
    by = {c: [r for r in rows if r["class"] == c] for c in (*CLASSES4, "other")}
    truth, pieces, t = [], [], LEAD_IN
    for k in range(n_events):
        cls = CLASSES4[k % 4] if k < 4 else CLASSES4[int(rng.integers(4))]
        row = by[cls][int(rng.integers(len(by[cls])))]
        x = _load(corpus, row)[: int(rng.uniform(2.0, 5.0) * SR)]
        if len(x) < SR or _rms(x) < 1e-4:
            continue
        pieces.append((int(t * SR), x, cls))
        on = _onset(x)
        active = np.flatnonzero(np.convolve(x**2, np.ones(SR // 20) / (SR // 20), "same") > np.max(x**2) / 1e4)
        truth.append({"class": cls, "onset": t + on, "offset": t + active[-1] / SR, "clip": row["path"]})
        t += len(x) / SR + rng.uniform(3.0, 6.0)
    n = int((t + 2.0) * SR)
    bg_row = by["other"][int(rng.integers(len(by["other"])))]
    bg = _load(corpus, bg_row)
    bg = np.tile(bg, n // len(bg) + 1)[:n]
    bg *= 0.02 / _rms(bg)
    scene = bg.copy()
    for start, x, _ in pieces:
        snr_db = rng.uniform(0.0, 6.0)
        scene[start : start + len(x)] += x * (0.02 * 10 ** (snr_db / 20) / _rms(x))
    peak = np.max(np.abs(scene))
    if peak > 0.99:
        scene *= 0.99 / peak
    return scene, truth, bg_row["path"]


def stream_header(sr: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 2, 2, 16)
    return b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<I", 16) + fmt + b"data\xff\xff\xff\xff"


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(scene: np.ndarray, model: str | None):
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "cocktail_cli", "watch", "-", "--json"]
    if model:
        cmd += ["--model", model]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines: list[tuple[float, dict]] = []

    def reader():
        for raw in proc.stdout:
            lines.append((time.monotonic(), json.loads(raw)))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    pcm = (np.clip(scene, -1, 1) * 32767).astype("<i2").tobytes()
    block = int(BLOCK_SECONDS * SR) * 2
    proc.stdin.write(stream_header(SR))
    proc.stdin.flush()
    t0 = time.monotonic()  # stream time 0: the first sample goes out now
    cpu_mark = None
    for k, at in enumerate(range(0, len(pcm), block)):
        due = t0 + k * BLOCK_SECONDS
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        proc.stdin.write(pcm[at : at + block])
        proc.stdin.flush()
        if cpu_mark is None and k * BLOCK_SECONDS >= LEAD_IN / 2:  # the model has loaded by now
            cpu_mark = (time.monotonic(), _cpu_seconds(proc.pid))
    end_wall = time.monotonic()
    cpu_end = _cpu_seconds(proc.pid)
    proc.stdin.close()
    err = proc.stderr.read().decode()
    proc.wait()
    thread.join(5)
    total = proc.returncode
    steady = (cpu_end - cpu_mark[1]) / (end_wall - cpu_mark[0])
    return lines, t0, steady, cpu_end / (end_wall - started), err, total


def score(truth, lines, t0):
    starts = [(wall, obj) for wall, obj in lines if obj["event"] == "start"]
    used = set()
    delays, missed = [], []
    for ev in truth:
        match = None
        for i, (wall, obj) in enumerate(starts):
            if i in used or obj["class"] != ev["class"]:
                continue
            if ev["onset"] - 0.5 <= obj["time"] <= ev["offset"] + 1.0:
                match = i
                break
        if match is None:
            missed.append(ev)
            continue
        used.add(match)
        wall, obj = starts[match]
        ev["start_time"] = obj["time"]
        ev["delay"] = wall - (t0 + ev["onset"])
        delays.append(ev["delay"])
    false = [obj for i, (_, obj) in enumerate(starts) if i not in used]
    return delays, missed, false


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--corpus", type=Path, default=None)
    args = parser.parse_args(argv)
    corpus = args.corpus or _default_corpus()
    if not (corpus / "manifest.csv").is_file():
        print(f"bench/watch.py: no corpus at {corpus} (give --corpus); nothing measured")
        return 0
    scene, truth, bg = build_scene(corpus, args.events, np.random.default_rng(args.seed))
    print(f"scene: {len(scene) / SR:.1f} s at {SR} Hz, {len(truth)} events, background {bg}", flush=True)
    lines, t0, steady, overall, err, code = run(scene, args.model)
    if code != 0:
        print(f"watch exited with {code}: {err.strip()}")
        return 1
    delays, missed, false = score(truth, lines, t0)
    for ev in truth:
        got = f"start line at {ev['start_time']:.2f} s, {ev['delay']:.2f} s after" if "delay" in ev else "MISSED"
        print(f"  {ev['class']:<8} onset {ev['onset']:6.2f} s: {got}")
    for obj in false:
        print(f"  false start: {obj['class']} at {obj['time']:.2f} s")
    if delays:
        d = np.array(delays)
        print(f"onset-to-line delay: median {np.median(d):.2f} s, p90 {np.quantile(d, 0.9):.2f} s, max {d.max():.2f} s "
              f"({len(d)} of {len(truth)} events)")
    print(f"missed starts: {len(missed)} of {len(truth)}; false starts: {len(false)}")
    print(f"CPU: {100 * steady:.1f}% of one core while streaming (after the model loaded); {100 * overall:.1f}% over the whole run")
    warnings = [line for line in err.splitlines() if "behind" in line]
    if warnings:
        print(f"watch warned: {warnings[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
