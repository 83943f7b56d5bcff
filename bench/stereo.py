"""Stereo separation quality: one set of masks shared by the channels (the default) against every
channel separated on its own (``--independent-channels``), on stereo scenes with known sources.

Why: shared masks run the network once whatever the channel count (``bench/separate.py`` [1]:
stereo 44.1 kHz about 1.6x cheaper), but they are a different computation, so their quality is
measured here, against the references, not against the old output.

Scenes: 10 s at the model's rate (22.05 kHz, so no resampling is involved), built like
``cocktail synth`` builds mixtures (each target class present with probability 0.7, "other" = 2
overlaid clips, levels -25 +- 5 dB) from the corpus's **test** split, in three layouts:

- ``pan``: each source panned with a constant-power law at a uniform random angle (mixing-desk
  stereo);
- ``pan+delay``: the same, the far channel also 0-0.5 ms later (two close microphones);
- ``unrelated``: left and right are two different scenes (two microphones in different places),
  the case shared masks are not made for.

Per layout: mean and median SI-SDRi (dB, per active stem and channel, SI-SDR of the estimate
minus that of the mixture) of both methods, and the difference.

Usage: ``python bench/stereo.py [--scenes 32] [--seed 0] [--model PATH] [--corpus ../shared/corpus]``.
Needs the corpus; about 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from cocktail_cli.classes import CLASSES, TARGET_CLASSES  # noqa: E402
from cocktail_cli.metrics import si_sdr  # noqa: E402
from cocktail_cli.separator import Separator  # noqa: E402
from cocktail_cli.sources import scan_sources  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 10.0
LAYOUTS = ("pan", "pan+delay", "unrelated")


class Scenes:
    def __init__(self, corpus: str, sample_rate: int, seed: int):
        self.src = scan_sources(corpus, "test")
        self.sr, self.n = sample_rate, int(SECONDS * sample_rate)
        self.rng = np.random.default_rng(seed)

    def clip(self, cls: str) -> np.ndarray:
        clips = self.src.clips[cls]
        data, sr = sf.read(clips[self.rng.integers(len(clips))].path, dtype="float32", always_2d=True)
        if sr != self.sr:
            from cocktail_cli.audio import resample

            data = resample(data.T, sr, self.sr).T
        x = data.mean(axis=1)
        out = np.zeros(self.n, np.float32)
        if len(x) >= self.n:
            start = self.rng.integers(len(x) - self.n + 1)
            out[:] = x[start : start + self.n]
        else:
            start = self.rng.integers(self.n - len(x) + 1)
            out[start : start + len(x)] = x
        rms = np.sqrt(np.mean(out**2)) + 1e-9
        return out / rms * np.float32(10 ** ((-25 + self.rng.uniform(-5, 5)) / 20))

    def sources(self) -> np.ndarray:
        """``(C, samples)`` mono sources of one scene (zeros for absent classes)."""
        out = np.zeros((len(CLASSES), self.n), np.float32)
        for i, cls in enumerate(CLASSES):
            if cls in TARGET_CLASSES and self.rng.random() > 0.7:
                continue
            out[i] = self.clip(cls) if cls != "other" else self.clip(cls) + self.clip(cls)
        return out

    def images(self, layout: str) -> np.ndarray:
        """``(C, 2, samples)``: each source as heard in the left and the right channel."""
        if layout == "unrelated":
            return np.stack([self.sources(), self.sources()], axis=1)
        refs = np.zeros((len(CLASSES), 2, self.n), np.float32)
        max_delay = int(round(0.0005 * self.sr)) if layout == "pan+delay" else 0
        for i, x in enumerate(self.sources()):
            angle = self.rng.uniform(0, np.pi / 2)
            left, right = np.cos(angle) * x, np.sin(angle) * x
            d = int(self.rng.integers(0, max_delay + 1))
            if d:  # the quieter channel is the farther one, so it hears the source later
                if angle > np.pi / 4:
                    left = np.concatenate([np.zeros(d, np.float32), left[:-d]])
                else:
                    right = np.concatenate([np.zeros(d, np.float32), right[:-d]])
            refs[i, 0], refs[i, 1] = left, right
        return refs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=32, help="scenes per layout")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="checkpoint (default: the shipped model)")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    args = ap.parse_args()
    if not (Path(args.corpus) / "manifest.csv").is_file():
        print(f"needs the corpus at {args.corpus} (--corpus)", file=sys.stderr)
        return 2
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    methods = {
        "shared": Separator.from_checkpoint(args.model),
        "independent": Separator.from_checkpoint(args.model, independent_channels=True),
    }
    sr = methods["shared"].sample_rate
    print(f"{args.scenes} scenes of {SECONDS:g} s per layout at {sr} Hz from the corpus's test split, seed {args.seed}")
    for layout in LAYOUTS:
        scenes = Scenes(args.corpus, sr, args.seed)
        gains: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(args.scenes):
            refs = scenes.images(layout)
            mix = refs.sum(axis=0)
            estimates = {m: sep.separate(mix, sr) for m, sep in methods.items()}
            for i in range(len(CLASSES)):
                for c in range(2):
                    if np.sum(refs[i, c] ** 2) < 1e-6 * np.sum(mix[c] ** 2):
                        continue  # absent from this channel
                    floor = float(si_sdr(mix[c], refs[i, c]))
                    for m, est in estimates.items():
                        gains[m].append(float(si_sdr(est[i, c], refs[i, c])) - floor)
        s, ind = np.array(gains["shared"]), np.array(gains["independent"])
        print(f"{layout:10s} {len(s):4d} active stem-channels  SI-SDRi shared {s.mean():5.2f} (median {np.median(s):5.2f})  "
              f"independent {ind.mean():5.2f} (median {np.median(ind):5.2f})  shared - independent {s.mean() - ind.mean():+.2f} dB",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
