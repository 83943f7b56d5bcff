"""Speed and memory of ``cocktail separate`` against its goals (issues 4 and 15), all measured in one run.

1. Real-time factor (wall seconds per second of audio, end to end: read, separate, write five
   float WAV stems) on 2 CPU threads, per input kind: 60 s of mono 44.1 kHz, stereo 44.1 kHz and
   mono 22.05 kHz (the model's rate), made from the example recording shipped with cocktail.
   Each kind also runs through the separator of ``--baseline`` (a git revision, loaded from git;
   default: before issue 15's speed work), alternating runs, best of 5: both RTFs, the speed-up
   and the SI-SDR of every new stem against the baseline's (the same stems: >= 40 dB). Stereo
   changed on purpose (one set of masks for both channels, see ``bench/stereo.py`` for its
   quality), so it is also run with ``independent_channels``, which must match the baseline.
2. The mono 44.1 kHz file through an Open-Unmix-style separator of five targets (its published
   architecture: n_fft 4096, hop 1024, per target a 3-layer bidirectional LSTM with 512 hidden
   units, random weights): both RTFs and the ratio. Goal: cocktail >= 1.5x faster.
3. Peak resident memory of the ``cocktail separate`` command for 1 min and for 30 min of audio.
   Goal: the 30-minute figure within 1.2x of the 1-minute one.

Usage: ``python bench/separate.py [--model PATH] [--seconds 60] [--baseline REV] [--long-minutes 30]``.
Uses the shipped model if present, else a randomly initialised ``tcn`` (timing does not depend on
the weights). About 5-8 minutes on a 2-core machine. Wall-clock figures grow when other processes
share the cores (the load average is printed); the ratios, measured in alternation, much less.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from cocktail_cli.checkpoint import default_model_path, save_checkpoint  # noqa: E402
from cocktail_cli.classes import CLASSES  # noqa: E402
from cocktail_cli.nets import DEFAULT_ARCH, build  # noqa: E402
from cocktail_cli.separate import SeparateOptions, plan, separate_file  # noqa: E402
from cocktail_cli.separator import Separator  # noqa: E402
from cocktail_cli.stft import STFTConfig  # noqa: E402

SPEEDUP_GOAL = 1.5
MEMORY_GOAL = 1.2
SAME_STEMS_DB = 40.0
SR = 44100
ROOT = Path(__file__).resolve().parents[1]
#: The last revision before issue 15's speed work (shared stereo masks, one inverse STFT fewer,
#: in-place mask temperature, equal split of the rounding residual at the model's rate).
BASELINE = "cc0465e"


# -- test signal -----------------------------------------------------------------------------------
def write_scene(path: str, seconds: float, sr: int = SR, channels: int = 1, block_seconds: float = 30.0) -> None:
    """A busy synthetic scene (tones, a chirp, noise bursts), written block by block."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=sr, channels=channels, subtype="PCM_16") as fh:
        done = 0
        total = int(seconds * sr)
        while done < total:
            n = min(int(block_seconds * sr), total - done)
            t = (done + np.arange(n)) / sr
            x = 0.15 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * (600 + 400 * np.sin(0.3 * t)) * t)
            x += 0.05 * rng.standard_normal(n) * (np.sin(2 * np.pi * 0.5 * t) > 0)
            fh.write(np.repeat(x[:, None], channels, axis=1).astype(np.float32))
            done += n


def write_kinds(tmp: str, seconds: float) -> dict[str, str]:
    """The example recording, looped to ``seconds``: mono 44.1 kHz, a stereo 44.1 kHz version
    (the right channel hears the scene 0.25 ms later, 2 dB quieter, with its own faint noise:
    two close microphones), and mono resampled to 22.05 kHz."""
    from cocktail_cli.audio import read_audio, resample
    from cocktail_cli.examples import example_path

    x, sr = read_audio(example_path())
    x = np.tile(x[0], int(np.ceil(seconds * sr / x.shape[1])) + 1)
    n = int(seconds * sr)
    mono = x[:n]
    noise = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 1e-3
    right = 0.8 * x[11 : n + 11] + noise
    out = {}
    for kind, audio, rate in (
        ("mono 44.1k", mono[None], sr),
        ("stereo 44.1k", np.stack([mono, right]), sr),
        ("mono 22.05k", resample(mono[None], sr, 22050), 22050),
    ):
        path = os.path.join(tmp, kind.replace(" ", "-") + ".wav")
        sf.write(path, (audio / max(1.0, np.abs(audio).max() / 0.9)).T, rate, subtype="FLOAT")
        out[kind] = path
    return out


def load_baseline(rev: str):
    """``cocktail_cli.separator`` as it was at git revision ``rev`` (None if git cannot say)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/cocktail_cli/separator.py"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("cocktail_cli._baseline_separator", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "cocktail_cli"
    exec(compile(src, f"{rev}:src/cocktail_cli/separator.py", "exec"), module.__dict__)
    return module


def _si_sdr_db(est: np.ndarray, ref: np.ndarray) -> float:
    est, ref = est.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    if not np.any(ref):
        return float("inf") if not np.any(est) else float("-inf")
    a = est @ ref / (ref @ ref)
    err = np.sum((est - a * ref) ** 2)
    return float("inf") if err == 0 else 10 * np.log10(np.sum((a * ref) ** 2) / err)


def compare_kinds(model_path: str, files: dict[str, str], baseline_rev: str, tmp: str, repeats: int = 5) -> None:
    """[1]: per input kind, the separator now against the baseline revision's."""
    old = load_baseline(baseline_rev)
    if old is None:
        print(f"[1] baseline {baseline_rev}: not available from git; new figures only")
    systems = {"new": lambda **kw: Separator.from_checkpoint(model_path, **kw)}
    if old is not None:
        systems["baseline"] = lambda **kw: old.Separator.from_checkpoint(model_path, **kw)
    for kind, wav in files.items():
        configs = [("new", {}), ("baseline", {})] if old is not None else [("new", {})]
        if kind.startswith("stereo"):
            configs.append(("new independent", {"independent_channels": True}))
        seps = {name: systems[name.split()[0]](**kw) for name, kw in configs}
        best = {name: (float("inf"), 0.0) for name in seps}
        outdirs = {name: os.path.join(tmp, "kinds", kind.replace(" ", "-"), name.replace(" ", "-")) for name in seps}
        for _ in range(repeats):  # alternate, so that load from other processes hits all alike
            for name, sep in seps.items():
                opts = SeparateOptions(out=outdirs[name], fmt="wav", bits=32)
                job = plan([wav], opts)[0]
                cpu = time.process_time()
                res = separate_file(sep, job, opts)
                cpu = time.process_time() - cpu
                if res.rtf < best[name][0]:
                    best[name] = (res.rtf, cpu / res.duration / THREADS)
        track = Path(wav).stem
        line = f"[1] {kind}: new RTF {best['new'][0]:.4f} (CPU s per audio s per thread {best['new'][1]:.4f})"
        if "baseline" in best:
            line += (f"  baseline RTF {best['baseline'][0]:.4f} ({best['baseline'][1]:.4f})  speed-up "
                     f"{best['baseline'][0] / best['new'][0]:.2f}x wall, {best['baseline'][1] / best['new'][1]:.2f}x CPU")
        print(line, flush=True)
        if "baseline" not in best:
            continue
        for name in seps:
            if name == "baseline":
                continue
            scores = []
            for stem in CLASSES:
                a, _ = sf.read(os.path.join(outdirs[name], track, f"{stem}.wav"), dtype="float32")
                b, _ = sf.read(os.path.join(outdirs["baseline"], track, f"{stem}.wav"), dtype="float32")
                scores.append(_si_sdr_db(a, b))
            worst = min(scores)
            expect_same = not (kind.startswith("stereo") and name == "new")
            verdict = ("PASS" if worst >= SAME_STEMS_DB else "FAIL") if expect_same else "(shared masks: changed on purpose)"
            print(f"    {name} vs baseline, SI-SDR per stem (dB): " + " ".join(f"{s} {v:.1f}" for s, v in zip(CLASSES, scores))
                  + f"  min {worst:.1f}  {'goal >= ' + str(SAME_STEMS_DB) + ' ' if expect_same else ''}{verdict}")
            if name == "new independent":
                print(f"    new independent RTF {best[name][0]:.4f} ({best[name][1]:.4f})")


# -- an Open-Unmix-style baseline (written from its published description) ----------------------------
class UMXTarget(nn.Module):
    """One target: magnitude -> crop to 16 kHz -> normalise -> fc 512 + BN + tanh -> 3-layer BLSTM
    (256 per direction) with a skip connection -> fc 512 + BN + ReLU -> fc to all bins + BN ->
    output scaling -> ReLU mask applied to the mixture magnitude."""

    def __init__(self, n_bins: int = 2049, max_bin: int = 1487, hidden: int = 512, layers: int = 3):
        super().__init__()
        self.max_bin = max_bin
        self.in_mean = nn.Parameter(torch.zeros(max_bin))
        self.in_scale = nn.Parameter(torch.ones(max_bin))
        self.fc1 = nn.Linear(max_bin, hidden, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=layers, bidirectional=True, dropout=0.4)
        self.fc2 = nn.Linear(2 * hidden, hidden, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.fc3 = nn.Linear(hidden, n_bins, bias=False)
        self.bn3 = nn.BatchNorm1d(n_bins)
        self.out_scale = nn.Parameter(torch.ones(n_bins))
        self.out_mean = nn.Parameter(torch.ones(n_bins))

    def forward(self, mag: torch.Tensor) -> torch.Tensor:  # mag (frames, batch, bins)
        t, b, f = mag.shape
        x = (mag[..., : self.max_bin] + self.in_mean) * self.in_scale
        x = torch.tanh(self.bn1(self.fc1(x.reshape(-1, self.max_bin)))).reshape(t, b, -1)
        h, _ = self.lstm(x)
        x = torch.cat([x, h], dim=-1)
        x = torch.relu(self.bn2(self.fc2(x.reshape(t * b, -1))))
        x = self.bn3(self.fc3(x)).reshape(t, b, f)
        return torch.relu(x * self.out_scale + self.out_mean) * mag


class UMXSeparator(nn.Module):
    def __init__(self, n_fft: int = 4096, hop: int = 1024, n_targets: int = len(CLASSES)):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.targets = nn.ModuleList(UMXTarget(n_fft // 2 + 1) for _ in range(n_targets))
        self.register_buffer("window", torch.hann_window(n_fft))

    @torch.inference_mode()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:  # (channels, samples) -> (targets, channels, samples)
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        mag = spec.abs().permute(2, 0, 1)  # (frames, channels, bins)
        phase = spec / (spec.abs() + 1e-8)
        outs = []
        for target in self.targets:
            est = target(mag).permute(1, 2, 0) * phase
            outs.append(torch.istft(est, self.n_fft, self.hop, window=self.window, length=wave.shape[-1]))
        return torch.stack(outs)


# -- measurements ------------------------------------------------------------------------------------
def cocktail_rtf(model_path: str, wav: str, outdir: str, repeats: int = 3) -> tuple[float, float]:
    """Best wall-clock RTF over ``repeats`` runs, and the CPU seconds per audio second per thread
    of that run (close to the wall RTF on an idle machine; the wall figure grows when other
    processes share the cores, the CPU figure much less)."""
    sep = Separator.from_checkpoint(model_path)
    opts = SeparateOptions(out=outdir, fmt="wav", bits=32)
    job = plan([wav], opts)[0]
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        cpu = time.process_time()
        res = separate_file(sep, job, opts)
        cpu = time.process_time() - cpu
        if res.rtf < best:
            best, best_cpu = res.rtf, cpu / res.duration / THREADS
    return best, best_cpu


def umx_rtf(wav: str, repeats: int = 1) -> float:
    torch.manual_seed(0)
    model = UMXSeparator().eval()
    audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    wave = torch.from_numpy(np.ascontiguousarray(audio.T))
    model(wave[:, : sr * 5])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        stems = model(wave).numpy()
        for i in range(stems.shape[0]):  # write like cocktail does, for a fair end-to-end figure
            sf.write(os.path.join(tempfile.gettempdir(), f"umx-bench-{os.getpid()}-{i}.wav"), stems[i].T, sr, subtype="FLOAT")
        best = min(best, time.perf_counter() - t)
    for i in range(len(CLASSES)):
        try:
            os.unlink(os.path.join(tempfile.gettempdir(), f"umx-bench-{os.getpid()}-{i}.wav"))
        except OSError:
            pass
    return best / (audio.shape[0] / sr)


_PEAK = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "if r.returncode: sys.exit(r.stderr.decode()[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_rss_mib(model_path: str, wav: str, outdir: str) -> tuple[float, float]:
    """Peak RSS (MiB) and wall seconds of ``cocktail separate`` in a fresh process tree."""
    cmd = [sys.executable, "-m", "cocktail_cli", "separate", wav, "-o", outdir, "--model", model_path, "--format", "flac"]
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK, *cmd], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(THREADS)})
    if out.returncode:
        raise SystemExit(f"cocktail separate failed: {out.stderr.strip()}")
    return int(out.stdout.strip()) / 1024, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint (default: the shipped model, else a random-init tcn)")
    ap.add_argument("--long-minutes", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each input kind in [1]")
    ap.add_argument("--baseline", default=BASELINE, help=f"git revision to compare with in [1] (default {BASELINE})")
    ap.add_argument("--skip-umx", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(THREADS)

    with tempfile.TemporaryDirectory(prefix="cocktail-bench-") as tmp:
        model = args.model
        if model is None:
            shipped = default_model_path()
            if shipped.exists():
                model = str(shipped)
            else:
                torch.manual_seed(0)
                model = os.path.join(tmp, "random-tcn.pt")
                save_checkpoint(model, build(DEFAULT_ARCH), DEFAULT_ARCH, STFTConfig())
        print(f"model: {model if args.model or model != os.path.join(tmp, 'random-tcn.pt') else 'random-init tcn (no shipped model)'}")
        print(f"threads: {torch.get_num_threads()}  load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              "(other processes on the cores inflate wall-clock figures)")

        compare_kinds(model, write_kinds(tmp, args.seconds), args.baseline, tmp)

        minute = os.path.join(tmp, "minute.wav")
        write_scene(minute, 60.0)
        if not args.skip_umx:
            rtf, _ = cocktail_rtf(model, minute, os.path.join(tmp, "out-rtf"))
            u = umx_rtf(minute)
            speedup = u / rtf
            print(f"[2] Open-Unmix-style (5 targets, n_fft 4096, 3-layer BLSTM 512) RTF: {u:.4f}  cocktail {rtf:.4f}  "
                  f"cocktail is {speedup:.1f}x faster  goal >= {SPEEDUP_GOAL}x  {'PASS' if speedup >= SPEEDUP_GOAL else 'FAIL'}")

        if args.skip_memory:
            return
        long = os.path.join(tmp, "long.wav")
        write_scene(long, args.long_minutes * 60)
        rss1, s1 = peak_rss_mib(model, minute, os.path.join(tmp, "out-1"))
        rss30, s30 = peak_rss_mib(model, long, os.path.join(tmp, "out-30"))
        ratio = rss30 / rss1
        print(f"[3] peak RSS of `cocktail separate`: 1 min {rss1:.0f} MiB ({s1:.1f} s), "
              f"{args.long_minutes:g} min {rss30:.0f} MiB ({s30:.1f} s)  ratio {ratio:.3f}  goal <= {MEMORY_GOAL}  "
              f"{'PASS' if ratio <= MEMORY_GOAL else 'FAIL'}")


if __name__ == "__main__":
    main()
