"""Synthetic infant cries: a training augmentation that teaches what a cry *is*, not which phone.

Why: every baby cry in the corpus is an 8 kHz phone recording from one app, and no other cry
recordings exist within reach (../shared/corpus-extra/SOURCES.md). A model trained on them alone
learns the phone channel: a clean full-band cry from another device put under half its energy in
``baby_cry`` (issue 27). A cry is a well-described vocal pattern, so generating it across its
natural range, with harmonics up to the model's Nyquist, covers what one app's recordings cannot:

- cry units ("wah") of 0.3-1.6 s separated by inhalations of 0.1-0.7 s, some with a noisy,
  high-pitched inspiratory stridor;
- a fundamental of 300-650 Hz (occasionally hyperphonated, up to 1.5 kHz) with an arched or
  falling contour per unit, jitter, and a 4-10 Hz vibrato;
- a harmonic spectrum with a random tilt shaped by an infant's vocal tract: three formants higher
  than an adult's (about 1.0-1.4, 2.4-3.6 and 4.2-5.8 kHz), and breath noise;
- optionally a short room reverberation.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal


def draw_cry(rng: np.random.Generator) -> dict:
    """The parameters of one synthetic cry (JSON-serialisable)."""
    return {
        "f0": float(np.exp(rng.uniform(math.log(300.0), math.log(650.0)))),
        "unit_s": (float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.8, 1.6))),
        "gap_s": (float(rng.uniform(0.08, 0.25)), float(rng.uniform(0.25, 0.7))),
        "arch": float(rng.uniform(0.1, 0.5)),  # how far the pitch rises mid-unit (fraction)
        "vibrato_hz": float(rng.uniform(4.0, 10.0)),
        "vibrato": float(rng.uniform(0.0, 0.04)),
        "jitter": float(rng.uniform(0.002, 0.02)),
        "hyper_prob": float(rng.uniform(0.0, 0.25)),
        "tilt": float(rng.uniform(0.5, 1.6)),  # harmonic k has amplitude k**-tilt before formants
        "formants": [float(rng.uniform(1000, 1400)), float(rng.uniform(2400, 3600)), float(rng.uniform(4200, 5800))],
        "bandwidth": float(rng.uniform(0.12, 0.3)),  # formant width, as a fraction of its frequency
        "breath_db": float(rng.uniform(-35.0, -12.0)),
        "stridor_prob": float(rng.uniform(0.0, 0.5)),
        "reverb_s": float(rng.uniform(0.1, 0.6)) if rng.random() < 0.4 else 0.0,
        "wet": float(rng.uniform(0.1, 0.4)),
        "seed": int(rng.integers(2**31)),
    }


def _formant_gain(f: np.ndarray, p: dict) -> np.ndarray:
    """Spectral envelope at frequencies ``f`` (Hz): a floor plus three resonances."""
    g = np.full_like(f, 0.08)
    for k, fc in enumerate(p["formants"]):
        bw = p["bandwidth"] * fc
        g += (1.0, 0.6, 0.35)[k] / (1.0 + ((f - fc) / bw) ** 2)
    return g


def render_cry(p: dict, n: int, sr: int) -> np.ndarray:
    """``n`` samples (float32, peak about 1) of the cry described by ``p`` at rate ``sr``."""
    rng = np.random.default_rng(p["seed"])
    f0 = np.zeros(n)
    env = np.zeros(n)
    stridor = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.3) * sr)
    while pos < n:
        length = int(rng.uniform(*p["unit_s"]) * sr)
        u = np.arange(min(length, n - pos)) / max(length, 1)
        base = p["f0"] * (3.0 if rng.random() < p["hyper_prob"] else 1.0) * rng.uniform(0.85, 1.15)
        contour = 1.0 + p["arch"] * np.sin(np.pi * np.clip(u * rng.uniform(0.8, 1.3), 0, 1)) - 0.15 * u
        f0[pos : pos + len(u)] = base * contour
        attack = np.clip(u * length / (0.04 * sr), 0, 1)
        release = np.clip((1 - u) * length / (0.08 * sr), 0, 1)
        env[pos : pos + len(u)] = attack * release * (0.7 + 0.3 * np.sin(np.pi * u))
        pos += length
        gap = int(rng.uniform(*p["gap_s"]) * sr)
        if rng.random() < p["stridor_prob"]:
            g = np.arange(min(gap, max(n - pos, 0))) / max(gap, 1)
            stridor[pos : pos + len(g)] = np.sin(np.pi * g) * 0.3
        pos += gap
    t = np.arange(n) / sr
    jitter = scipy.signal.lfilter([0.05], [1, -0.95], rng.standard_normal(n)) * p["jitter"] * 3
    f = np.maximum(f0, 1.0) * (1 + p["vibrato"] * np.sin(2 * np.pi * p["vibrato_hz"] * t) + jitter)
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = np.zeros(n)
    nyquist = 0.45 * sr
    voiced = env > 0
    if voiced.any():
        # the envelope moves slowly: evaluate it every 32 samples (a third of the time per cry)
        coarse = f[::32]
        lowest = float(f0[voiced].min())
        for k in range(1, int(nyquist / max(lowest, 1.0)) + 1):
            gain = np.repeat(np.where(k * coarse < nyquist, _formant_gain(k * coarse, p), 0.0), 32)[:n]
            if not gain.any():
                break
            x += np.sin(k * phase) * (gain * k ** -p["tilt"])
    x *= env
    # breath and stridor: noise shaped by the same tract, high-passed
    noise = rng.standard_normal(n)
    b, a = scipy.signal.butter(2, min(1500.0 / (sr / 2), 0.95), "high")
    noise = scipy.signal.lfilter(b, a, noise)
    rms = float(np.sqrt(np.mean(x**2))) or 1.0
    x += noise * rms * 10 ** (p["breath_db"] / 20) * (env > 0) + noise * rms * stridor
    if p["reverb_s"] > 0:
        m = max(1, int(p["reverb_s"] * sr))
        ir = rng.standard_normal(m) * np.exp(-6.9 * np.arange(m) / m)
        wet = scipy.signal.fftconvolve(x, ir)[:n]
        wet *= np.sqrt(np.mean(x**2) / max(np.mean(wet**2), 1e-12))
        x = (1 - p["wet"]) * x + p["wet"] * wet
    peak = float(np.max(np.abs(x))) if n else 0.0
    return (x / peak if peak > 0 else x).astype(np.float32)
