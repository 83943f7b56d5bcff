"""Synthetic everyday sounds that resemble a class but are "other": hard negatives for training.

Why: the shipped model took a phone ring for a siren (0.59 of it in ``siren``), a bell for a dog
(0.60) and a rooster for a siren (0.46) (issue 27). The corpora hold few rings, alarms or bells, so
these are drawn: each a simple physical pattern that differs from a siren (a tone whose pitch
sweeps on and on) and a cry (a voiced, formant-shaped glide) in a way the model must learn:

- ``ring``: a telephone bell (two tones 20-25 Hz amplitude-modulated in bursts) or a melodic
  ringtone (short notes of a scale, sine or square, repeated);
- ``beep``: an alarm or appliance beep: a constant-pitch tone switched on and off;
- ``bell``: a struck bell or chime: inharmonic partials, each decaying exponentially;
- ``whistle``: a kettle, referee or human whistle: a near-pure tone with a small glide or a trill;
- ``chord``: music-like held notes of harmonic tones.
"""

from __future__ import annotations


import numpy as np

KINDS = ("ring", "beep", "bell", "whistle", "chord")


def draw_decoy(rng: np.random.Generator) -> dict:
    kind = KINDS[int(rng.integers(len(KINDS)))]
    return {"kind": kind, "seed": int(rng.integers(2**31))}


def _tone(f: np.ndarray | float, n: int, sr: int, square: bool, rng: np.random.Generator) -> np.ndarray:
    f = np.broadcast_to(np.asarray(f, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / sr + rng.uniform(0, 2 * np.pi)
    if not square:
        return np.sin(phase)
    out = np.zeros(n)
    for k in range(1, 40, 2):  # band-limited square wave
        alive = k * f < 0.45 * sr
        if not alive.any():
            break
        out += alive * np.sin(k * phase) / k
    return out


def _gate(n: int, sr: int, on_s: float, off_s: float, ramp_s: float = 0.005) -> np.ndarray:
    t = np.arange(n) / sr
    period = on_s + off_s
    u = t % period
    ramp = max(ramp_s, 1e-4)
    return np.clip(np.minimum(u / ramp, (on_s - u) / ramp), 0.0, 1.0)


def render_decoy(p: dict, n: int, sr: int) -> np.ndarray:
    """``n`` samples (float32, peak about 1) of the decoy described by ``p`` at rate ``sr``."""
    rng = np.random.default_rng(p["seed"])
    t = np.arange(n) / sr
    kind = p["kind"]
    if kind == "ring":
        if rng.random() < 0.5:  # bell telephone: two tones, 20-25 Hz flutter, 1-2 s bursts
            f1 = rng.uniform(400, 1000)
            x = _tone(f1, n, sr, False, rng) + _tone(f1 * rng.uniform(1.1, 1.3), n, sr, False, rng)
            x *= 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * rng.uniform(18, 26) * t))
            x *= _gate(n, sr, rng.uniform(0.8, 2.0), rng.uniform(0.5, 3.0), 0.01)
        else:  # ringtone: notes of a scale
            base = rng.uniform(400, 1600)
            note_s = rng.uniform(0.08, 0.3)
            steps = rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=int(rng.integers(3, 9)))
            per_note = max(1, int(note_s * sr))
            idx = (np.arange(n) // per_note) % (len(steps) + int(rng.integers(1, 5)))  # a pause after the tune
            f = np.where(idx < len(steps), base * 2 ** (steps[np.minimum(idx, len(steps) - 1)] / 12), 0.0)
            x = _tone(f, n, sr, rng.random() < 0.5, rng) * (f > 0)
            x *= _gate(n, sr, note_s * 0.85, note_s * 0.15, 0.004)
    elif kind == "beep":
        f = rng.uniform(700, 4000)
        x = _tone(f, n, sr, rng.random() < 0.4, rng) * _gate(n, sr, rng.uniform(0.05, 0.6), rng.uniform(0.05, 1.0))
    elif kind == "bell":
        x = np.zeros(n)
        strike_every = rng.uniform(0.6, 3.0)
        base = rng.uniform(200, 1800)
        ratios = [0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.67, 3.0, 4.0, 5.33]
        decay = rng.uniform(0.4, 3.0)
        for start in np.arange(rng.uniform(0, 0.3), n / sr, strike_every):
            i0 = int(start * sr)
            m = n - i0
            tt = np.arange(m) / sr
            for r in ratios:
                if base * r > 0.45 * sr:
                    continue
                amp = rng.uniform(0.2, 1.0) / (1 + r)
                x[i0:] += amp * np.sin(2 * np.pi * base * r * rng.uniform(0.995, 1.005) * tt) * np.exp(-tt * r / decay)
    elif kind == "whistle":
        f = rng.uniform(1000, 4000)
        glide = 1 + rng.uniform(-0.08, 0.08) * np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * t)
        trill = 1 + (rng.random() < 0.5) * 0.03 * np.sign(np.sin(2 * np.pi * rng.uniform(15, 40) * t))
        x = _tone(f * glide * trill, n, sr, False, rng) * _gate(n, sr, rng.uniform(0.2, 2.0), rng.uniform(0.1, 1.0), 0.02)
        x += 0.05 * rng.standard_normal(n) * np.abs(x)  # breath
    else:  # chord
        x = np.zeros(n)
        note_s = rng.uniform(0.3, 1.5)
        per = max(1, int(note_s * sr))
        for start in range(0, n, per):
            root = 110 * 2 ** (rng.integers(0, 36) / 12)
            seg = slice(start, min(n, start + per))
            m = seg.stop - seg.start
            tt = np.arange(m) / sr
            env = np.exp(-tt * rng.uniform(0.5, 4.0)) * np.clip(tt / 0.01, 0, 1)
            for step in (0, 4 if rng.random() < 0.5 else 3, 7):
                f = root * 2 ** (step / 12)
                for k in range(1, 8):
                    if k * f < 0.45 * sr:
                        x[seg] += env * np.sin(2 * np.pi * k * f * tt) / k**1.5
    peak = float(np.max(np.abs(x))) if n else 0.0
    return (x / peak if peak > 0 else x).astype(np.float32)
